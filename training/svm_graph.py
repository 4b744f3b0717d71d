"""An RBF ``SVC(probability=True)`` as a plain ONNX graph of dense algebra (no ``SVMClassifier`` operator).

What the graph computes, for float32 features ``x`` (``n`` rows), all in float32 and laid out as
``(columns, n)`` so that every step is a long contiguous vector operation:

1. ``StandardScaler`` (``(x - mean) / scale``), when the SVC sits in a pipeline behind one.
2. The kernel ``K = exp(-g |x - s|^2)`` as a matrix product and an ``Exp``: the exponent is
   ``[x, |x|^2, 1] @ [2g s, -g, -g |s|^2]^T``.
3. libsvm's one-vs-one decision values ``D = C^T K + b`` (``C``: support vectors x class pairs, from
   ``dual_coef_``; ``b``: the intercepts), as matrix products one class's support vectors at a time (a
   support vector weighs in its class's ``k - 1`` pairs only) and a 0/1 matrix that adds them up per pair.
4. Platt scaling per pair (libsvm's ``sigmoid_predict``, ``1 / (1 + exp(d A + B))``, clipped to
   ``[1e-7, 1 - 1e-7]``), then the distinct entries of libsvm's matrix ``Q`` of the pairwise probabilities.
5. libsvm's pairwise coupling (``multiclass_probability``, Wu, Lin and Weng's method 2): the same
   coordinate steps from ``p = 1/k``, the same per-pixel stopping rule (``max |Qp - pQp| < 0.005 / k``,
   at most ``max(100, k)`` rounds), every class a (1, n) row. The first ``UNROLLED`` rounds are written out
   for all pixels; then the pixels still running are gathered and an ONNX ``Loop`` runs the further rounds
   on them alone until all have stopped, and their probabilities are scattered back. A pixel that has
   stopped keeps its probabilities exactly: its steps are multiplied by 0. The normalisation libsvm applies
   after every step is carried as one scale factor per pixel and applied once per round (the same
   arithmetic up to rounding, fewer passes).

About 6-7x the throughput of ONNX Runtime's ``SVMClassifier`` per core on the bench model
(``bench/runtimes.py``).

scikit-learn computes in float64; the graph's float32 differs from it by about 1e-5 in the decision values,
which is far below what moves a label under ``lulc.decision.decide_labels`` (probabilities rounded to 5
decimals): the export's parity check still compares labels on the hold-out and on image pixels.
Every operation is element-wise, a reduction along the class axis, a matrix product with a fixed inner
dimension or a gather/scatter of whole pixels, so a pixel's result does not depend on how many rows a call
holds or how many threads run it.
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

UNROLLED = 4
"""Coupling rounds written out for every pixel; the later rounds run on the pixels still running only
(on the bench model 65 % of the pixels stop after 2 rounds, 28 % after 3, 6 % after 4)."""

DOUBLE_SUMS_ABOVE = 1000.0
"""Largest sum of |dual coefficients| of one pair whose kernel sums stay float32 (see ``_decision_values``):
scikit-learn's default C = 1 gives at most the support vector count (43 on the tutorial, 205 on the bench
SVM: float32, the fast graph), C = 1000 thousands: a 6-class SVM of 58 support vectors at C = 1000 and
gamma 0.01 (sum 8,343) ran in float64 at 1.6-2.8x the CPU of float32, its probabilities within 6e-7 of
scikit-learn's instead of 1.3e-3 (measured 2026-12-01, one thread, 250,000 pixels)."""


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


def _entry(k: int, t: int, j: int) -> int:
    """The row of ``Q[t][j]`` among the distinct entries of ``Q`` (``_q_entries``)."""
    pairs = _pairs(k)
    return len(pairs) + t if t == j else pairs.index((min(t, j), max(t, j)))


