"""Other exact ONNX forms of a tree ensemble, for the model-runtime comparison (``bench/runtimes.py``).

Each is built from the ``TreeEnsembleClassifier`` node that ``training.export.to_onnx`` writes (skl2onnx's
graph, float32 thresholds already made to decide as the model does) and computes the same function:

- ``regressor``: ``TreeEnsembleRegressor`` (ai.onnx.ml 3) with one target per class and the same leaf weights
  (ONNX Runtime's other tree kernel entry point);
- ``ensemble_v5``: ``TreeEnsemble`` of ai.onnx.ml 5, the newest tree operator. Its leaves carry one target
  each, so a forest whose leaves hold k class probabilities becomes k copies of every tree;
- ``gemm``: Hummingbird's GEMM strategy as plain ONNX: every split compared at once
  (``x[feature] <= threshold``), a per-tree product with the (internal nodes x leaves) path matrix finds the
  one leaf whose path matches (an exact small-integer sum), and a product with the leaf values adds the trees.

Only classifiers with 3 or more classes, ``BRANCH_LEQ`` splits and a ``NONE`` or ``SOFTMAX`` post-transform
are converted (``None`` otherwise): that is what the bench models are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper


def _ensemble(model: onnx.ModelProto) -> dict[str, Any] | None:
    """The attributes of the model's ``TreeEnsembleClassifier`` node if the forms here can convert it."""
    nodes = [n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier"]
    if len(nodes) != 1:
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in nodes[0].attribute}
    if len(attrs.get("classlabels_int64s", [])) < 3 or set(attrs["nodes_modes"]) - {b"BRANCH_LEQ", b"LEAF"}:
        return None
    if attrs.get("post_transform", b"NONE") not in (b"NONE", b"SOFTMAX"):
        return None
    return attrs


def _model(nodes: list[Any], k: int, ml_opset: int, initializers: list[Any] | None = None) -> onnx.ModelProto:
    """A graph ``features`` (n, f) -> ``probabilities`` (n, k)."""
    graph = helper.make_graph(
        nodes,
        "tree_form",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, None])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, k])],
        initializers or [],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", ml_opset)]
    return helper.make_model(graph, opset_imports=opsets)


def _post_transform(attrs: dict[str, Any], scores: str, nodes: list[Any]) -> None:
    """Append the classifier's post-transform: ``scores`` (n, k) -> ``probabilities``."""
    if attrs.get("post_transform", b"NONE") == b"SOFTMAX":
        nodes.append(helper.make_node("Softmax", [scores], ["probabilities"], axis=1))
    else:
        nodes.append(helper.make_node("Identity", [scores], ["probabilities"]))


