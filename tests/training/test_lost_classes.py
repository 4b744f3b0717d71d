"""A class whose points all give no usable sample is refused by name; a class the file lacks is recorded.

Review: a class whose every point lay on nodata was left out of the model with exit 0 and a stderr note
only (report.md, metrics.json and model.json never said so), while the same class with one usable point
was refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Point, box

from training.api import train
from training.errors import PointsError

from .conftest import squares, write_polygons

pytestmark = pytest.mark.slow

LULC = Path(sys.executable).with_name("lulc")
BANDS = ["blue", "green", "red", "nir"]


def on_nodata(tutorial: Path, tmp_path: Path) -> Path:
    """The tutorial's points with every Water point moved onto the nodata sliver of the top-left corner."""
    with rasterio.open(tutorial / "s2image.tif") as src:
        t = src.transform
        assert bool((src.read(1)[:13, :2] > 1e30).all())
    frame = gpd.read_file(tutorial / "samples.shp")
    water = np.flatnonzero(frame["labels"] == 1)
    frame.loc[water, "geometry"] = [Point(t @ (0.5 + i % 2, 0.5 + i // 2)) for i in range(water.size)]
    path = tmp_path / "water_on_nodata.gpkg"
    frame.to_file(path)
    return path


def test_a_class_whose_every_point_lies_on_nodata_stops_training_with_one_line(
    tutorial: Path, tutorial_classes: Path, tmp_path: Path
) -> None:
    points = on_nodata(tutorial, tmp_path)
    args = ["--image", str(tutorial / "s2image.tif"), "--bands", ",".join(BANDS), "--points", str(points)]
    args += ["--label-field", "labels", "--classes", str(tutorial_classes), "--models", "dt"]
    done = subprocess.run(
        [str(LULC), "train", *args, "--out", str(tmp_path / "model")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "40"},
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"error: class(es) Water (25 points, all dropped: 25 nodata) in {points} have no"
    ), last
    assert last.endswith("or drop the class from the points file"), last  # the whole message on one line
    assert "metrics.json" not in done.stderr  # never written: training stopped
    assert not (tmp_path / "model").exists()


def test_a_class_of_polygons_without_a_valid_pixel_is_refused_saying_why(
    lulc_py: Path, tmp_path: Path
) -> None:
    """Impervious only as a polygon on the nodata sliver and one outside the image: refused, both said."""
    with rasterio.open(lulc_py / "s2image.tif") as src:
        t = src.transform
    rows = [(g, v) for g, v in squares(lulc_py) if v != 4]
    rows.append((box(*(t @ (0.1, 3.9)), *(t @ (1.9, 0.1))), 4))  # 2 x 4 pixels of nodata
    rows.append((box(*(t @ (-50, -10)), *(t @ (-40, -20))), 4))  # west of the image
    path = write_polygons(tmp_path / "polygons.gpkg", rows, lulc_py)
    with pytest.raises(PointsError) as raised:
        train(
            image=lulc_py / "s2image.tif",
            bands=BANDS,
            points=path,
            label_field="labels",
            models=["dt"],
            out=tmp_path / "m",
        )
    message = str(raised.value)
    assert message.startswith(
        "class(es) 4 (2 features; 1 polygon outside the imagery; 8 samples dropped: 8 nodata) in "
    ), message
    assert "have no usable point" in message
    assert not (tmp_path / "m").exists()


def test_a_class_wholly_outside_the_imagery_is_refused_though_others_remain(
    tutorial: Path, tutorial_classes: Path, tmp_path: Path
) -> None:
    """Every other class kept 2 points or more, so the class was left out silently."""
    frame = gpd.read_file(tutorial / "samples.shp")
    shifted = frame["labels"] == 2
    frame.loc[shifted, "geometry"] = frame.loc[shifted, "geometry"].translate(xoff=50_000)  # 50 km east
    path = tmp_path / "east.gpkg"
    frame.to_file(path)
    with pytest.raises(PointsError, match=r"^every point of class\(es\) Dense Veg \(28\) of .* lies outside"):
        train(
            image=tutorial / "s2image.tif",
            bands=BANDS,
            points=path,
            label_field="labels",
            classes=tutorial_classes,
            models=["dt"],
            out=tmp_path / "m",
        )


def test_a_class_table_class_without_points_is_left_out_and_recorded(
    tutorial: Path, tutorial_classes: Path, tmp_path: Path
) -> None:
    classes = tmp_path / "classes.yaml"
    classes.write_text(tutorial_classes.read_text() + '  - {value: 5, name: Bare, color: "#ffff00"}\n')
    run = train(
        image=tutorial / "s2image.tif",
        bands=BANDS,
        points=tutorial / "samples.shp",
        label_field="labels",
        classes=classes,
        models=["dt"],
        cv={"folds": 3, "repeats": 1},
        trust=False,
        out=tmp_path / "m",
    )
    assert run.contract.classes.names == ["Water", "Dense Veg", "Veg", "Impervious"]
    assert "classes of the class table with no point in samples.shp are left out of the model: ['Bare']" in (
        run.notes
    )
    left_out = [{"value": 5, "name": "Bare", "reason": "no point in samples.shp"}]
    assert json.loads((run.out / "metrics.json").read_text())["classes_left_out"] == left_out
    report = (run.out / "report.md").read_text()
    assert "Classes left out: Bare (5): no point in samples.shp." in report