def _diagonal_sum(k: int) -> npt.NDArray[np.float32]:
    """The 0/1 matrix (k, 2 n_pairs) summing ``[r^2; (1 - r)^2]`` into libsvm's ``Q[t][t]``."""
    pairs = _pairs(k)
    m = np.zeros((k, 2 * len(pairs)), dtype=np.float32)
    for p, (i, j) in enumerate(pairs):
        m[j, p] = 1.0  # r[i][j]^2 = r_p^2 goes to Q[j][j]
        m[i, len(pairs) + p] = 1.0  # r[j][i]^2 = (1 - r_p)^2 goes to Q[i][i]
    return m


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

    def op(self, op_type: str, inputs: list[str], hint: str, **attrs: Any) -> str:
        """One node with one output; its name."""
        return self.ops(op_type, inputs, hint, 1, **attrs)[0]

    def ops(self, op_type: str, inputs: list[str], hint: str, n_out: int, **attrs: Any) -> list[str]:
        """One node with ``n_out`` outputs; their names."""
        from onnx import helper

        outputs = [self.name(hint) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=outputs[0], **attrs))
        return outputs


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
    g = _Graph()
    # a call of one row gets a copy of it as a second row: ONNX Runtime's matrix products round differently
    # for a single column (its matrix-vector path), so the pixel would not get what it gets in a longer call
    n_rows = g.op("Shape", ["features"], "n_rows", start=0, end=1)
    extra = g.op(
        "Max",
        [g.op("Sub", [g.const([2], "two", np.int64), n_rows], "missing"), g.const([0], "zero", np.int64)],
        "extra",
    )
    copies = g.op(
        "Slice",
        ["features", g.const([0], "start0", np.int64), extra, g.const([0], "axis0", np.int64)],
        "copies",
    )
    padded = g.op("Concat", ["features", copies], "padded", axis=0)
    xt = g.op("Transpose", [padded], "xt", perm=[1, 0])  # (f, n): every later step runs along n
    if scaler is not None:
        xt = _standardised(g, xt, scaler)
    # |x|^2 as a 1 x f product (ReduceSumSquare over the first axis is 3x slower in ONNX Runtime)
    sq = g.op("MatMul", [g.const(np.ones((1, n_features)), "ones_f"), g.op("Mul", [xt, xt], "x2")], "sq")
    ones = g.op("Expand", [g.const([[1.0]], "one_11"), g.op("Shape", [sq], "row_shape")], "ones")
    augmented = g.op("Concat", [xt, sq, ones], "aug", axis=0)  # (f + 2, n)
    q = _q_entries(g, svc, _decision_values(g, svc, augmented))  # (n_pairs + k, n)
    p, qp, pqp, running = _first_stopping_rule(g, k, q)
    q_rows = _rows(g, q, k)
    for _ in range(UNROLLED):
        p, qp, pqp, running = _round(g, k, q_rows, p, qp, pqp, running)
    p_all = _remaining_rounds(g, k, q, p, qp, pqp, running)
    p_final = g.op(
        "Slice", [p_all, g.const([0], "start", np.int64), n_rows, g.const([1], "axis1", np.int64)], "p_n"
    )
    probabilities = g.op("Transpose", [p_final], "probabilities_t", perm=[1, 0])
    g.nodes.append(helper.make_node("Identity", [probabilities], ["probabilities"]))
    _label(g, classes, p_final)
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


def _label(g: _Graph, classes: npt.NDArray[np.int64], p: str) -> None:
    """The graph's output ``label``: the class of the largest of the k rows of ``p``, the first on ties.

    A running maximum over the rows (``Greater``, ``Max``, ``Where``): 4x faster than ``ArgMax`` over the
    short class axis in ONNX Runtime.
    """
    from onnx import helper

    rows = g.ops("Split", [p], "p_row", len(classes), axis=0)
    best, label = (
        rows[0],
        g.op(
            "Expand",
            [g.const(classes[:1], "class_0", np.int64), g.op("Shape", [rows[0]], "p_shape")],
            "label_0",
        ),
    )
    for t in range(1, len(classes)):
        better = g.op("Greater", [rows[t], best], "better")
        label = g.op("Where", [better, g.const(classes[t : t + 1], "class", np.int64), label], "label_t")
        if t < len(classes) - 1:
            best = g.op("Max", [best, rows[t]], "best")
    g.nodes.append(helper.make_node("Reshape", [label, g.const([-1], "flat", np.int64)], ["label"]))


def _standardised(g: _Graph, xt: str, scaler: Any) -> str:
    """``StandardScaler.transform`` of ``xt`` (f, n) in float32: ``(x - mean) / scale``.

    scikit-learn subtracts and divides in float64 and rounds to float32 in between; float32 arithmetic moves
    the scaled features by an ulp or so, which changes nothing measurable downstream (on the bench model the
    probabilities stay within 1.3e-5 of scikit-learn's either way, mean 4.3e-7) and is 5 % faster.
    """
    centred = g.op("Sub", [xt, g.const(scaler.mean_.reshape(-1, 1), "mean")], "centred")
    return g.op("Div", [centred, g.const(scaler.scale_.reshape(-1, 1), "scale")], "scaled")


