"""ONNX export with the contract embedded, the ONNX-vs-scikit-learn parity check, and the content hash.

The export writes each model family as the fastest exact graph we know for ONNX Runtime: an RBF SVM as dense
kernel algebra with libsvm's Platt scaling and pairwise coupling (``training.svm_graph``, about 6-7x the
``SVMClassifier`` operator), everything else through skl2onnx. ``graph="stock"`` keeps skl2onnx's own graph
(the ``ai.onnx.ml`` operators) for comparison; the service runs either.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator

from lulc.contract import METADATA_KEY, ModelContract
from lulc.decision import decide_labels
from lulc.onnx_runtime import onnxruntime
from training.errors import ParityError, TrainingError

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
"""Fixed opsets: the same graph bytes whatever skl2onnx's newest default, and runnable by the service."""


def _register_lightgbm() -> None:
    """Teach skl2onnx to convert LGBMClassifier through onnxmltools (the skl2onnx documented recipe)."""
    from lightgbm import LGBMClassifier
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )


GraphKind = Literal["fast", "stock"]
"""``fast``: the fastest exact graph (dense algebra for an RBF SVM); ``stock``: skl2onnx's converter as is."""


def to_onnx(model: BaseEstimator, n_features: int, model_type: str, graph: GraphKind = "fast") -> Any:
    """The fitted model as ONNX: float32 input ``features``; outputs ``label`` and ``probabilities``."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from training.svm_graph import dense_svm_parts, to_dense_svm_onnx

    if graph == "fast" and dense_svm_parts(model) is not None:
        return to_dense_svm_onnx(model, n_features)
    if model_type == "lgbm":
        _register_lightgbm()
    try:
        onx = convert_sklearn(
            model,
            name="lulc",
            initial_types=[("features", FloatTensorType([None, n_features]))],
            options={"zipmap": False},
            target_opset=TARGET_OPSET,
        )
    except Exception as exc:  # skl2onnx raises bare RuntimeError/NotImplementedError
        raise TrainingError(f"cannot export the {model_type} model to ONNX: {exc}") from exc
    if model_type in ("lgbm", "hgb"):
        _float32_safe_thresholds(onx, _model_thresholds(model, model_type))
    outputs = [o.name for o in onx.graph.output]
    if outputs != ["label", "probabilities"]:
        raise TrainingError(f"ONNX export of {model_type} gave outputs {outputs}, not [label, probabilities]")
    onx.doc_string = ""
    return onx


def _model_thresholds(model: BaseEstimator, model_type: str) -> list[float]:
    """The float64 split thresholds of a LightGBM or HistGradientBoosting model."""
    found: list[float] = []
    if model_type == "hgb":
        for iteration in model._predictors:
            for predictor in iteration:
                nodes = predictor.nodes
                split = (nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0)
                found += [float(t) for t in nodes["num_threshold"][split]]
        return found
    dump = model.booster_.dump_model()
    stack = [tree["tree_structure"] for tree in dump["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node and not isinstance(node["threshold"], str):
            found.append(float(node["threshold"]))
            stack += [node["left_child"], node["right_child"]]
    return found


def _float32_safe_thresholds(onx: Any, thresholds: list[float]) -> None:
    """Make float32 ONNX thresholds decide as the model's float64 ones do for float32 inputs.

    The LightGBM (onnxmltools) and HistGradientBoosting converters round each float64 threshold ``t``
    to the nearest float32 ``v``; when ``v > t`` a float32 feature equal to ``v`` goes left in ONNX
    (``x <= v``) but right in the model (``x <= t``).
    For float32 ``x``, ``x <= t`` holds exactly when ``x <=`` the largest float32 not above ``t``
    (skl2onnx does the same for scikit-learn trees). Thresholds whose float32 rounds from both sides
    are left as they are; the parity check has the last word.
    """
    above: dict[float, set[bool]] = {}
    for t in thresholds:
        v = float(np.float32(t))
        above.setdefault(v, set()).add(v > t)
    for node in onx.graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        attrs = {a.name: a for a in node.attribute}
        if "nodes_values" not in attrs or "nodes_modes" not in attrs:
            continue
        modes = [m.decode() for m in attrs["nodes_modes"].strings]
        values = list(attrs["nodes_values"].floats)
        for i, (mode, v) in enumerate(zip(modes, values, strict=True)):
            if mode == "BRANCH_LEQ" and above.get(float(np.float32(v))) == {True}:
                values[i] = float(np.nextafter(np.float32(v), np.float32(-np.inf)))
        del attrs["nodes_values"].floats[:]
        attrs["nodes_values"].floats.extend(values)


def content_version(onx: Any, contract: ModelContract) -> str:
    """A version derived from the content: sha256 of the graph and the contract without its version."""
    from onnx import ModelProto

    bare = ModelProto()
    bare.CopyFrom(onx)
    del bare.metadata_props[:]
    digest = hashlib.sha256(bare.SerializeToString(deterministic=True))
    digest.update(contract.model_copy(update={"version": "-"}).to_json().encode())
    return digest.hexdigest()[:12]


def embed_contract(onx: Any, contract: ModelContract) -> bytes:
    """The ONNX bytes with the contract JSON under ``METADATA_KEY`` (replacing any earlier one)."""
    from onnx import ModelProto

    final = ModelProto()
    final.CopyFrom(onx)
    del final.metadata_props[:]
    entry = final.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = contract.to_json()
    final.model_version = 0
    return bytes(final.SerializeToString(deterministic=True))


@dataclass(frozen=True)
class Parity:
    """Label agreement between ONNX and scikit-learn under the same decision rule."""

    test_agreement: float
    test_n: int
    pixel_agreement: float
    pixel_n: int

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "test_agreement": round(self.test_agreement, 6),
            "test_n": self.test_n,
            "pixel_agreement": round(self.pixel_agreement, 6),
            "pixel_n": self.pixel_n,
            "rule": "lulc.decision.decide_labels on both sides",
        }


def _agreement(
    session: Any, model: BaseEstimator, features: npt.NDArray[np.float32], class_order: list[int]
) -> float:
    if len(features) == 0:
        return 1.0
    x = np.ascontiguousarray(features, dtype=np.float32)
    onnx_proba = session.run(["probabilities"], {"features": x})[0]
    sk_proba = model.predict_proba(x)
    same = decide_labels(onnx_proba, class_order) == decide_labels(sk_proba, class_order)
    return float(np.mean(same))


def check_parity(
    onnx_bytes: bytes,
    model: BaseEstimator,
    test_features: npt.NDArray[np.float32],
    pixel_features: npt.NDArray[np.float32],
    class_order: list[int],
    threads: int,
    threshold: float,
) -> Parity:
    """Compare ONNX and scikit-learn labels on the test set and image pixels; raise below ``threshold``."""
    ort = onnxruntime()

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    parity = Parity(
        _agreement(session, model, test_features, class_order),
        len(test_features),
        _agreement(session, model, pixel_features, class_order),
        len(pixel_features),
    )
    worst = min(parity.test_agreement, parity.pixel_agreement)
    if worst < threshold:
        raise ParityError(
            f"ONNX model disagrees with scikit-learn: {100 * parity.test_agreement:.3f} % agreement on "
            f"{parity.test_n} test samples, {100 * parity.pixel_agreement:.3f} % on {parity.pixel_n} image "
            f"pixels (required {100 * threshold:.2f} %)"
        )
    return parity
