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
        _float32_safe_thresholds(onx, _model_trees(model, model_type))
    outputs = [o.name for o in onx.graph.output]
    if outputs != ["label", "probabilities"]:
        raise TrainingError(f"ONNX export of {model_type} gave outputs {outputs}, not [label, probabilities]")
    onx.doc_string = ""
    return onx


@dataclass(frozen=True)
class _Split:
    """A split node of a fitted tree: ``x[feature] <= threshold`` (float64) goes to node ``left``.

    ``left`` and ``right`` index the tree's node list (``_Tree``), whose first node is the root.
    """

    feature: int
    threshold: float
    left: int
    right: int


_Tree = list[_Split | None]
"""A tree's nodes, the root first; ``None``: a leaf (or a categorical split: no threshold to fix)."""


def _model_trees(model: BaseEstimator, model_type: str) -> list[_Tree]:
    """The trees of a LightGBM or HistGradientBoosting model, in the order their converters number them."""
    if model_type == "hgb":
        return [
            [
                None
                if node["is_leaf"] or node["is_categorical"]
                else _Split(
                    int(node["feature_idx"]),
                    float(node["num_threshold"]),
                    int(node["left"]),
                    int(node["right"]),
                )
                for node in predictor.nodes
            ]
            for iteration in model._predictors
            for predictor in iteration
        ]
    return [_flatten(tree["tree_structure"]) for tree in model.booster_.dump_model()["tree_info"]]


def _flatten(root: dict[str, Any]) -> _Tree:
    """A LightGBM tree dump's nested nodes as a node list, without recursion (a tree may be deep)."""
    nodes: list[list[Any] | None] = []
    stack: list[tuple[dict[str, Any], int, int]] = [(root, -1, 0)]  # node, its parent, the parent's slot
    while stack:
        node, parent, slot = stack.pop()
        parent_node = nodes[parent] if parent >= 0 else None
        if parent_node is not None:
            parent_node[slot] = len(nodes)
        if "split_feature" not in node or isinstance(node["threshold"], str):  # a leaf, or categorical
            nodes.append(None)
            continue
        stack += [(node["right_child"], len(nodes), 3), (node["left_child"], len(nodes), 2)]
        nodes.append([int(node["split_feature"]), float(node["threshold"]), -1, -1])
    return [None if n is None else _Split(*n) for n in nodes]


def _largest_float32_not_above(t: float) -> float:
    """For float32 ``x``, ``x <= t`` holds exactly when ``x <=`` this value."""
    v = np.float32(t)
    return float(np.nextafter(v, np.float32(-np.inf)) if float(v) > t else v)


def _float32_safe_thresholds(onx: Any, trees: list[_Tree]) -> None:
    """Make float32 ONNX thresholds decide as the model's float64 ones do for float32 inputs.

    The LightGBM (onnxmltools) and HistGradientBoosting converters round each float64 threshold ``t``
    to the nearest float32 ``v``; when ``v > t`` a float32 feature equal to ``v`` goes left in ONNX
    (``x <= v``) but right in the model (``x <= t``). For float32 ``x``, ``x <= t`` holds exactly when
    ``x <=`` the largest float32 not above ``t`` (skl2onnx does the same for scikit-learn trees).

    Each ONNX node is matched with its model node by walking both trees together (true branch = left),
    feature and rounded threshold checked at every node: two thresholds on either side of one float32
    (``t1 < v < t2``) need different values, which matching by value could not tell apart (a LightGBM
    model of the demo world sent 3 of 20,000 pixels down the wrong branch). A graph that does not walk as
    the model's trees is left to matching by value, thresholds rounding from both sides as they are; the
    parity check has the last word.
    """
    for node in onx.graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        attrs = {a.name: a for a in node.attribute}
        if "nodes_values" not in attrs or "nodes_modes" not in attrs:
            continue
        values = list(attrs["nodes_values"].floats)
        fixed = _walk_fix(attrs, values, trees) or _fix_by_value(attrs, values, trees)
        del attrs["nodes_values"].floats[:]
        attrs["nodes_values"].floats.extend(fixed)


def _walk_fix(attrs: dict[str, Any], values: list[float], trees: list[_Tree]) -> list[float] | None:
    """The thresholds fixed node by node, or None when the graph's trees are not the model's."""
    tree_ids = list(attrs["nodes_treeids"].ints)
    node_ids = list(attrs["nodes_nodeids"].ints)
    at = {(t, n): i for i, (t, n) in enumerate(zip(tree_ids, node_ids, strict=True))}
    modes = [m.decode() for m in attrs["nodes_modes"].strings]
    features = list(attrs["nodes_featureids"].ints)
    true_ids, false_ids = list(attrs["nodes_truenodeids"].ints), list(attrs["nodes_falsenodeids"].ints)
    if sorted(set(tree_ids)) != list(range(len(trees))):
        return None
    roots: dict[int, int] = {}
    for t, n in zip(tree_ids, node_ids, strict=True):
        roots[t] = min(n, roots.get(t, n))
    fixed = list(values)
    for tree_id, tree in enumerate(trees):
        stack = [(roots[tree_id], 0)]  # an ONNX node id and the model node it must be
        while stack:
            node_id, k = stack.pop()
            i = at.get((tree_id, node_id))
            split = tree[k] if 0 <= k < len(tree) else None
            if i is None or (split is None) != (modes[i] == "LEAF"):
                return None
            if split is None:
                continue
            if modes[i] != "BRANCH_LEQ" or features[i] != split.feature:
                return None
            exact = _largest_float32_not_above(split.threshold)
            if np.float32(values[i]) not in (np.float32(split.threshold), np.float32(exact)):
                return None
            fixed[i] = exact
            stack += [(true_ids[i], split.left), (false_ids[i], split.right)]
    return fixed


def _fix_by_value(attrs: dict[str, Any], values: list[float], trees: list[_Tree]) -> list[float]:
    """Thresholds fixed by their float32 value: only those every model threshold rounds up to."""
    above: dict[float, set[bool]] = {}
    for split in (node for tree in trees for node in tree if node is not None):
        v = float(np.float32(split.threshold))
        above.setdefault(v, set()).add(v > split.threshold)
    modes = [m.decode() for m in attrs["nodes_modes"].strings]
    return [
        float(np.nextafter(np.float32(v), np.float32(-np.inf)))
        if mode == "BRANCH_LEQ" and above.get(float(np.float32(v))) == {True}
        else v
        for mode, v in zip(modes, values, strict=True)
    ]


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
