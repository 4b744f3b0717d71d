"""An RBF ``SVC(probability=True)`` as a plain ONNX graph of dense algebra (no ``SVMClassifier`` operator).

What the graph computes, for float32 features ``x`` (``n`` rows), all in float32 and laid out as
``(columns, n)`` so that every step is a long contiguous vector operation:

1. ``StandardScaler`` exactly as scikit-learn does it on float32 input (``float32(float64(x) - mean)``, then
   ``float32(float64(.) / scale)``), when the SVC sits in a pipeline behind one.
2. The kernel ``K = exp(-g |x - s|^2)`` as a matrix product and an ``Exp``: the exponent is
   ``[x, |x|^2, 1] @ [2g s, -g, -g |s|^2]^T``.
3. libsvm's one-vs-one decision values ``D = C^T K + b`` (``C``: support vectors x class pairs, from
   ``dual_coef_``; ``b``: the intercepts), as matrix products one class's support vectors at a time (a
   support vector weighs in its class's ``k - 1`` pairs only) and a 0/1 matrix that adds them up per pair.
4. Platt scaling per pair (libsvm's ``sigmoid_predict``, ``1 / (1 + exp(d A + B))``, clipped to
   ``[1e-7, 1 - 1e-7]``), then libsvm's matrix ``Q`` of the pairwise probabilities.
5. libsvm's pairwise coupling (``multiclass_probability``, Wu, Lin and Weng's method 2): the same
   coordinate steps from ``p = 1/k``, the same per-pixel stopping rule (``max |Qp - pQp| < 0.005 / k``,
   at most ``max(100, k)`` rounds). The first ``UNROLLED`` rounds are written out, the rest run in an
   ONNX ``Loop`` until every pixel of the call has stopped; a pixel that has stopped keeps its
   probabilities. The normalisation libsvm applies after every step is carried as one scale factor per
   pixel and applied once per round (the same arithmetic up to rounding, fewer passes).

About 4x the throughput of ONNX Runtime's ``SVMClassifier`` on one core (``bench/runtimes.py``).

scikit-learn computes in float64; the graph's float32 differs from it by about 1e-5 in the decision values,
which is far below what moves a label under ``lulc.decision.decide_labels`` (probabilities rounded to 5
decimals): the export's parity check still compares labels on the hold-out and on image pixels.
Every operation is element-wise, a reduction along the class axis or a matrix product with a fixed inner
dimension, so a pixel's result does not depend on how many rows a call holds or how many threads run it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator

OPSET = 17
"""The default-domain opset of the graph (``Loop``, ``ReduceSum`` with axes as input)."""

MIN_PROB = 1e-7
"""libsvm's clip of the pairwise probabilities."""

UNROLLED = 3
"""Coupling rounds written out before the ``Loop`` (most pixels stop after 2 to 4 rounds)."""


