"""The dense-algebra SVM graph: libsvm's decision values, Platt scaling and coupling, parity, determinism."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest

from lulc.decision import decide_labels
from training import svm_graph
from training.export import to_onnx
from training.models import classes_of, make_estimator, quiet_estimators
from training.svm_graph import dense_svm_parts, pair_coefficients

from .conftest import lean_recipe, tutorial_recipe


def _data(k: int, n: int, seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Overlapping classes in 5 features (reflectance-like values), so that the coupling has work to do."""
    rng = np.random.default_rng(seed)
    y = rng.integers(1, k + 1, size=n)
    x = rng.normal(0.0, 0.06, size=(n, 5)) + 0.1 * y[:, None] * rng.random(5)
    return x.astype(np.float32), y.astype(np.int64)


def _fit(k: int, scaled: bool = True, seed: int = 0) -> tuple[Any, npt.NDArray[np.float32]]:
    x, y = _data(k, 300, seed)
    with quiet_estimators():
        model = make_estimator("svm", seed=0)
        if not scaled:
            model = model.named_steps["svc"]
        model.fit(x, y)
    return model, x


def _session(onx: Any, threads: int = 1) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(onx.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _pixels(n: int, seed: int) -> npt.NDArray[np.float32]:
    x, _ = _data(6, n, seed)
    x[: n // 20] *= 4.0  # some far outliers: the kernel underflows, the coupling starts from near 0.5
    return x


def _svc_and_scaled(model: Any, x: npt.NDArray[np.float32]) -> tuple[Any, npt.NDArray[np.float64]]:
    scaler, svc = dense_svm_parts(model) or (None, None)
    scaled = scaler.transform(x) if scaler is not None else x
    return svc, np.asarray(scaled, dtype=np.float64)


@pytest.mark.parametrize("k", [2, 3, 6])
def test_pair_coefficients_reproduce_libsvm_decision_values(k: int) -> None:
    model, _ = _fit(k)
    svc, scaled = _svc_and_scaled(model, _pixels(2000, 1))
    c, b = pair_coefficients(svc)
    sq = (scaled**2).sum(1)[:, None] + (svc.support_vectors_**2).sum(1)[None, :]
    kernel = np.exp(-svc._gamma * (sq - 2.0 * scaled @ svc.support_vectors_.T))
    ours = kernel @ c + b
    svc.decision_function_shape = "ovo"
    theirs = svc.decision_function(scaled).reshape(len(scaled), -1)
    if k == 2:
        theirs = -theirs  # scikit-learn flips libsvm's sign for two classes
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


def _with_output(onx: Any, prefix: str) -> Any:
    """The graph with the first intermediate whose name starts with ``prefix`` as an extra output."""
    copy = onnx.ModelProto()
    copy.CopyFrom(onx)
    name = next(o for node in copy.graph.node for o in node.output if o.startswith(prefix))
    copy.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return copy


@pytest.mark.parametrize("k", [2, 6])
def test_graph_decision_values_are_libsvm_s_within_float32(k: int) -> None:
    model, _ = _fit(k)
    pixels = _pixels(3000, 2)
    onx = to_onnx(model, 5, "svm")
    (decision,) = _session(_with_output(onx, "decision")).run(None, {"features": pixels})[2:]
    svc, scaled = _svc_and_scaled(model, pixels)
    svc.decision_function_shape = "ovo"
    theirs = svc.decision_function(scaled).reshape(len(scaled), -1) * (-1 if k == 2 else 1)
    assert float(np.abs(decision.T - theirs).max()) < 1e-4


@pytest.mark.parametrize(("k", "scaled"), [(2, True), (3, True), (4, False), (6, True)])
def test_probabilities_and_labels_match_scikit_learn(k: int, scaled: bool) -> None:
    model, x = _fit(k, scaled)
    onx = to_onnx(model, 5, "svm")
    assert {node.op_type for node in onx.graph.node}.isdisjoint({"SVMClassifier", "SVMRegressor"})
    assert [i.domain for i in onx.opset_import] == [""]  # no ai.onnx.ml operator at all
    onnx.checker.check_model(onx, full_check=True)  # a valid, fully typed ONNX model (opset 17)
    pixels = np.concatenate([x, _pixels(20_000, 3)])
    with quiet_estimators():
        theirs = model.predict_proba(pixels)
    label, ours = _session(onx).run(None, {"features": pixels})
    # float32 vs float64 moves probabilities by a few 1e-6; a pixel whose coupling error lands right at
    # libsvm's stopping threshold may stop one round earlier or later (ONNX Runtime's SVMClassifier too)
    close = np.abs(ours - theirs).max(axis=1) < 2e-5
    assert close.mean() >= 0.9999
    order = classes_of(model)
    np.testing.assert_array_equal(decide_labels(ours, order), decide_labels(theirs, order))
    np.testing.assert_array_equal(label, np.asarray(order)[np.argmax(ours, axis=1)])


def test_an_svm_of_large_coefficients_sums_in_double_and_matches_scikit_learn() -> None:
    """A model at C = 1000 has float64 kernel sums; the default model's stay float32.

    In float32 the sums of kernels near 1 were off by 0.1 in the decision values and failed the parity gate.
    """
    x, y = _data(6, 300, 0)
    with quiet_estimators():
        wide = make_estimator("svm", 0, 1, {"C": 1000.0, "gamma": 0.01}).fit(x, y)
        narrow, _ = _fit(6)
    _, svc = dense_svm_parts(wide) or (None, None)
    assert float(np.abs(svc._dual_coef_).sum(axis=1).max()) > svm_graph.DOUBLE_SUMS_ABOVE
    doubles = {
        name: [n for n in to_onnx(m, 5, "svm").graph.node if n.op_type == "Cast" and n.attribute[0].i == 11]
        for name, m in (("wide", wide), ("narrow", narrow))
    }
    assert doubles["wide"]
    assert not doubles["narrow"]  # the fast float32 graph, as before
    pixels = np.concatenate([x, _pixels(20_000, 3)])
    with quiet_estimators():
        theirs = wide.predict_proba(pixels)
    _, ours = _session(to_onnx(wide, 5, "svm")).run(None, {"features": pixels})
    close = np.abs(ours - theirs).max(axis=1) < 2e-5  # as the default model's (stopping-rule pixels aside)
    assert close.mean() >= 0.9999
    order = classes_of(wide)
    np.testing.assert_array_equal(decide_labels(ours, order), decide_labels(theirs, order))


def test_stock_graph_stays_available_and_agrees() -> None:
    model, _ = _fit(4)
    pixels = _pixels(5000, 4)
    stock = to_onnx(model, 5, "svm", graph="stock")
    assert "SVMClassifier" in {node.op_type for node in stock.graph.node}
    fast = to_onnx(model, 5, "svm")
    (p_stock,) = _session(stock).run(["probabilities"], {"features": pixels})
    (p_fast,) = _session(fast).run(["probabilities"], {"features": pixels})
    order = classes_of(model)
    np.testing.assert_array_equal(decide_labels(p_fast, order), decide_labels(p_stock, order))


@pytest.mark.parametrize("unrolled", [1, svm_graph.UNROLLED])
def test_results_do_not_depend_on_chunks_or_threads(unrolled: int, monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = _fit(6)
    pixels = _pixels(9000, 5)
    monkeypatch.setattr(svm_graph, "UNROLLED", unrolled)  # 1: most pixels go through the Loop
    onx = to_onnx(model, 5, "svm")
    (whole,) = _session(onx, 1).run(["probabilities"], {"features": pixels})
    for threads, rows in ((1, 777), (2, 4096), (2, 9000)):
        session = _session(onx, threads)
        parts = [
            session.run(["probabilities"], {"features": pixels[a : a + rows]})[0]
            for a in range(0, len(pixels), rows)
        ]
        assert np.concatenate(parts).tobytes() == whole.tobytes(), (threads, rows)
    # one row per call: ONNX Runtime's matrix products take another path for a single column
    session = _session(onx, 1)
    singles = [session.run(["probabilities"], {"features": pixels[i : i + 1]})[0] for i in range(300)]
    assert np.concatenate(singles).tobytes() == whole[:300].tobytes()


@pytest.mark.parametrize("unrolled", [0, 1, 2])
def test_rounds_in_the_loop_on_the_running_pixels_equal_the_unrolled_rounds(
    unrolled: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rounds after ``UNROLLED`` run on the gathered running pixels alone: the same bytes as unrolled."""
    model, _ = _fit(6)
    pixels = _pixels(6000, 7)
    (unrolled_all,) = _session(to_onnx(model, 5, "svm")).run(["probabilities"], {"features": pixels})
    monkeypatch.setattr(svm_graph, "UNROLLED", unrolled)
    looped = to_onnx(model, 5, "svm")
    assert "If" in {node.op_type for node in looped.graph.node}
    session = _session(looped)
    (ours,) = session.run(["probabilities"], {"features": pixels})
    assert ours.tobytes() == unrolled_all.tobytes()
    if unrolled == 0:  # every round ran in the Loop: without it p would stay at its start, 1/k
        assert (np.abs(ours - 1 / 6).max(axis=1) > 0.01).mean() > 0.9


def test_export_is_deterministic() -> None:
    model, _ = _fit(3)
    first = to_onnx(model, 5, "svm").SerializeToString(deterministic=True)
    assert to_onnx(model, 5, "svm").SerializeToString(deterministic=True) == first


def test_other_svms_use_the_stock_converter() -> None:
    x, y = _data(3, 200, 6)
    with quiet_estimators():
        linear = make_estimator("svm", seed=0, params={"kernel": "linear"}).fit(x, y)
    assert dense_svm_parts(linear) is None
    onx = to_onnx(linear, 5, "svm")
    assert "SVMClassifier" in {node.op_type for node in onx.graph.node}


def _parity(out: Path) -> dict[str, Any]:
    metrics = json.loads((out / "metrics.json").read_text())
    graph = onnx.load(str(out / "model.onnx")).graph
    assert "SVMClassifier" not in {node.op_type for node in graph.node}
    return dict(metrics["parity"])


def test_tutorial_svm_labels_agree_with_scikit_learn_everywhere(
    tutorial: Path, tutorial_classes: Path, tmp_path: Path
) -> None:
    from training.pipeline import train

    cv = {"scheme": "shuffle", "repeats": 2, "test_size": 0.3}
    train(tutorial_recipe(tutorial, tmp_path / "model", tutorial_classes, models=["svm"], cv=cv))
    parity = _parity(tmp_path / "model")
    assert parity["test_agreement"] == 1.0
    assert parity["pixel_agreement"] == 1.0
    assert parity["pixel_n"] == 20_000


def test_demo_world_svm_labels_agree_with_scikit_learn_everywhere(world: Path, tmp_path: Path) -> None:
    from training.pipeline import train

    train(lean_recipe(world, models=["svm"], model_params={}, out=str(tmp_path / "model")))
    parity = _parity(tmp_path / "model")
    assert parity["test_agreement"] == 1.0
    assert parity["pixel_agreement"] == 1.0
    assert parity["pixel_n"] == 20_000