def regressor(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """The ensemble as ``TreeEnsembleRegressor`` (one target per class, the same weights and base values)."""
    attrs = _ensemble(model)
    if attrs is None:
        return None
    k = len(attrs["classlabels_int64s"])
    copied = {name: attrs[name] for name in attrs if name.startswith("nodes_")}
    renamed = {f"target_{name[6:]}": attrs[name] for name in ("class_ids", "class_nodeids", "class_treeids")}
    extra = {"base_values": attrs["base_values"]} if "base_values" in attrs else {}
    node = helper.make_node(
        "TreeEnsembleRegressor",
        ["features"],
        ["scores"],
        domain="ai.onnx.ml",
        n_targets=k,
        aggregate_function="SUM",
        post_transform="NONE",
        target_weights=attrs["class_weights"],
        **copied,
        **renamed,
        **extra,
    )
    nodes = [node]
    _post_transform(attrs, "scores", nodes)
    return _model(nodes, k, 3)


class _Trees:
    """The trees of an ensemble: per tree its internal nodes, leaves, children and leaf weights."""

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.k = len(attrs["classlabels_int64s"])
        tree_ids = np.asarray(attrs["nodes_treeids"])
        self.n_trees = int(tree_ids.max()) + 1
        self.record: dict[tuple[int, int], int] = {
            (int(t), int(n)): i for i, (t, n) in enumerate(zip(tree_ids, attrs["nodes_nodeids"], strict=True))
        }
        self.attrs = attrs
        self.weights: dict[tuple[int, int], dict[int, float]] = {}
        for t, n, c, w in zip(
            attrs["class_treeids"],
            attrs["class_nodeids"],
            attrs["class_ids"],
            attrs["class_weights"],
            strict=True,
        ):
            self.weights.setdefault((int(t), int(n)), {})[int(c)] = float(w)
        self.internal: list[list[int]] = [[] for _ in range(self.n_trees)]
        self.leaves: list[list[int]] = [[] for _ in range(self.n_trees)]
        for (t, n), i in sorted(self.record.items()):
            (self.leaves if attrs["nodes_modes"][i] == b"LEAF" else self.internal)[t].append(n)

    def children(self, tree: int, node: int) -> tuple[int, int]:
        i = self.record[(tree, node)]
        return int(self.attrs["nodes_truenodeids"][i]), int(self.attrs["nodes_falsenodeids"][i])

    def paths(self, tree: int) -> dict[int, list[tuple[int, bool]]]:
        """Each leaf's path from the root: (internal node, took the true branch)."""
        found: dict[int, list[tuple[int, bool]]] = {}
        stack: list[tuple[int, list[tuple[int, bool]]]] = [(0, [])]
        leaves = set(self.leaves[tree])
        while stack:
            node, path = stack.pop()
            if node in leaves:
                found[node] = path
                continue
            true_child, false_child = self.children(tree, node)
            stack += [(true_child, [*path, (node, True)]), (false_child, [*path, (node, False)])]
        return found


def ensemble_v5(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """The ensemble as ``TreeEnsemble`` (ai.onnx.ml 5): one copy of a tree per class its leaves weigh in."""
    attrs = _ensemble(model)
    if attrs is None:
        return None
    trees = _Trees(attrs)
    out: dict[str, list[Any]] = {
        key: []
        for key in (
            "feature",
            "split",
            "true",
            "true_leaf",
            "false",
            "false_leaf",
            "roots",
            "target",
            "weight",
        )
    }
    for c in range(trees.k):
        for t in range(trees.n_trees):
            if not any(c in trees.weights.get((t, leaf), {}) for leaf in trees.leaves[t]):
                continue
            position = {n: len(out["feature"]) + j for j, n in enumerate(trees.internal[t])}
            leaf_position = {}
            for leaf in trees.leaves[t]:
                leaf_position[leaf] = len(out["target"])
                out["target"].append(c)
                out["weight"].append(trees.weights.get((t, leaf), {}).get(c, 0.0))
            if not trees.internal[t]:  # a lone leaf: one split whose branches both lead to it
                out["roots"].append(len(out["feature"]))
                out["feature"].append(0)
                out["split"].append(0.0)
                for key in ("true", "false"):
                    out[key].append(leaf_position[0])
                    out[f"{key}_leaf"].append(1)
                continue
            out["roots"].append(position[0])
            for n in trees.internal[t]:
                i = trees.record[(t, n)]
                out["feature"].append(attrs["nodes_featureids"][i])
                out["split"].append(attrs["nodes_values"][i])
                for child, key in zip(trees.children(t, n), ("true", "false"), strict=True):
                    is_leaf = child in leaf_position
                    out[key].append(leaf_position[child] if is_leaf else position[child])
                    out[f"{key}_leaf"].append(int(is_leaf))
    node = helper.make_node(
        "TreeEnsemble",
        ["features"],
        ["scores"],
        domain="ai.onnx.ml",
        n_targets=trees.k,
        aggregate_function=1,
        post_transform=0,
        tree_roots=out["roots"],
        nodes_featureids=out["feature"],
        nodes_splits=numpy_helper.from_array(np.asarray(out["split"], np.float32)),
        nodes_modes=numpy_helper.from_array(np.zeros(len(out["split"]), np.uint8)),
        nodes_truenodeids=out["true"],
        nodes_trueleafs=out["true_leaf"],
        nodes_falsenodeids=out["false"],
        nodes_falseleafs=out["false_leaf"],
        leaf_targetids=out["target"],
        leaf_weights=numpy_helper.from_array(np.asarray(out["weight"], np.float32)),
    )
    nodes = [node]
    scores = "scores"
    if "base_values" in attrs:
        base = numpy_helper.from_array(np.asarray(attrs["base_values"], np.float32).reshape(1, -1), "base")
        nodes.append(helper.make_node("Add", ["scores", "base"], ["scores_base"]))
        scores = "scores_base"
        _post_transform(attrs, scores, nodes)
        return _model(nodes, trees.k, 5, [base])
    _post_transform(attrs, scores, nodes)
    return _model(nodes, trees.k, 5)


def gemm(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """The ensemble as Hummingbird's GEMM strategy in plain ONNX (every tree padded to the largest)."""
    attrs = _ensemble(model)
    if attrs is None:
        return None
    trees = _Trees(attrs)
    n_trees, k = trees.n_trees, trees.k
    inner = max(len(nodes) for nodes in trees.internal)
    outer = max(len(leaves) for leaves in trees.leaves)
    feature = np.zeros(n_trees * inner, np.int64)
    threshold = np.full((n_trees * inner, 1), np.inf, np.float32)  # padding: always true, weighs nothing
    nan_true = np.zeros((n_trees * inner, 1), bool)
    path = np.zeros((n_trees, outer, inner), np.float32)  # +1 true branch, -1 false branch on the leaf's path
    trues = np.full((n_trees, outer, 1), -1.0, np.float32)  # padding leaves match nothing
    values = np.zeros((k, n_trees * outer), np.float32)
    for t in range(n_trees):
        column = {n: j for j, n in enumerate(trees.internal[t])}
        for n, j in column.items():
            i = trees.record[(t, n)]
            feature[t * inner + j] = attrs["nodes_featureids"][i]
            threshold[t * inner + j] = attrs["nodes_values"][i]
            nan_true[t * inner + j] = bool(attrs["nodes_missing_value_tracks_true"][i])
        for row, (leaf, steps) in enumerate(sorted(trees.paths(t).items())):
            for node, took_true in steps:
                path[t, row, column[node]] = 1.0 if took_true else -1.0
            trues[t, row] = sum(took_true for _, took_true in steps)
            for c, w in trees.weights.get((t, leaf), {}).items():
                values[c, t * outer + row] = w
    inits: list[Any] = []

    def const(value: npt.ArrayLike, name: str) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    op: Callable[..., Any] = helper.make_node
    nodes = [
        op("Transpose", ["features"], ["xt"], perm=[1, 0]),
        op("Gather", ["xt", const(feature, "feature")], ["split_x"], axis=0),  # (T * I, n)
        op("LessOrEqual", ["split_x", const(threshold, "threshold")], ["goes_true"]),
    ]
    cond = "goes_true"
    if nan_true.any():
        nodes += [
            op("IsNaN", ["split_x"], ["nan"]),
            op("And", ["nan", const(nan_true, "nan_true")], ["nan_goes_true"]),
            op("Or", ["goes_true", "nan_goes_true"], ["goes_true_nan"]),
        ]
        cond = "goes_true_nan"
    nodes += [
        op("Cast", [cond], ["true_f"], to=TensorProto.FLOAT),
        op(
            "Reshape", ["true_f", const(np.asarray([n_trees, inner, -1], np.int64), "tree_shape")], ["true_t"]
        ),
        op("MatMul", [const(path, "path"), "true_t"], ["matched"]),  # (T, L, n): true steps on each path
        op("Equal", ["matched", const(trues, "trues")], ["leaf_b"]),
        op("Cast", ["leaf_b"], ["leaf"], to=TensorProto.FLOAT),
        op(
            "Reshape",
            ["leaf", const(np.asarray([n_trees * outer, -1], np.int64), "leaf_shape")],
            ["leaf_flat"],
        ),
        op("MatMul", [const(values, "values"), "leaf_flat"], ["sums"]),  # (k, n)
    ]
    sums = "sums"
    if "base_values" in attrs:
        base = np.asarray(attrs["base_values"], np.float32).reshape(-1, 1)
        nodes.append(op("Add", ["sums", const(base, "base")], ["sums_base"]))
        sums = "sums_base"
    nodes.append(op("Transpose", [sums], ["scores"], perm=[1, 0]))
    _post_transform(attrs, "scores", nodes)
    return _model(nodes, k, 3, inits)


def intermediate_floats(model: onnx.ModelProto) -> int:
    """Floats per input row of the largest intermediate of a form (the GEMM form's are trees x nodes)."""
    shapes = [tuple(i.dims) for i in model.graph.initializer if i.name in ("path", "values")]
    if not shapes:
        return 0
    path = next(s for s in shapes if len(s) == 3)  # (trees, leaves, internal nodes)
    return int(path[0] * max(path[1], path[2]))


FORMS: dict[str, Callable[[onnx.ModelProto], onnx.ModelProto | None]] = {
    "regressor": regressor,
    "ensemble_v5": ensemble_v5,
    "gemm": gemm,
}
"""The alternative forms by name."""
