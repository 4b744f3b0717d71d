"""The tutorial's own workflow on its real data: repeated-split accuracy per model, nodata masked, outputs."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from lulc.classes import load_class_table
from lulc.contract import METADATA_KEY, contract_from_json, load_contract
from training.config import CvOptions
from training.evaluate import cross_validate, repeated_splits
from training.imagery import open_local_imagery
from training.models import make_estimator
from training.pipeline import train
from training.points import read_points
from training.report import NOT_SPATIAL
from training.sampling import sample_pixels, sample_points

from .conftest import tutorial_recipe

# Mean accuracy of the tutorial's recipe over 20 random stratified 70/30 splits (README of lulc_py).
REFERENCE = {"svm": 0.984, "rf": 0.958, "dt": 0.960}


@pytest.fixture(scope="module")
def tutorial_run(tutorial: Path, tutorial_classes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tut") / "model"
    cv = {"scheme": "shuffle", "repeats": 20, "test_size": 0.3}
    train(tutorial_recipe(tutorial, out, tutorial_classes, models=["svm", "rf", "dt"], cv=cv))
    return out


@pytest.mark.slow
def test_repeated_split_accuracy_matches_the_tutorial(tutorial: Path, tutorial_classes: Path) -> None:
    """Our sampler, models and splits over all 121 points give the tutorial's repeated-split figures."""
    points = read_points(str(tutorial / "samples.shp"), "labels", load_class_table(str(tutorial_classes)))
    imagery = open_local_imagery(tutorial / "s2image.tif", ["blue", "green", "red", "nir"], None, None, None)
    samples = sample_points(imagery, points)
    features = samples.reflectance  # no indices: the bands are the features
    splits, name = repeated_splits(samples.labels, CvOptions(scheme="shuffle", repeats=20, test_size=0.3), 0)
    assert (len(splits), name) == (20, "20 random stratified 70/30 splits")
    for model, expected in REFERENCE.items():
        fresh = functools.partial(make_estimator, model, 0, 1)
        result = cross_validate(fresh, features, samples.labels, splits, name)
        accuracy = result.summary()["overall_accuracy"]
        assert abs(accuracy["mean"] - expected) <= 0.03, (model, accuracy)


def test_the_runs_repeated_estimate_is_of_its_training_part(tutorial_run: Path) -> None:
    """The leaderboard's CV, which picks the kept model, never scores a hold-out sample."""
    metrics = json.loads((tutorial_run / "metrics.json").read_text())
    train_n, test_n = metrics["samples"]["train"], metrics["samples"]["test"]
    assert (train_n + test_n, test_n) == (121, 37)
    for entry in metrics["leaderboard"]:
        assert entry["cv"]["splits"] == 20
        assert entry["cv"]["scheme"].endswith(f"of the training part ({train_n} of 121 samples)")
    assert metrics["selection"] == {"by": "repeated CV of the training part", "note": None}
    report = (tutorial_run / "report.md").read_text()
    assert "20 random stratified 70/30 splits, of the training part (84 of 121 samples)" in report
    assert report.count("(mean of 20 splits)") == 3
    assert "Kept model chosen by repeated CV of the training part." in report
    assert NOT_SPATIAL in report, "random splits of clustered points say they are optimistic"
    assert metrics["samples"] == metrics["samples"] | {"points": 121, "used": 121, "dropped": []}
    assert [c["name"] for c in metrics["classes"]] == ["Water", "Dense Veg", "Veg", "Impervious"]


def test_model_directory_is_complete_and_consistent(tutorial_run: Path) -> None:
    files = sorted(p.name for p in tutorial_run.iterdir())
    assert files == ["confusion_matrix.png", "metrics.json", "model.json", "model.onnx", "report.md"]
    onnx_bytes = (tutorial_run / "model.onnx").read_bytes()
    item = json.loads((tutorial_run / "model.json").read_text())
    assert item["assets"]["model"]["file:checksum"] == "1220" + hashlib.sha256(onnx_bytes).hexdigest()
    assert item["assets"]["model"]["file:size"] == len(onnx_bytes)
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


def test_a_model_picked_by_its_hold_out_says_so(
    tutorial: Path, tutorial_classes: Path, tmp_path: Path
) -> None:
    """Without a repeated CV the hold-out picks among the models: its accuracy is then optimistic."""
    config = tutorial_recipe(
        tutorial, tmp_path / "model", tutorial_classes, models=["dt", "rf"], cv={"repeats": 0}, trust=False
    )
    metrics = train(config).metrics
    assert metrics["selection"]["by"] == "hold-out accuracy"
    assert "chose the kept model among 2" in metrics["selection"]["note"]
    report = (tmp_path / "model" / "report.md").read_text()
    assert "Kept model chosen by hold-out accuracy. No repeated CV (cv.repeats: 0)" in report


def test_an_image_that_records_its_acquisition_dates_the_model(
    tutorial: Path, tutorial_classes: Path, tmp_path: Path
) -> None:
    """The acquisition a GeoTIFF records (TIFF DateTime) is the model's time, not the file's mtime."""
    import rasterio
    import rasterio.shutil

    image = tmp_path / "dated.tif"
    rasterio.shutil.copy(str(tutorial / "s2image.tif"), str(image), driver="GTiff")
    with rasterio.open(image, "r+") as dst:
        dst.update_tags(TIFFTAG_DATETIME="2019:07:04 10:30:21")
    lean = {"models": ["dt"], "cv": {"repeats": 0}, "trust": False}
    config = tutorial_recipe(tutorial, tmp_path / "model", tutorial_classes, image=str(image), **lean)
    result = train(config)
    assert result.contract.provenance.time_window == "2019-07-04T10:30:21Z"
    item = json.loads((tmp_path / "model" / "model.json").read_text())
    assert item["properties"]["datetime"] == "2019-07-04T10:30:21Z"
    assert item["properties"]["lulc:time_window"] == "2019-07-04T10:30:21Z"
