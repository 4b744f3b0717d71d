"""The area of applicability (Meyer & Pebesma 2021): where a model's features look like its training data.

At training time: features are standardised, weighted by the model's permutation importance, and each
training sample's distance to its nearest training neighbour *in another CV fold* is divided by the mean
distance between training samples: that is its dissimilarity index (DI). The threshold is the upper whisker
of the training DIs as the paper defines it, the 75th percentile plus 1.5 interquartile ranges, capped at
the largest training DI (CAST >= 0.7 computes it so; earlier CAST took R's ``boxplot.stats`` whisker, the
largest training DI below that fence, which is a little lower). At classification a pixel's DI is its
weighted distance to the nearest training sample over the same mean distance; DI above the threshold is
outside the area of applicability.

The DI is added to the model's ONNX graph as a second output (``di``), computed as a dense kernel,
``|x|² + |s|² - 2 x·sᵀ`` then a minimum over samples, so every runtime that runs the model computes it too
(ONNX Runtime runs every node whichever outputs are fetched: a model with the DI pays for it on every run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import onnx

from training.errors import PointsError

DI_OUTPUT = "di"
"""Name of the ONNX output carrying each pixel's dissimilarity index (float32)."""
REFERENCE_BLOCK = 64
"""Reference samples per MatMul of the DI graph: 8,192 rows x 64 samples is 2 MiB, cache-sized (measured on
2 cores: 3 to 4 times faster than one MatMul over 420 or 2,000 samples)."""


