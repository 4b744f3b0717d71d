"""The ONNX runner: loading from a directory, file or item; corrupt files; contracts; threads; decisions."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lulc.checksum import multihash_sha256
from lulc.classes import ClassTable
from lulc.contract import to_mlm_item
from lulc.errors import ContractError
from service.runner import CHUNK_ROWS, OnnxRunner, load_model
from tests.service.engine_support import export_onnx, fit_forest, make_contract

CLASSES = ClassTable.from_labels([1, 2, 3])


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    x = rng.random((90, 3), dtype=np.float32)
    y = np.repeat(np.array([1, 2, 3]), 30)
    x[y == 2, 0] += 1.0
    x[y == 3, 1] += 1.0
    contract = make_contract(CLASSES, [1, 2, 3], bands=("red", "nir", "swir16"), model_type="rf")
    folder = tmp_path_factory.mktemp("model")
    path = export_onnx(fit_forest(x, y), 3, contract, folder / "model.onnx")
    item = to_mlm_item(contract, "model.onnx", multihash_sha256(path), "2024-01-01T00:00:00Z")
    (folder / "model.json").write_text(json.dumps(item))
    return path


def test_load_from_directory_onnx_or_item(model: Path) -> None:
    from_dir = load_model(model.parent)
    from_item = load_model(model.parent / "model.json")
    from_file = load_model(model)
    for runner in (from_dir, from_item, from_file):
        assert runner.contract.inputs.bands == ["red", "nir", "swir16"]
        assert runner.origin == str(model.resolve()) or Path(runner.origin).resolve() == model.resolve()
        assert runner.item_href == str((model.parent / "model.json").resolve())


def test_predictions_follow_the_contract_and_are_thread_safe(model: Path) -> None:
    runner = load_model(model, threads=1)
    rng = np.random.default_rng(1)
    x = rng.random((5000, 3), dtype=np.float32)
    x[:2000, 0] += 1.0
    serial = runner.predict(x)
    assert set(np.unique(serial.labels).tolist()) <= {1, 2, 3}
    assert serial.probabilities is not None
    assert serial.probabilities.shape == (5000, 3)
    np.testing.assert_allclose(serial.probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert (serial.labels[:2000] == 2).mean() > 0.8
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(runner.predict, [x] * 8))
    for p in parallel:
        np.testing.assert_array_equal(p.labels, serial.labels)
    empty = runner.predict(np.empty((0, 3), np.float32))
    assert empty.labels.shape == (0,)


def test_the_runner_pickles_as_its_path_and_reopens(model: Path) -> None:
    import pickle

    runner = load_model(model)
    clone = pickle.loads(pickle.dumps(runner))
    assert isinstance(clone, OnnxRunner)
    x = np.random.default_rng(2).random((100, 3), dtype=np.float32)
    np.testing.assert_array_equal(clone.predict(x).labels, runner.predict(x).labels)


def test_a_worker_whose_file_differs_from_the_clients_refuses_to_run_it(model: Path, tmp_path: Path) -> None:
    """Review: a Dask worker ran whatever model sat at the path on its disk, under the client's model name."""
    import pickle
    import shutil

    here = tmp_path / "model.onnx"
    shutil.copy(model, here)
    sent = pickle.dumps(OnnxRunner(here))
    x = np.random.default_rng(2).random((10, 3), dtype=np.float32)
    assert pickle.loads(sent).predict(x).labels.size == 10  # the same file: it runs
    rng = np.random.default_rng(1)  # the worker's disk holds another version of the model
    other_x, other_y = rng.random((90, 3), dtype=np.float32), np.repeat(np.array([1, 2, 3]), 30)
    contract = make_contract(CLASSES, [1, 2, 3], bands=("red", "nir", "swir16"), model_type="rf")
    export_onnx(fit_forest(other_x, other_y), 3, contract, here)
    with pytest.raises(ContractError, match="is not the one the run was started with"):
        pickle.loads(sent).predict(x)


