"""A notebook's training run keeps the notes ``lulc train`` prints (Python API review: they were lost)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
from shapely.geometry import Point

from training.api import train


def test_the_points_dropped_are_in_the_runs_notes(lulc_py: Path, tmp_path: Path) -> None:
    points = gpd.read_file(lulc_py / "samples.shp")
    far = gpd.GeoDataFrame({"labels": [1]}, geometry=[Point(0.0, 0.0)], crs=points.crs)  # off the scene
    extended = tmp_path / "points.gpkg"
    gpd.GeoDataFrame(
        {"labels": [*points["labels"], 1]}, geometry=[*points.geometry, *far.geometry], crs=points.crs
    ).to_file(extended)
    run = train(
        image=lulc_py / "s2image.tif", bands=["blue", "green", "red", "nir"], points=extended,
        label_field="labels", models=["dt"], cv={"repeats": 0}, out=tmp_path / "model",
    )  # fmt: skip
    dropped = [note for note in run.notes if "points dropped" in note]
    assert len(dropped) == 1, run.notes
    assert "1 of 122 points dropped" in dropped[0]
    assert "outside" in dropped[0]


def test_a_model_of_more_classes_than_a_set_map_holds_says_so_when_trained(
    lulc_py: Path, tmp_path: Path
) -> None:
    """The training's note and classify's are one sentence (``lulc.class_sets.no_map``)."""
    points = gpd.read_file(lulc_py / "samples.shp")
    east = points.geometry.x > points.geometry.x.median()
    # the tutorial's 4 classes, each cut in two by longitude: 8 classes of about 15 points each
    relabelled = tmp_path / "eight.gpkg"
    gpd.GeoDataFrame(
        {"labels": points["labels"] * 2 - 1 + east.astype(int)}, geometry=points.geometry, crs=points.crs
    ).to_file(relabelled)
    run = train(
        image=lulc_py / "s2image.tif", bands=["blue", "green", "red", "nir"], points=relabelled,
        label_field="labels", models=["dt"], cv={"repeats": 0}, out=tmp_path / "model",
    )  # fmt: skip
    assert len(run.contract.classes.classes) == 8
    assert run.contract.class_sets is not None
    said = [note for note in run.notes if "sets.tif" in note]
    assert said == [
        "class sets calibrated (the report's coverage); no sets.tif: the model's 8 classes are more than a "
        "set bitmask holds (7)"
    ], run.notes