def dense_svm_parts(model: BaseEstimator) -> tuple[Any, Any] | None:
    """``(scaler or None, svc)`` if ``model`` is an RBF ``SVC(probability=True)``, bare or after a scaler."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    scaler = None
    svc = model
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps if step != "passthrough" and step is not None]
        if len(steps) == 2 and isinstance(steps[0], StandardScaler):
            scaler, svc = steps
        elif len(steps) == 1:
            svc = steps[0]
        else:
            return None
    if not isinstance(svc, SVC) or svc.kernel != "rbf" or not svc.probability:
        return None
    if getattr(svc, "_probA", np.empty(0)).size == 0 or len(svc.classes_) < 2:
        return None
    if scaler is not None and (scaler.with_mean is False or scaler.with_std is False):
        return None
    return scaler, svc


def pair_coefficients(svc: Any) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The one-vs-one decision values of libsvm as ``D = K @ C + b``: ``C`` (n_sv, n_pairs), ``b`` (n_pairs,).

    The dense reference form (the tests check it against scikit-learn); the graph computes the same sums
    one class at a time (``_decision_values``).

    For the pair ``(i, j)``, ``i < j`` (libsvm's order), the support vectors of class ``i`` carry their
    coefficient for ``j`` (row ``j - 1`` of ``dual_coef_``) and those of class ``j`` their coefficient for
    ``i`` (row ``i``); every other support vector weighs 0. These are libsvm's own (internal) coefficients and
    intercepts, whose signs scikit-learn flips in its public ``dual_coef_`` for two classes.
    """
    coef = np.asarray(svc._dual_coef_, dtype=np.float64)
    counts = np.asarray(svc._n_support, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    k = len(counts)
    pairs = _pairs(k)
    c = np.zeros((coef.shape[1], len(pairs)), dtype=np.float64)
    for p, (i, j) in enumerate(pairs):
        c[starts[i] : starts[i + 1], p] = coef[j - 1, starts[i] : starts[i + 1]]
        c[starts[j] : starts[j + 1], p] = coef[i, starts[j] : starts[j + 1]]
    return c, np.asarray(svc._intercept_, dtype=np.float64)


def _pairs(k: int) -> list[tuple[int, int]]:
    """The class pairs of libsvm, ``(i, j)``, ``i < j``, in its order."""
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


def _diagonal_sum(k: int) -> npt.NDArray[np.float32]:
    """The 0/1 matrix (k, 2 n_pairs) summing ``[r^2; (1 - r)^2]`` into libsvm's ``Q[t][t]``."""
    pairs = _pairs(k)
    m = np.zeros((k, 2 * len(pairs)), dtype=np.float32)
    for p, (i, j) in enumerate(pairs):
        m[j, p] = 1.0  # r[i][j]^2 = r_p^2 goes to Q[j][j]
        m[i, len(pairs) + p] = 1.0  # r[j][i]^2 = (1 - r_p)^2 goes to Q[i][i]
    return m


def _q_rows(k: int) -> list[int]:
    """Rows of ``[Q_off (n_pairs); Q_diag (k)]`` that give ``Q`` row-major (k * k)."""
    pairs = _pairs(k)
    return [
        len(pairs) + t if t == j else pairs.index((min(t, j), max(t, j))) for t in range(k) for j in range(k)
    ]


class _Graph:
    """A tiny builder: nodes, initializers and fresh names."""

    def __init__(self, prefix: str = "") -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.prefix = prefix
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}{hint}_{self._count}"

    def const(self, value: npt.ArrayLike, hint: str, dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, n_out: int = 1, **attrs: Any) -> Any:
        from onnx import helper

        outputs = [self.name(hint) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=outputs[0], **attrs))
        return outputs[0] if n_out == 1 else outputs


