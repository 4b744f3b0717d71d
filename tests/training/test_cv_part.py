"""The CVs that pick the kept model run on the training part: what the hold-out leaves must still work."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from training.pipeline import train

from .conftest import tutorial_recipe


def _train(tutorial: Path, classes: Path, points: Path, cv: dict[str, object], out: Path) -> dict:
    models = ["rf", "dt"]
    config = tutorial_recipe(tutorial, out, classes, points=str(points), models=models, cv=cv, trust=False)
    return train(config).metrics


@pytest.mark.parametrize("scheme", ["kfold", "shuffle"])
def test_classes_of_two_polygons_keep_a_working_cv(
    tutorial: Path, tutorial_classes: Path, tmp_path: Path, scheme: str
) -> None:
    """Two classes of two 50 m plots each: in the training part each class has one plot.

    The hold-out takes one plot of each, so the training part's plots must be split pixel by pixel.
    Grouped by plot, every fold held a class out whole: the CV scored 0 % (kfold) or crashed (shuffle).
    """
    samples = gpd.read_file(tutorial / "samples.shp")
    rows = []
    for value in (1.0, 2.0):
        members = samples[samples.labels == value].geometry
        for point in (members.iloc[0], members.iloc[-1]):
            rows.append((value, box(point.x - 25, point.y - 25, point.x + 25, point.y + 25)))
    plots = gpd.GeoDataFrame({"labels": [v for v, _ in rows]}, geometry=[g for _, g in rows], crs=samples.crs)
    plots.to_file(tmp_path / "plots.gpkg")
    cv = {"scheme": scheme, "repeats": 2, "folds": 5, "test_size": 0.3}
    metrics = _train(tutorial, tutorial_classes, tmp_path / "plots.gpkg", cv, tmp_path / "m")
    assert metrics["samples"]["train"] == 50  # one 25-pixel plot of each class
    assert metrics["cv"]["overall_accuracy"]["mean"] >= 0.9
    assert metrics["polygons"]["optimism"]["accuracy_difference"] == pytest.approx(0, abs=0.05)


def test_a_class_seen_once_in_the_training_part_is_trained_on_not_scored(
    tutorial: Path, tutorial_classes: Path, tmp_path: Path
) -> None:
    """Water with two points: one goes to the hold-out, the CVs train on the other and say so.

    The shuffle CV crashed: scikit-learn refuses to stratify a class of one.
    """
    samples = gpd.read_file(tutorial / "samples.shp")
    water = samples[samples.labels == 1.0].head(2)
    points = gpd.GeoDataFrame(pd.concat([water, samples[samples.labels != 1.0]]), crs=samples.crs)
    points.to_file(tmp_path / "points.gpkg")
    cv = {"scheme": "shuffle", "repeats": 5, "test_size": 0.3}
    metrics = _train(tutorial, tutorial_classes, tmp_path / "points.gpkg", cv, tmp_path / "m")
    assert metrics["cv"]["splits"] == 5
    assert metrics["cv"]["overall_accuracy"]["mean"] > 0.8
    report = (tmp_path / "m" / "report.md").read_text()
    assert "Water have one sample in the training part" in report
