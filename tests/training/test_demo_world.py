"""Training from STAC on the demo world: honest accuracy, determinism, API and static catalog agree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from lulc.classes import load_class_table
from lulc.contract import contract_from_metadata
from lulc.decision import decide_labels
from lulc.features import compute_features
from training.composite import open_stac_imagery
from training.pipeline import train
from training.points import read_points
from training.sampling import sample_points
from training.settings import TrainingSettings

from .conftest import lean_recipe


def _validation_accuracy(world: Path, model_dir: Path) -> float:
    """Accuracy of the exported ONNX model on the independent validation sample."""
    session = ort.InferenceSession(str(model_dir / "model.onnx"))
    contract = contract_from_metadata(session.get_modelmeta().custom_metadata_map, "model.onnx")
    imagery = open_stac_imagery(lean_recipe(world), TrainingSettings())
    points = read_points(world / "validation.gpkg", "label", load_class_table(world / "classes.yaml"))
    samples = sample_points(imagery, points)
    features = compute_features(samples.reflectance.T, contract.inputs.bands, contract.features.indices)
    proba = session.run([contract.outputs.probabilities], {"features": features})[0]
    labels = decide_labels(proba, contract.outputs.class_order)
    return float(np.mean(labels == samples.labels))


@pytest.mark.slow
def test_validation_accuracy_matches_the_reported_hold_out(world: Path, static_model: Path) -> None:
    metrics = json.loads((static_model / "metrics.json").read_text())
    reported = metrics["holdout"]["overall_accuracy"]
    validation = _validation_accuracy(world, static_model)
    assert validation > 0.90
    assert abs(validation - reported) <= 0.02, (validation, reported)


@pytest.mark.slow
def test_same_recipe_and_seed_give_identical_files(world: Path, static_model: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    train(lean_recipe(world, out=str(again)))
    assert (again / "metrics.json").read_bytes() == (static_model / "metrics.json").read_bytes()
    assert (again / "model.onnx").read_bytes() == (static_model / "model.onnx").read_bytes()
    assert (again / "model.json").read_bytes() == (static_model / "model.json").read_bytes()


@pytest.mark.slow
@pytest.mark.pgstac
def test_pgstac_api_and_static_catalog_give_the_same_model(
    world: Path, static_model: Path, pgstac_api: str, tmp_path: Path
) -> None:
    out = tmp_path / "api"
    train(lean_recipe(world, stac=pgstac_api, out=str(out)))
    assert (out / "model.onnx").read_bytes() == (static_model / "model.onnx").read_bytes()
    assert (out / "metrics.json").read_bytes() == (static_model / "metrics.json").read_bytes()


def test_contract_describes_the_stac_inputs(static_model: Path) -> None:
    item = json.loads((static_model / "model.json").read_text())
    contract = item["properties"]["lulc:contract"]
    assert contract["inputs"]["bands"] == ["blue", "green", "red", "nir", "swir16", "swir22"]
    assert contract["features"]["indices"] == ["ndvi", "ndwi", "ndbi"]
    assert contract["inputs"]["resolution"] == 10.0
    assert contract["inputs"]["composite"] == "median"
    assert contract["inputs"]["mask_scl"] == [0, 1, 3, 8, 9, 10]
    assert contract["outputs"]["class_order"] == [1, 2, 3, 4, 5, 6]
    window = contract["provenance"]["time_window"]
    assert window
    assert window.split("/")[0] < window.split("/")[1]
    w, s, e, n = item["bbox"]
    assert w < e
    assert s < n


def test_every_dropped_point_is_reported_with_its_reason(world: Path, tmp_path: Path) -> None:
    """One cloudy acquisition only: points under cloud and a point off the grid are dropped, and said so."""
    import geopandas as gpd
    from shapely.geometry import Point

    frame = gpd.read_file(world / "train.gpkg")
    far = gpd.GeoDataFrame({"label": [1]}, geometry=[Point(139.0, 35.0)], crs="EPSG:4326")
    path = tmp_path / "points.gpkg"
    gpd.GeoDataFrame(
        {"label": [*frame["label"], 1]}, geometry=[*frame.geometry, *far.geometry], crs=frame.crs
    ).to_file(path)
    config = lean_recipe(world, datetime="2023-06-12")  # the acquisition with about half the AOI clouded
    imagery = open_stac_imagery(config, TrainingSettings())
    assert len(imagery.items) == 1
    points = read_points(path, "label", load_class_table(world / "classes.yaml"))
    samples = sample_points(imagery, points)
    reasons = [d.reason for d in samples.dropped]
    assert samples.labels.size + len(samples.dropped) == len(points)
    assert reasons.count("outside imagery") == 1
    assert samples.dropped[-1].index == len(points) - 1
    assert reasons.count("cloud") > 0
    assert set(reasons) <= {"outside imagery", "cloud", "nodata"}
    assert samples.blocks_read <= imagery.grid.block_rows * imagery.grid.block_cols


def test_points_past_the_aoi_are_said_to_lie_outside_it(world: Path, tmp_path: Path) -> None:
    """STAC imagery is read on the AOI's grid: points past the AOI are said to lie outside it.

    Notes: they were said to lie "outside the imagery" where items cover them, with "use imagery that covers
    them" for advice.
    """
    import geopandas as gpd

    from training.errors import PointsError
    from training.pipeline import _note_dropped

    points = read_points(world / "train.gpkg", "label", load_class_table(world / "classes.yaml"))
    lon, lat = points.xy_in(gpd.GeoSeries([], crs="EPSG:4326").crs)
    # a small AOI in the imagery's south-west, south and west of every point
    w, s = float(lon.min()) - 0.004, float(lat.min()) - 0.004
    imagery = open_stac_imagery(lean_recipe(world, aoi=[w, s, w + 0.003, s + 0.003]), TrainingSettings())
    samples = sample_points(imagery, points)
    assert samples.labels.size == 0
    with pytest.raises(PointsError) as raised:
        _note_dropped(samples, len(points), _Notes(), points=points, imagery=imagery)
    message = str(raised.value)
    assert f"points of {points.source} lie outside the AOI's bounding box: read in " in message
    assert ", the AOI's bounding box at lon " in message
    assert message.endswith(
        "else give an AOI (--aoi) that covers them: STAC imagery is read only in the AOI's bounding box"
    )
    assert "imagery that covers" not in message


class _Notes:
    """A ``Progress`` that drops its notes."""

    def start(self, description: str, total: int) -> None:
        """Ignore."""

    def advance(self, steps: int = 1) -> None:
        """Ignore."""

    def note(self, message: str) -> None:
        """Ignore."""