def _decision_values(g: _Graph, svc: Any, augmented: str) -> str:
    """The decision values of libsvm (n_pairs, n), one class's support vectors at a time.

    A support vector of class ``i`` weighs only in the ``k - 1`` pairs of ``i``, with the coefficients of its
    column of ``dual_coef_`` (row ``j - 1`` for a pair with ``j > i``, row ``j`` for ``j < i``). So each class
    gives ``k - 1`` partial sums (``coef_i @ exp(W_i @ [x, |x|^2, 1])``), a third of the products of the
    full ``C^T K`` for 6 classes, and a 0/1 matrix adds the two partial sums of each pair and its intercept.
    """
    from onnx import TensorProto

    gamma = float(svc._gamma)
    sv = np.asarray(svc.support_vectors_, dtype=np.float64)
    weights = np.concatenate(
        [2.0 * gamma * sv, np.full((len(sv), 1), -gamma), -gamma * np.sum(sv * sv, axis=1, keepdims=True)],
        axis=1,
    )  # (n_sv, f + 2)
    coef = np.asarray(svc._dual_coef_, dtype=np.float64)
    counts = np.asarray(svc._n_support, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    k = len(counts)
    # The sums weigh kernels near 1 by coefficients up to C: in float32 their rounding grows with the sum of
    # |coefficients| (about 1e-5 in the decision values at C = 1, 0.1 at C = 1000 and gamma 0.01, enough to
    # fail the parity gate), so for large ones the kernel and its sums are float64 (the features stay float32:
    # scikit-learn's own input).
    wide = float(np.abs(coef).sum(axis=1).max(initial=0.0)) > DOUBLE_SUMS_ABOVE
    sums = np.float64 if wide else np.float32
    if wide:
        augmented = g.op("Cast", [augmented], "augmented64", to=TensorProto.DOUBLE)
    partials = []
    for i in range(k):
        if counts[i] == 0:
            continue
        rows = slice(int(starts[i]), int(starts[i + 1]))
        exponent = g.op("MatMul", [g.const(weights[rows], "w", sums), augmented], "exponent")  # (n_i, n)
        kernel = g.op("Exp", [exponent], "kernel")
        partial = g.op("MatMul", [g.const(coef[:, rows], "coef", sums), kernel], "partial")  # (k - 1, n)
        partials.append(partial)
    present = [i for i in range(k) if counts[i] > 0]
    assemble = np.zeros((k * (k - 1) // 2, (k - 1) * len(present)), dtype=sums)
    for p, (i, j) in enumerate(_pairs(k)):
        if i in present:
            assemble[p, present.index(i) * (k - 1) + (j - 1)] = 1.0
        if j in present:
            assemble[p, present.index(j) * (k - 1) + i] = 1.0
    stacked = g.op("Concat", partials, "partials", axis=0) if len(partials) > 1 else partials[0]
    rho = np.asarray(svc._intercept_, dtype=np.float64).reshape(-1, 1)
    decision = g.op(
        "Gemm", [g.const(assemble, "assemble", sums), stacked, g.const(rho, "rho", sums)], "decision"
    )
    return g.op("Cast", [decision], "decision32", to=TensorProto.FLOAT) if wide else decision


def _q_entries(g: _Graph, svc: Any, decision: str) -> str:
    """Platt scaling, then every distinct entry of libsvm's ``Q`` as the rows of one (n_pairs + k, n).

    Platt (libsvm's ``sigmoid_predict``): ``r = 1 / (1 + exp(d A + B))`` per pair, clipped to
    ``[MIN_PROB, 1 - MIN_PROB]``. ``Q[t][j] = -r[j][t] r[t][j] = -r_p (1 - r_p)`` for the pair ``p`` of ``t``
    and ``j`` (row ``p``); ``Q[t][t] = sum_j r[j][t]^2``: ``r_p^2`` over the pairs ``p = (j, t)``, ``j < t``,
    ``(1 - r_p)^2`` over ``p = (t, j)``, ``t < j`` (row ``n_pairs + t``).
    """
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
    # r - 1 is -(1 - r) exactly, so r (r - 1) = -r (1 - r) and (r - 1)^2 = (1 - r)^2, one pass fewer
    r_minus_1 = g.op("Sub", [r, g.const(1.0, "one")], "r_minus_1")
    off = g.op("Mul", [r, r_minus_1], "q_off")  # (n_pairs, n)
    squares = g.op(
        "Concat", [g.op("Mul", [r, r], "r2"), g.op("Mul", [r_minus_1, r_minus_1], "r2c")], "sq2", axis=0
    )
    k = len(svc.classes_)
    diag = g.op("MatMul", [g.const(_diagonal_sum(k), "diag_sum"), squares], "q_diag")  # (k, n)
    return g.op("Concat", [off, diag], "q_parts", axis=0)


def _rows(g: _Graph, q: str, k: int) -> list[list[str]]:
    """``Q[t][j]`` as (1, n) rows, indexed ``[t][j]``, from the entries of ``_q_entries``."""
    rows = g.ops("Split", [q], "q_row", k * (k + 1) // 2, axis=0)
    return [[rows[_entry(k, t, j)] for j in range(k)] for t in range(k)]


def _first_stopping_rule(g: _Graph, k: int, q: str) -> tuple[list[str], list[str], str, str]:
    """The start ``p = 1/k`` (k rows), its ``Qp`` (k rows), ``pQp`` and the running mask.

    At the start ``Qp_t = sum_j Q[t][j] / k`` and ``pQp = sum_t Qp_t / k`` are linear in the entries of
    ``Q``: one matrix product.
    """
    share = float(np.float32(1.0 / k))
    m = np.zeros((k + 1, k * (k + 1) // 2), dtype=np.float64)
    for t in range(k):
        for j in range(k):
            m[t, _entry(k, t, j)] += share
    m[k] = share * m[:k].sum(axis=0)
    rows = g.ops("Split", [g.op("MatMul", [g.const(m, "first_qp"), q], "first_qp")], "first", k + 1, axis=0)
    n_rows = g.op("Shape", [q], "n_rows", start=1)
    row_shape = g.op("Concat", [g.const([1], "one_i", np.int64), n_rows], "row_shape", axis=0)
    p = [g.op("Expand", [g.const([[share]], "p0"), row_shape], "p_start")] * k
    qp, pqp = rows[:k], rows[k]
    return p, qp, pqp, _goes_on(g, k, qp, pqp, None)


def _goes_on(g: _Graph, k: int, qp: list[str], pqp: str, running: str | None) -> str:
    """The (1, n) mask (1.0 / 0.0) of the pixels that go on: still running and ``max_t |Qp_t - pQp| >= eps``.

    ``eps = 0.005 / k``, libsvm's stopping rule.
    """
    from onnx import TensorProto

    gaps = [g.op("Abs", [g.op("Sub", [row, pqp], "gap")], "abs_gap") for row in qp]
    error = g.op("Max", gaps, "error")
    goes = g.op("GreaterOrEqual", [error, g.const(0.005 / k, "eps")], "goes")
    goes_f = g.op("Cast", [goes], "goes_f", to=TensorProto.FLOAT)
    return goes_f if running is None else g.op("Mul", [running, goes_f], "still")


def _round(
    g: _Graph, k: int, q: list[list[str]], p: list[str], qp: list[str], pqp: str, running: str
) -> tuple[list[str], list[str], str, str]:
    """One round of libsvm's coupling (``k`` coordinate steps) for the running pixels, then its stopping rule.

    ``p``, ``Qp``: k rows (1, n); ``pQp`` (1, n); ``running`` (1, n): 1.0 where the stopping rule said go on,
    0.0 elsewhere: there every step is multiplied by 0, so the pixel keeps its ``p`` exactly.
    The steps run on an unnormalised ``p~`` with ``p = s p~`` (libsvm divides everything by ``1 + diff``
    after each step; ``s`` carries those divisions): ``delta = (s pQp~ - Qp~_t) / Q_tt``, ``p~_t += delta``,
    ``pQp~ += delta (delta Q_tt + 2 Qp~_t)``, ``s /= 1 + s delta``; of ``Qp~`` only the entry a step reads
    is formed, ``Qp_t + sum_{u < t} delta_u Q_ut``. Returns the new ``p``, ``Qp``, ``pQp`` and mask;
    ``Qp`` and ``pQp`` recomputed from ``p`` (as libsvm does before its stopping rule).
    """
    one = g.const(1.0, "one")
    scale = one
    w = pqp
    deltas: list[str] = []
    for t in range(k):
        current = qp[t]
        for u, delta_u in enumerate(deltas):
            current = g.op("Add", [current, g.op("Mul", [delta_u, q[u][t]], "dq")], "qp_t")
        q_tt = q[t][t]
        sw = w if t == 0 else g.op("Mul", [scale, w], "s_w")
        step = g.op("Div", [g.op("Sub", [sw, current], "num"), q_tt], "step")
        delta = g.op("Mul", [step, running], "delta")
        deltas.append(delta)
        if t < k - 1:
            grow = g.op(
                "Add",
                [g.op("Mul", [delta, q_tt], "dq_tt"), g.op("Add", [current, current], "two_qp")],
                "grow",
            )
            w = g.op("Add", [w, g.op("Mul", [delta, grow], "inc")], "w")
        sd = delta if t == 0 else g.op("Mul", [scale, delta], "sd")
        scale = g.op("Div", [scale, g.op("Add", [one, sd], "one_plus")], "s")
    # step t moves only p~_t, by delta_t
    stepped = [g.op("Mul", [g.op("Add", [p[t], deltas[t]], "p_raw"), scale], "p") for t in range(k)]
    new_qp = [
        g.op("Sum", [g.op("Mul", [q[t][j], stepped[j]], "q_p") for j in range(k)], "qp") for t in range(k)
    ]
    new_pqp = g.op("Sum", [g.op("Mul", [stepped[t], new_qp[t]], "p_qp") for t in range(k)], "pqp")
    return stepped, new_qp, new_pqp, _goes_on(g, k, new_qp, new_pqp, running)


def _remaining_rounds(g: _Graph, k: int, q: str, p: list[str], qp: list[str], pqp: str, running: str) -> str:
    """``p`` (k, n) after the rounds that follow the unrolled ones, which run on the running pixels alone.

    Only when a pixel still runs (an ``If``): its state is gathered (``NonZero``), an ONNX ``Loop`` runs
    ``_round`` on it until none runs (at most ``max(100, k)`` rounds in all), and its ``p`` is scattered
    back into the others'.
    """
    from onnx import TensorProto, helper

    p_all = g.op("Concat", p, "p_all", axis=0)  # (k, n)
    state = g.op("Concat", [p_all, *qp, pqp, running], "state", axis=0)  # (2 k + 2, n)
    any_running = g.op(
        "Cast", [g.op("ReduceMax", [running], "any_f", keepdims=0)], "any", to=TensorProto.BOOL
    )
    rest = _Graph("rest_")
    flat = rest.op("Reshape", [running, rest.const([-1], "flat", np.int64)], "running_flat")
    nonzero = rest.op("NonZero", [rest.op("Cast", [flat], "running_b", to=TensorProto.BOOL)], "nz")  # (1, m)
    column = rest.op("Squeeze", [nonzero, rest.const([0], "ax0", np.int64)], "running_index")  # (m,)
    sub_state = rest.op("Gather", [state, column], "sub_state", axis=1)
    sub_q = _rows(rest, rest.op("Gather", [q, column], "sub_q", axis=1), k)
    max_iter = rest.const(max(100, k) - UNROLLED, "max_iter", np.int64)
    final_state = rest.op("Loop", [max_iter, any_running, sub_state], "coupled", body=_loop_body(k, sub_q))
    ends = [
        rest.const([0], "from", np.int64),
        rest.const([k], "to", np.int64),
        rest.const([0], "ax", np.int64),
    ]
    p_sub = rest.op("Slice", [final_state, *ends], "p_sub")  # (k, m)
    m_shape = rest.op("Shape", [column], "m_shape")
    km = rest.op("Concat", [rest.const([k], "k_i", np.int64), m_shape], "km", axis=0)
    indices = rest.op("Expand", [nonzero, km], "sub_index")  # (k, m)
    rest.nodes.append(helper.make_node("ScatterElements", [p_all, indices, p_sub], ["p_scattered"], axis=1))
    out = [helper.make_tensor_value_info("p_scattered", TensorProto.FLOAT, None)]
    then_branch = helper.make_graph(rest.nodes, "remaining_rounds", [], out, rest.initializers)
    kept = helper.make_node("Identity", [p_all], ["p_scattered"])
    else_branch = helper.make_graph([kept], "all_stopped", [], out)
    return g.op("If", [any_running], "p_final", then_branch=then_branch, else_branch=else_branch)


def _loop_body(k: int, q: list[list[str]]) -> Any:
    """The ``Loop`` body: ``_round`` on the state ``[p; Qp; pQp; running]`` (2 k + 2, m) until none runs."""
    from onnx import TensorProto, helper

    g = _Graph("round_")
    rows = g.ops("Split", ["state_in"], "state_row", 2 * k + 2, axis=0)
    p, qp, pqp, running = rows[:k], rows[k : 2 * k], rows[2 * k], rows[2 * k + 1]
    p, qp, pqp, running = _round(g, k, q, p, qp, pqp, running)
    g.nodes.append(helper.make_node("Concat", [*p, *qp, pqp, running], ["state_out"], axis=0))
    any_f = g.op("ReduceMax", [running], "any_f", keepdims=0)
    g.nodes.append(helper.make_node("Cast", [any_f], ["cond_out"], to=TensorProto.BOOL))
    return helper.make_graph(
        g.nodes,
        "coupling_round",
        [
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_in", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, None),
        ],
        g.initializers,
    )