def to_dense_svm_onnx(model: BaseEstimator, n_features: int, name: str = "lulc") -> Any:
    """The ONNX model (input ``features``; outputs ``label``, ``probabilities``) of an RBF SVC.

    Raises:
        ValueError: ``model`` is not an RBF ``SVC(probability=True)`` (see ``dense_svm_parts``).
    """
    from onnx import TensorProto, helper

    parts = dense_svm_parts(model)
    if parts is None:
        raise ValueError(
            "the dense SVM graph needs an RBF SVC(probability=True), bare or behind a StandardScaler"
        )
    scaler, svc = parts
    classes = np.asarray(svc.classes_, dtype=np.int64)
    k = len(classes)
    gamma = float(svc._gamma)
    sv = np.asarray(svc.support_vectors_, dtype=np.float64)
    b = np.asarray(svc._intercept_, dtype=np.float64)

    g = _Graph()
    x = "features"
    if scaler is not None:
        wide = g.op("Cast", [x], "x64", to=TensorProto.DOUBLE)
        centred = g.op("Sub", [wide, g.const(scaler.mean_, "mean", np.float64)], "centred64")
        centred = g.op(
            "Cast", [g.op("Cast", [centred], "centred", to=TensorProto.FLOAT)], "c64", to=TensorProto.DOUBLE
        )
        scaled = g.op("Div", [centred, g.const(scaler.scale_, "scale", np.float64)], "scaled64")
        x = g.op("Cast", [scaled], "scaled", to=TensorProto.FLOAT)
    xt = g.op("Transpose", [x], "xt", perm=[1, 0])  # (f, n)
    sq = g.op("ReduceSumSquare", [xt], "sq", axes=[0], keepdims=1)  # (1, n)
    ones = g.op("Add", [g.op("Mul", [sq, g.const(0.0, "zero")], "zeros"), g.const(1.0, "one")], "ones")
    augmented = g.op("Concat", [xt, sq, ones], "aug", axis=0)  # (f + 2, n)
    weights = np.concatenate(
        [2.0 * gamma * sv, np.full((len(sv), 1), -gamma), -gamma * np.sum(sv * sv, axis=1, keepdims=True)],
        axis=1,
    )  # (n_sv, f + 2)
    decision = _decision_values(g, svc, weights, augmented, b)  # (n_pairs, n)
    # Platt scaling (libsvm's sigmoid_predict): r = 1 / (1 + exp(d A + B)), clipped
    minus_f = g.op(
        "Add",
        [
            g.op("Mul", [decision, g.const(-np.asarray(svc._probA).reshape(-1, 1), "minus_a")], "minus_da"),
            g.const(-np.asarray(svc._probB).reshape(-1, 1), "minus_b"),
        ],
        "minus_f",
    )
    sigmoid = g.op("Sigmoid", [minus_f], "sigmoid")
    r = g.op("Clip", [sigmoid, g.const(MIN_PROB, "min_prob"), g.const(1.0 - MIN_PROB, "max_prob")], "r")
    one_minus_r = g.op("Sub", [g.const(1.0, "one"), r], "one_minus_r")
    # libsvm's Q: Q[t][j] = -r[j][t] r[t][j] = -r_p (1 - r_p) for the pair p of t and j;
    # Q[t][t] = sum_j r[j][t]^2: r_p^2 over the pairs p = (j, t), j < t, (1 - r_p)^2 over p = (t, j), t < j
    off = g.op("Neg", [g.op("Mul", [r, one_minus_r], "r_1r")], "q_off")  # (n_pairs, n)
    squares = g.op(
        "Concat", [g.op("Mul", [r, r], "r2"), g.op("Mul", [one_minus_r, one_minus_r], "r2c")], "sq2", axis=0
    )
    diag = g.op("MatMul", [g.const(_diagonal_sum(k), "diag_sum"), squares], "q_diag")  # (k, n)
    parts = g.op("Concat", [off, diag], "q_parts", axis=0)  # (n_pairs + k, n): every distinct entry of Q
    n_shape = g.op("Shape", [x], "x_shape")
    n_rows = g.op("Slice", [n_shape, g.const([0], "s0", np.int64), g.const([1], "s1", np.int64)], "n_rows")
    kn = g.op("Concat", [g.const([k], "k", np.int64), n_rows], "kn", axis=0)
    p = g.op("Expand", [g.const(1.0 / k, "p0"), kn], "p_start")
    q, entries = _q_matrix(g, k, parts)
    qp, pqp, running = _stopping_rule(g, k, q, p)
    for _ in range(UNROLLED):
        p, qp, pqp, running = _round(g, k, q, entries, p, qp, pqp, running)
    body = _loop_body(k, q, entries)
    max_iter = g.const(max(100, k) - UNROLLED, "max_iter", np.int64)
    p_final = g.op("Loop", [max_iter, _any(g, running), p, qp, pqp, running], "coupled", n_out=4, body=body)[
        0
    ]
    probabilities = g.op("Transpose", [p_final], "probabilities_t", perm=[1, 0])
    g.nodes.append(helper.make_node("Identity", [probabilities], ["probabilities"]))
    winner = g.op("ArgMax", [probabilities], "winner", axis=1, keepdims=0)
    g.nodes.append(
        helper.make_node("Gather", [g.const(classes, "classes", np.int64), winner], ["label"], axis=0)
    )

    graph = helper.make_graph(
        g.nodes,
        name,
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_features])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, k]),
        ],
        g.initializers,
    )
    onx = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="lulc-stac")
    onx.ir_version = 8
    return onx