@dataclass(frozen=True)
class Applicability:
    """What the DI needs at classification: the feature transform, the reference samples, two numbers."""

    scale: npt.NDArray[np.float64]
    """Per feature: importance weight / standard deviation (0 where a feature is constant or unimportant)."""
    offset: npt.NDArray[np.float64]
    """Per feature: -mean x scale, so that ``x * scale + offset`` is the weighted standardised feature."""
    reference: npt.NDArray[np.float64]
    """The training samples, transformed (n_samples x n_features)."""
    mean_distance: float
    """Mean distance between training samples (transformed); DI = nearest distance / this."""
    threshold: float
    """Upper whisker of the training DIs: a DI above it is outside the area of applicability."""
    training_di: npt.NDArray[np.float64]
    """Each training sample's DI (nearest sample in another fold)."""

    def transform(self, features: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Weighted standardised features."""
        return np.asarray(features, dtype=np.float64) * self.scale + self.offset

    def dissimilarity(self, features: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The DI of each row (numpy reference of the ONNX output)."""
        x = self.transform(features)
        nearest = np.sqrt(_min_squared_distance(x, self.reference))
        return nearest / self.mean_distance


def _squared_distances(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    sq = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * a @ b.T
    return np.maximum(sq, 0.0)


def _min_squared_distance(
    x: npt.NDArray[np.float64], reference: npt.NDArray[np.float64], chunk: int = 4096
) -> npt.NDArray[np.float64]:
    out = np.empty(x.shape[0], dtype=np.float64)
    for start in range(0, x.shape[0], chunk):
        out[start : start + chunk] = _squared_distances(x[start : start + chunk], reference).min(axis=1)
    return out


def upper_whisker(values: npt.ArrayLike) -> float:
    """The AOA threshold of Meyer & Pebesma (2021): 75th percentile + 1.5 x IQR, at most the largest value.

    Percentiles interpolate linearly between order statistics (R's default ``quantile`` type 7, numpy's
    default), as CAST's ``trainDI`` computes them.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no values")
    q1, q3 = np.quantile(x, [0.25, 0.75])
    return float(min(q3 + 1.5 * (q3 - q1), x.max()))


def fit_applicability(
    features: npt.ArrayLike, folds: npt.ArrayLike, importance: Sequence[float]
) -> Applicability:
    """The area of applicability of a model trained on ``features``.

    Args:
        features: training features (n_samples x n_features).
        folds: each sample's CV fold (grouped folds: a polygon's pixels share one); a sample's DI is its
            distance to the nearest sample of another fold.
        importance: per feature, the model's permutation importance; negative values count as 0.
    """
    x = np.asarray(features, dtype=np.float64)
    fold = np.asarray(folds)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError("the area of applicability needs at least two training samples")
    if np.unique(fold).size < 2:
        raise ValueError("the area of applicability needs samples in at least two folds")
    weights = np.clip(np.asarray(importance, dtype=np.float64), 0.0, None)
    if not np.any(weights > 0):
        weights = np.ones(x.shape[1])
    sd = x.std(axis=0, ddof=1)
    scale = np.divide(weights, sd, out=np.zeros_like(sd), where=sd > 0)
    offset = -x.mean(axis=0) * scale
    reference = x * scale + offset
    squared = _squared_distances(reference, reference)
    distances = np.sqrt(squared)
    n = x.shape[0]
    mean_distance = float(distances.sum() / (n * (n - 1)))
    if mean_distance <= 0:
        raise PointsError(
            "every training sample has the same features, weighted by their permutation importance: the "
            "area of applicability measures nothing (the points fall on identical pixels, or the model uses "
            "no feature); check the points and imagery, or train with trust: false"
        )
    other_fold = fold[:, None] != fold[None, :]
    nearest = np.where(other_fold, distances, np.inf).min(axis=1)
    training_di = nearest / mean_distance
    return Applicability(
        scale=scale,
        offset=offset,
        reference=reference,
        mean_distance=mean_distance,
        threshold=upper_whisker(training_di),
        training_di=training_di,
    )


def add_dissimilarity_output(model: onnx.ModelProto, applicability: Applicability) -> onnx.ModelProto:
    """A copy of ``model`` with a second output ``di``: each row's DI, computed from the model's input.

    The graph is dense algebra in float32: the transformed input ``x`` padded with a column of ones, a
    MatMul with ``[-2 sᵀ; |s|²]`` giving ``|s_j|² - 2 x·s_j`` for every reference sample, its minimum over
    the samples plus ``|x|²`` (constant along a row, so it is added after the minimum), clipped at 0, its
    square root, over the mean training distance. The samples go ``REFERENCE_BLOCK`` at a time (a MatMul
    and a row minimum each, then the minimum of those): a (rows x block) matrix stays in the CPU caches,
    where one (rows x samples) matrix would not.
    """
    from onnx import TensorProto, helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    if any(o.name == DI_OUTPUT for o in graph.output):
        raise ValueError(f"the model already has an output named {DI_OUTPUT!r}")
    source = graph.input[0].name
    opset = next((o.version for o in out.opset_import if o.domain in ("", "ai.onnx")), 13)
    reference = applicability.reference
    p = "lulc_aoa_"

    def const(name: str, value: npt.ArrayLike, dtype: type = np.float32) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), p + name))
        return p + name

    def reduce(op: str, data: str, output: str) -> onnx.NodeProto:
        # axes became an input in opset 13 for ReduceSum, in 18 for the others (skl2onnx writes opset 9
        # for a linear or polynomial SVC: an axes input there made the graph invalid)
        if opset >= 18 or (op == "ReduceSum" and opset >= 13):
            return helper.make_node(
                op, [data, const(f"{output}_axes", [1], np.int64)], [p + output], keepdims=0
            )
        return helper.make_node(op, [data], [p + output], axes=[1], keepdims=0)

    weights = np.vstack([-2.0 * reference.T, (reference**2).sum(axis=1)[None, :]])
    blocks = []
    for b, start in enumerate(range(0, weights.shape[1], REFERENCE_BLOCK)):
        block = weights[:, start : start + REFERENCE_BLOCK]
        blocks += [
            helper.make_node("MatMul", [p + "x1", const(f"weights_{b}", block)], [p + f"partial_{b}"]),
            reduce("ReduceMin", p + f"partial_{b}", f"partial_min_{b}"),
        ]
    minima = [node.output[0] for node in blocks[1::2]]
    nodes = [
        helper.make_node("Mul", [source, const("scale", applicability.scale[None, :])], [p + "scaled"]),
        helper.make_node("Add", [p + "scaled", const("offset", applicability.offset[None, :])], [p + "x"]),
        helper.make_node("Mul", [p + "x", p + "x"], [p + "x2"]),
        reduce("ReduceSum", p + "x2", "xx"),
        helper.make_node(
            "Pad",
            [p + "x", const("pads", [0, 0, 0, 1], np.int64), const("one", 1.0)],
            [p + "x1"],
            mode="constant",
        )
        if opset >= 11
        else helper.make_node("Pad", [p + "x"], [p + "x1"], mode="constant", pads=[0, 0, 0, 1], value=1.0),
        *blocks,
        helper.make_node("Min", minima, [p + "partial_min"]),
        helper.make_node("Add", [p + "partial_min", p + "xx"], [p + "nearest2"]),
        helper.make_node("Relu", [p + "nearest2"], [p + "nearest2_pos"]),
        helper.make_node("Sqrt", [p + "nearest2_pos"], [p + "nearest"]),
        helper.make_node(
            "Mul", [p + "nearest", const("inv_mean", 1.0 / applicability.mean_distance)], [DI_OUTPUT]
        ),
    ]
    graph.node.extend(nodes)
    graph.output.append(helper.make_tensor_value_info(DI_OUTPUT, TensorProto.FLOAT, [None]))
    onnx.checker.check_model(out)
    return out
