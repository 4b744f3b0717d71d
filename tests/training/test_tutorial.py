"""The tutorial's own workflow on its real data: repeated-split accuracy per model, nodata masked, outputs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from lulc.contract import METADATA_KEY, contract_from_json, load_contract
from training.config import make_config
from training.imagery import open_local_imagery
from training.pipeline import train
from training.sampling import sample_pixels

# Mean accuracy of the tutorial's recipe over 20 random stratified 70/30 splits (README of lulc_py).
REFERENCE = {"svm": 0.984, "rf": 0.958, "dt": 0.960}


@pytest.fixture(scope="module")
def tutorial_run(tutorial: Path, tutorial_classes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tut") / "model"
    config = make_config(
        {
            "image": str(tutorial / "s2image.tif"),
            "bands": ["blue", "green", "red", "nir"],
            "points": str(tutorial / "samples.shp"),
            "label_field": "labels",
            "classes": str(tutorial_classes),
            "models": ["svm", "rf", "dt"],
            "cv": {"scheme": "shuffle", "repeats": 20, "test_size": 0.3},
            "out": str(out),
        }
    )
    train(config)
    return out


@pytest.mark.slow
def test_repeated_split_accuracy_matches_the_tutorial(tutorial_run: Path) -> None:
    metrics = json.loads((tutorial_run / "metrics.json").read_text())
    board = {e["model"]: e for e in metrics["leaderboard"]}
    for model, expected in REFERENCE.items():
        cv = board[model]["cv"]
        assert cv["splits"] == 20
        assert abs(cv["overall_accuracy"]["mean"] - expected) <= 0.03, (model, cv["overall_accuracy"])
    report = (tutorial_run / "report.md").read_text()
    assert "20 random stratified 70/30 splits" in report
    assert report.count("(mean of 20 splits)") == 3
    assert metrics["samples"] == metrics["samples"] | {"points": 121, "used": 121, "dropped": []}
    assert [c["name"] for c in metrics["classes"]] == ["Water", "Dense Veg", "Veg", "Impervious"]


def test_model_directory_is_complete_and_consistent(tutorial_run: Path) -> None:
    files = sorted(p.name for p in tutorial_run.iterdir())
    assert files == ["confusion_matrix.png", "metrics.json", "model.json", "model.onnx", "report.md"]
    onnx_bytes = (tutorial_run / "model.onnx").read_bytes()
    item = json.loads((tutorial_run / "model.json").read_text())
    assert item["assets"]["model"]["file:checksum"] == "1220" + hashlib.sha256(onnx_bytes).hexdigest()
    model = onnx.load_from_string(onnx_bytes)
    meta = {p.key: p.value for p in model.metadata_props}
    contract = contract_from_json(meta[METADATA_KEY], "model.onnx")
    assert contract == load_contract(tutorial_run / "model.json")
    assert contract.inputs.bands == ["blue", "green", "red", "nir"]
    assert contract.inputs.radiometry.scale == 1.0
    assert contract.inputs.radiometry.offset == 0.0
    assert contract.outputs.decision == "probabilities"
    assert item["id"].endswith(contract.version)
    assert [i.name for i in model.graph.input] == ["features"]
    assert [o.name for o in model.graph.output] == ["label", "probabilities", "di"]  # DI: the AOA
    metrics = json.loads((tutorial_run / "metrics.json").read_text())
    assert metrics["parity"]["test_agreement"] >= 0.9999
    assert metrics["parity"]["pixel_n"] > 1000
    assert (tutorial_run / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nodata_slivers_are_masked(tutorial: Path) -> None:
    imagery = open_local_imagery(tutorial / "s2image.tif", ["blue", "green", "red", "nir"], None, None, None)
    pixels = sample_pixels(imagery, 1_000_000, seed=0, max_blocks=100)
    total = imagery.grid.width * imagery.grid.height
    # the README counts 4,458 nodata pixels (3.4e38) outside the AOI quadrilateral
    assert len(pixels) == total - 4458
    assert float(np.max(pixels)) < 2.0