def _q_matrix(g: _Graph, k: int, parts: str) -> tuple[str, list[str]]:
    """``Q`` (k, k, n) and each ``Q[t][j]`` as a (1, n) row, from ``[Q_off; Q_diag]`` (n_pairs + k, n)."""
    pairs = _pairs(k)
    flat = g.op("Gather", [parts, g.const(_q_rows(k), "q_rows", np.int64)], "q_flat", axis=0)
    shape = g.op(
        "Concat", [g.const([k, k], "kk", np.int64), g.op("Shape", [parts], "parts_shape")], "kk_shape", axis=0
    )
    kkn = g.op("Gather", [shape, g.const([0, 1, 3], "kkn_axes", np.int64)], "kkn", axis=0)
    q = g.op("Reshape", [flat, kkn], "q")
    rows = g.op("Split", [parts], "q_part", n_out=len(pairs) + k, axis=0)
    entries = [
        rows[len(pairs) + t] if t == j else rows[pairs.index((min(t, j), max(t, j)))]
        for t in range(k)
        for j in range(k)
    ]
    return str(q), entries


def _decision_values(
    g: _Graph, svc: Any, weights: npt.NDArray[np.float64], augmented: str, b: npt.NDArray[np.float64]
) -> str:
    """The decision values of libsvm (n_pairs, n), one class's support vectors at a time.

    A support vector of class ``i`` weighs only in the ``k - 1`` pairs of ``i``, with the coefficients of its
    column of ``dual_coef_`` (row ``j - 1`` for a pair with ``j > i``, row ``j`` for ``j < i``). So each class
    gives ``k - 1`` partial sums (``coef_i @ exp(W_i @ [x, |x|^2, 1])``), a third of the products of the
    full ``C^T K`` for 6 classes, and a 0/1 matrix adds the two partial sums of each pair and its intercept.
    """
    coef = np.asarray(svc._dual_coef_, dtype=np.float64)
    counts = np.asarray(svc._n_support, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    k = len(counts)
    partials = []
    for i in range(k):
        if counts[i] == 0:
            continue
        rows = slice(int(starts[i]), int(starts[i + 1]))
        exponent = g.op("MatMul", [g.const(weights[rows], "w"), augmented], "exponent")  # (n_i, n)
        kernel = g.op("Exp", [exponent], "kernel")
        partials.append(g.op("MatMul", [g.const(coef[:, rows], "coef"), kernel], "partial"))  # (k - 1, n)
    present = [i for i in range(k) if counts[i] > 0]
    assemble = np.zeros((k * (k - 1) // 2, (k - 1) * len(present)), dtype=np.float32)
    for p, (i, j) in enumerate(_pairs(k)):
        if i in present:
            assemble[p, present.index(i) * (k - 1) + (j - 1)] = 1.0
        if j in present:
            assemble[p, present.index(j) * (k - 1) + i] = 1.0
    stacked = g.op("Concat", partials, "partials", axis=0) if len(partials) > 1 else partials[0]
    return str(
        g.op("Gemm", [g.const(assemble, "assemble"), stacked, g.const(b.reshape(-1, 1), "rho")], "decision")
    )


def _stopping_rule(g: _Graph, k: int, q: str, p: str) -> tuple[str, str, str]:
    """The ``Qp``, ``pQp`` of libsvm and whether a pixel goes on (``max_t |Qp_t - pQp| >= 0.005 / k``)."""
    p3 = g.op("Unsqueeze", [p, g.const([0], "ax0", np.int64)], "p3")
    qp = g.op("ReduceSum", [g.op("Mul", [q, p3], "qp3"), g.const([1], "ax1", np.int64)], "qp", keepdims=0)
    # sums and maxima over the k rows as a 1 x k product and an element-wise Max: both run several times
    # faster in ONNX Runtime than ReduceSum / ReduceMax over the first axis
    terms = g.op("Mul", [p, qp], "pqp_terms")
    pqp = g.op("MatMul", [g.const(np.ones((1, k)), "ones_k"), terms], "pqp")
    gap = g.op("Abs", [g.op("Sub", [qp, pqp], "gap")], "abs_gap")
    error = g.op("Max", g.op("Split", [gap], "gap_row", n_out=k, axis=0), "error")
    return qp, pqp, g.op("GreaterOrEqual", [error, g.const(0.005 / k, "eps")], "goes_on")


def _any(g: _Graph, flags: str) -> str:
    """A scalar bool: whether any of ``flags`` holds."""
    from onnx import TensorProto

    as_float = g.op("Cast", [flags], "flags_f", to=TensorProto.FLOAT)
    return str(g.op("Cast", [g.op("ReduceMax", [as_float], "any_f", keepdims=0)], "any", to=TensorProto.BOOL))


def _round(
    g: _Graph, k: int, q: str, entries: list[str], p: str, qp: str, pqp: str, running: str
) -> tuple[str, str, str, str]:
    """One round of libsvm's coupling (``k`` coordinate steps) for the running pixels, then its stopping rule.

    ``p`` (k, n), its ``Qp`` (k, n) and ``pQp`` (1, n); ``running`` (1, n): the pixels whose stopping rule
    said go on; the others keep their ``p``. ``entries[t * k + j]`` is ``Q[t][j]`` as (1, n).
    The steps run on an unnormalised ``p~`` with ``p = s p~`` (libsvm divides everything by ``1 + diff``
    after each step; ``s`` carries those divisions): ``delta = (s pQp~ - Qp~_t) / Q_tt``, ``p~_t += delta``,
    ``pQp~ += delta (delta Q_tt + 2 Qp~_t)``, ``s /= 1 + s delta``; of ``Qp~`` only the entry a step reads
    is formed, ``Qp_t + sum_{u < t} delta_u Q_ut``. Returns the new ``p``, ``Qp``, ``pQp``, ``running``.
    """
    qp_rows = g.op("Split", [qp], "qp_row", n_out=k, axis=0)
    one = g.const(1.0, "one")
    scale: str | None = None
    w = pqp
    deltas: list[str] = []
    for t in range(k):
        current = qp_rows[t]
        for u, delta_u in enumerate(deltas):
            current = g.op("Add", [current, g.op("Mul", [delta_u, entries[u * k + t]], "dq")], "qp_t")
        q_tt = entries[t * k + t]
        sw = w if scale is None else g.op("Mul", [scale, w], "s_w")
        delta = g.op("Div", [g.op("Sub", [sw, current], "num"), q_tt], "delta")
        deltas.append(delta)
        if t < k - 1:
            grow = g.op(
                "Add",
                [g.op("Mul", [delta, q_tt], "dq_tt"), g.op("Add", [current, current], "two_qp")],
                "grow",
            )
            w = g.op("Add", [w, g.op("Mul", [delta, grow], "inc")], "w")
        step = delta if scale is None else g.op("Mul", [scale, delta], "sd")
        scale = g.op("Div", [one if scale is None else scale, g.op("Add", [one, step], "one_plus")], "s")
    # step t moves only p~_t, by delta_t: p~ = p + [delta_0; ...; delta_{k-1}]
    raw = g.op("Add", [p, g.op("Concat", deltas, "deltas", axis=0)], "p_raw")
    stepped = g.op("Mul", [raw, scale or one], "p_stepped")
    new_qp, new_pqp, goes_on = _stopping_rule(g, k, q, stepped)
    kept = g.op("Where", [running, stepped, p], "p_kept")
    return kept, new_qp, new_pqp, g.op("And", [running, goes_on], "still")


def _loop_body(k: int, q: str, entries: list[str]) -> Any:
    """The ``Loop`` body: ``_round`` on the loop state, until no pixel runs."""
    from onnx import TensorProto, helper

    g = _Graph("round_")
    state = ["p_in", "qp_in", "pqp_in", "running_in"]
    outputs = _round(g, k, q, entries, *state)
    names = ["p_out", "qp_out", "pqp_out", "running_out"]
    for value, name in zip(outputs, names, strict=True):
        g.nodes.append(helper.make_node("Identity", [value], [name]))
    g.nodes.append(helper.make_node("Identity", [_any(g, outputs[3])], ["cond_out"]))
    types = [TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.BOOL]
    return helper.make_graph(
        g.nodes,
        "coupling_round",
        [
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            *[helper.make_tensor_value_info(n, t, None) for n, t in zip(state, types, strict=True)],
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            *[helper.make_tensor_value_info(n, t, None) for n, t in zip(names, types, strict=True)],
        ],
        g.initializers,
    )