def test_a_corrupt_onnx_file_is_a_contract_error(model: Path, tmp_path: Path) -> None:
    broken = tmp_path / "model.onnx"
    broken.write_bytes(model.read_bytes()[: len(model.read_bytes()) // 3])
    with pytest.raises(ContractError, match=r"model\.onnx is not a readable ONNX model"):
        load_model(broken)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not protobuf at all" * 10)
    with pytest.raises(ContractError, match="not a readable ONNX model"):
        load_model(garbage)


def test_an_onnx_file_without_a_contract_is_refused(tmp_path: Path) -> None:
    import onnx

    from lulc.contract import METADATA_KEY

    contract = make_contract(CLASSES, [1, 2, 3], bands=("red", "nir", "swir16"))
    x = np.random.default_rng(0).random((30, 3), dtype=np.float32)
    path = export_onnx(fit_forest(x, np.repeat(np.array([1, 2, 3]), 10)), 3, contract, tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.save(proto, str(path))
    with pytest.raises(ContractError, match="carries no lulc-stac model contract"):
        load_model(path)


def test_a_graph_whose_width_differs_from_the_contract_is_refused(tmp_path: Path) -> None:
    contract = make_contract(CLASSES, [1, 2, 3], bands=("red", "nir", "swir16"), indices=("ndvi",))
    x = np.random.default_rng(0).random((30, 3), dtype=np.float32)
    path = export_onnx(fit_forest(x, np.repeat(np.array([1, 2, 3]), 10)), 3, contract, tmp_path / "m.onnx")
    with pytest.raises(ContractError, match="4 features"):
        load_model(path)


def test_missing_models_are_contract_errors(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="does not exist"):
        load_model(tmp_path / "nope.onnx")
    with pytest.raises(ContractError, match=r"model\.json or exactly one"):
        load_model(tmp_path)


def test_label_decision_uses_the_graph_label(tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    contract = make_contract(CLASSES, [1, 2, 3], bands=("red", "nir", "swir16"), model_type="dt")
    contract = contract.model_copy(
        update={"outputs": contract.outputs.model_copy(update={"decision": "label"})}
    )
    rng = np.random.default_rng(0)
    x = rng.random((90, 3), dtype=np.float32)
    y = np.repeat(np.array([1, 2, 3]), 30)
    tree = DecisionTreeClassifier(random_state=0).fit(x, y)
    runner = load_model(export_onnx(tree, 3, contract, tmp_path / "tree.onnx"))
    probe = rng.random((500, 3), dtype=np.float32)
    np.testing.assert_array_equal(runner.predict(probe).labels, tree.predict(probe))


def test_large_inputs_run_in_chunks_with_the_same_results(model: Path) -> None:
    import onnxruntime as ort

    from lulc.decision import decide_labels

    x = np.random.default_rng(2).random((2 * CHUNK_ROWS + 123, 3), dtype=np.float32)
    chunked = load_model(model).predict(x)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (whole,) = session.run(["probabilities"], {session.get_inputs()[0].name: x})
    assert chunked.probabilities is not None
    np.testing.assert_allclose(chunked.probabilities, whole, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(chunked.labels, decide_labels(whole, [1, 2, 3]))


def _svm_models(tmp_path: Path) -> tuple[Any, Path, Path, np.ndarray]:
    """One fitted SVM exported twice: the stock graph (``SVMClassifier``) and the dense graph.

    Models made before the dense graph hold the stock one; ``lulc train`` writes the dense one now.
    """
    from training.export import embed_contract, to_onnx
    from training.models import make_estimator, quiet_estimators

    rng = np.random.default_rng(4)
    y = np.repeat(np.array([1, 2, 3]), 60)
    x = (rng.normal(0, 0.3, (180, 3)) + y[:, None] * np.array([0.4, 0.2, 0.1])).astype(np.float32)
    contract = make_contract(CLASSES, [1, 2, 3], bands=("red", "nir", "swir16"), model_type="svm")
    with quiet_estimators():
        svm = make_estimator("svm", seed=0).fit(x, y)
        stock = tmp_path / "stock.onnx"
        stock.write_bytes(embed_contract(to_onnx(svm, 3, "svm", graph="stock"), contract))
        dense = tmp_path / "dense.onnx"
        dense.write_bytes(embed_contract(to_onnx(svm, 3, "svm"), contract))
    probe = (rng.normal(0, 0.5, (3 * CHUNK_ROWS + 77, 3)) + 0.4).astype(np.float32)
    return svm, stock, dense, probe


def test_old_svm_graphs_still_run_and_agree_with_the_dense_graph(tmp_path: Path) -> None:
    import onnx

    from lulc.decision import decide_labels

    svm, stock, dense, probe = _svm_models(tmp_path)
    assert "SVMClassifier" in {n.op_type for n in onnx.load(str(stock)).graph.node}
    assert "SVMClassifier" not in {n.op_type for n in onnx.load(str(dense)).graph.node}
    expected = decide_labels(svm.predict_proba(probe), [1, 2, 3])
    old = load_model(stock).predict(probe)
    new = load_model(dense).predict(probe)
    np.testing.assert_array_equal(old.labels, expected)
    np.testing.assert_array_equal(new.labels, expected)


def test_dense_svm_results_are_byte_identical_across_threads_and_calls(tmp_path: Path) -> None:
    _, _, dense, probe = _svm_models(tmp_path)
    one = load_model(dense, threads=1).predict(probe)
    two = load_model(dense, threads=2).predict(probe)
    assert one.probabilities is not None
    assert two.probabilities is not None
    assert one.probabilities.tobytes() == two.probabilities.tobytes()
    runner = load_model(dense, threads=1)
    pieces = [runner.predict(probe[a : a + 1000]) for a in range(0, len(probe), 1000)]
    joined = np.concatenate([p.probabilities for p in pieces if p.probabilities is not None])
    assert joined.tobytes() == one.probabilities.tobytes()
    with ThreadPoolExecutor(2) as pool:
        for again in pool.map(runner.predict, [probe] * 4):
            assert again.labels.tobytes() == one.labels.tobytes()


def test_float64_features_run_and_non_finite_ones_are_refused(model: Path) -> None:
    """A notebook's float64 array runs as float32 (ONNX Runtime refused it); a NaN row is refused.

    It got NaN probabilities and the first class.
    """
    from lulc.errors import InputError

    runner = load_model(model, threads=1)
    x = np.random.default_rng(2).random((100, 3), dtype=np.float32)
    as32 = runner.predict(x)
    as64 = runner.predict(x.astype(np.float64))  # type: ignore[arg-type]
    np.testing.assert_array_equal(as64.labels, as32.labels)
    x[7, 1] = np.nan
    with pytest.raises(InputError, match="NaN or infinite"):
        runner.predict(x)


def test_a_forests_sets_and_percents_do_not_change_with_the_thread_count(tmp_path: Path) -> None:
    """Determinism review: ONNX Runtime sums a forest's trees in an order its thread count sets.

    A vote share of exactly a class set's minimum (k / 100 trees) came out one float32 step either side of
    it: sets.tif differed in 124 of 65,536 pixels between --threads 1 and 2. Rounded as the label rule is,
    sets, percents and labels are the same.
    """
    from sklearn.ensemble import RandomForestClassifier

    from lulc.class_sets import set_members
    from lulc.decision import percent, top_probability

    rng = np.random.default_rng(3)
    x = rng.random((600, 3), dtype=np.float32)
    y = np.repeat(np.array([1, 2, 3]), 200)
    x[y == 2, 0] += 0.3  # overlapping classes: most pixels get fractional vote shares
    x[y == 3, 1] += 0.3
    forest = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(x, y)
    contract = make_contract(CLASSES, [1, 2, 3], bands=("red", "nir", "swir16"), model_type="rf")
    path = export_onnx(forest, 3, contract, tmp_path / "model.onnx")
    probe = rng.random((65_536, 3), dtype=np.float32) * 1.3
    one, two = load_model(path, threads=1).predict(probe), load_model(path, threads=2).predict(probe)
    assert one.probabilities is not None
    assert two.probabilities is not None
    votes = np.round(one.probabilities * 100)
    assert ((votes > 0) & (votes < 100)).mean() > 0.3  # control: many shares between the classes
    np.testing.assert_array_equal(one.labels, two.labels)
    np.testing.assert_array_equal(top_probability(one.probabilities), top_probability(two.probabilities))
    np.testing.assert_array_equal(percent(one.probabilities), percent(two.probabilities))
    for share in (0.2, 0.33, 0.41, 0.5, 0.67):
        np.testing.assert_array_equal(
            set_members(one.probabilities, share), set_members(two.probabilities, share), err_msg=str(share)
        )
