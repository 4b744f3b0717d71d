"""A model's graph cut down to the outputs a run fetches: runs without ``aoa.tif`` do not compute the DI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from lulc.classes import ClassTable
from lulc.contract import Applicability
from service.graph_outputs import without_outputs
from service.runner import load_model
from tests.service.engine_support import make_contract
from training.aoa import DI_OUTPUT, add_dissimilarity_output, fit_applicability
from training.export import embed_contract, to_onnx
from training.models import make_estimator, quiet_estimators

CLASSES = ClassTable.from_labels([1, 2, 3])
PREFIX = "lulc_aoa_"
"""What ``training.aoa`` names the DI's nodes and constants."""


@pytest.fixture(scope="module")
def trust_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """The dense SVM graph (its coupling runs in an ``If`` subgraph) with the DI as a third output."""
    rng = np.random.default_rng(4)
    y = np.repeat(np.array([1, 2, 3]), 60)
    x = (rng.normal(0, 0.3, (180, 3)) + y[:, None] * np.array([0.4, 0.2, 0.1])).astype(np.float32)
    applicability = fit_applicability(x, np.arange(180) % 5, [1.0, 1.0, 1.0])
    contract = make_contract(CLASSES, [1, 2, 3], bands=("red", "nir", "swir16"), model_type="svm")
    contract = contract.model_copy(
        update={"applicability": Applicability(output=DI_OUTPUT, threshold=applicability.threshold)}
    )
    with quiet_estimators():
        graph = to_onnx(make_estimator("svm", seed=0).fit(x, y), 3, "svm")
    path = tmp_path_factory.mktemp("trust") / "model.onnx"
    path.write_bytes(embed_contract(add_dissimilarity_output(graph, applicability), contract))
    probe = (rng.normal(0, 0.6, (5000, 3)) + 0.4).astype(np.float32)
    return path, probe


def _run(model: bytes, probe: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: probe}), strict=True))


def test_the_cut_graph_has_no_di_nodes_and_gives_the_same_bytes(trust_model: tuple[Path, np.ndarray]) -> None:
    path, probe = trust_model
    full = onnx.load(str(path))
    cut = onnx.load_from_string(without_outputs(path.read_bytes(), [DI_OUTPUT]))
    onnx.checker.check_model(cut)
    di_nodes = [n for n in full.graph.node if any(o.startswith(PREFIX) or o == DI_OUTPUT for o in n.output)]
    assert len(di_nodes) > 5  # the control: the full graph does compute the DI
    assert [o.name for o in cut.graph.output] == [o.name for o in full.graph.output if o.name != DI_OUTPUT]
    assert len(cut.graph.node) == len(full.graph.node) - len(di_nodes)
    assert not [i.name for i in cut.graph.initializer if i.name.startswith(PREFIX)]
    assert any(n.op_type == "If" for n in cut.graph.node)  # the subgraph's outer names were kept
    assert {p.key for p in cut.metadata_props} == {p.key for p in full.metadata_props}
    whole = _run(path.read_bytes(), probe)
    kept = _run(cut.SerializeToString(), probe)
    assert DI_OUTPUT in whole
    assert DI_OUTPUT not in kept
    for name, value in kept.items():
        assert value.tobytes() == whole[name].tobytes()


def test_dropping_an_unknown_output_or_every_output_is_refused(trust_model: tuple[Path, np.ndarray]) -> None:
    model = trust_model[0].read_bytes()
    with pytest.raises(ValueError, match="no output nope"):
        without_outputs(model, ["nope"])
    names = [o.name for o in onnx.load_from_string(model).graph.output]
    with pytest.raises(ValueError, match="every output"):
        without_outputs(model, names)


def test_a_run_without_the_di_uses_the_cut_graph_and_gets_the_same_maps(
    trust_model: tuple[Path, np.ndarray],
) -> None:
    path, probe = trust_model
    runner = load_model(path)
    with_di = runner.predict(probe, dissimilarity=True)
    without = runner.predict(probe, dissimilarity=False)
    assert with_di.dissimilarity is not None
    assert without.dissimilarity is None
    assert without.labels.tobytes() == with_di.labels.tobytes()
    assert without.probabilities is not None
    assert with_di.probabilities is not None
    assert without.probabilities.tobytes() == with_di.probabilities.tobytes()
    # the session behind the second call is the cut graph's: ONNX Runtime would run the DI nodes of the
    # whole graph even when their output is not fetched
    assert DI_OUTPUT not in {o.name for o in runner._session(runner._load(), False).get_outputs()}
    assert DI_OUTPUT in {o.name for o in runner._session(runner._load(), True).get_outputs()}


def test_the_cut_graph_is_the_loaded_models_even_if_the_file_is_replaced(
    trust_model: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    """The runner reads the model file once: the DI-free session, made later, is of the same model."""
    path, probe = trust_model
    copy = tmp_path / "model.onnx"
    copy.write_bytes(path.read_bytes())
    runner = load_model(copy)
    with_di = runner.predict(probe, dissimilarity=True)
    other = onnx.load(str(path))
    for init in other.graph.initializer:  # another model: every rho (intercept) of the SVM shifted
        if init.name.startswith("rho"):
            init.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(init) + 5.0, init.name))
    copy.write_bytes(other.SerializeToString())
    replaced = load_model(copy).predict(probe, dissimilarity=True)
    assert replaced.probabilities is not None
    assert with_di.probabilities is not None
    assert replaced.probabilities.tobytes() != with_di.probabilities.tobytes()  # control: it differs
    without = runner.predict(probe, dissimilarity=False)  # the first runner's cut graph, made only now
    assert without.probabilities is not None
    assert without.probabilities.tobytes() == with_di.probabilities.tobytes()
