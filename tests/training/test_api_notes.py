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
