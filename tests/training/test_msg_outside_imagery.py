"""Points outside the imagery (most often a wrong CRS): one error line saying so, where each lies, what to do.

No list of the dropped points before it (CLI review: 25 lines), and the dropped points are said to be listed
in metrics.json and report.md only when training goes on to write them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from lulc.classes import ClassTable, load_class_table
from training.errors import PointsError
from training.evaluate import check_class_counts
from training.imagery import open_local_imagery
from training.pipeline import _note_dropped
from training.points import read_points
from training.sampling import DroppedPoint, Samples, sample_points

LULC = Path(sys.executable).with_name("lulc")
BANDS = ["blue", "green", "red", "nir"]


class Notes:
    """A ``Progress`` keeping its notes."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def start(self, description: str, total: int) -> None:
        """Ignore."""

    def advance(self, steps: int = 1) -> None:
        """Ignore."""

    def note(self, message: str) -> None:
        self.lines.append(message)


def wrong_crs(tutorial: Path, tmp_path: Path) -> Path:
    """The tutorial's points (World Mercator metres) declared as UTM zone 54N: all far off the image."""
    frame = gpd.read_file(tutorial / "samples.shp").set_crs("EPSG:32654", allow_override=True)
    path = tmp_path / "wrongprj.shp"
    frame.to_file(path)
    return path


def refusal(points_path: Path, tutorial: Path, classes: Path | None = None) -> str:
    """The error ``_note_dropped`` raises for the points on the tutorial image, told points and imagery."""
    points = read_points(points_path, "labels", load_class_table(classes) if classes else None)
    imagery = open_local_imagery(tutorial / "s2image.tif", BANDS, None, None, None)
    samples = sample_points(imagery, points)
    with pytest.raises(PointsError) as raised:
        _note_dropped(samples, len(points), Notes(), points=points, imagery=imagery)
    return str(raised.value)


def test_points_in_a_wrong_crs_stop_training_with_one_line_saying_so(tutorial: Path, tmp_path: Path) -> None:
    points = wrong_crs(tutorial, tmp_path)
    args = ["--image", str(tutorial / "s2image.tif"), "--bands", ",".join(BANDS), "--points", str(points)]
    args += ["--label-field", "labels", "--models", "dt", "--out", str(tmp_path / "model")]
    done = subprocess.run(
        [str(LULC), "train", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "40"},
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: all 121 points"), last
    assert "lie outside the imagery" in last
    assert "--points-crs" in last
    assert last.endswith("else use imagery that covers them"), last  # the whole message on its one line
    assert "dropped point" not in done.stderr  # CLI review: 20 points and "... and 101 more" came first
    assert "metrics.json" not in done.stdout + done.stderr  # never written: training stopped
    assert not (tmp_path / "model").exists()


def test_the_error_gives_where_the_points_and_the_imagery_lie(tutorial: Path, tmp_path: Path) -> None:
    message = refusal(wrong_crs(tutorial, tmp_path), tutorial)
    assert "\n" not in message
    assert message.startswith(f"all 121 points of {tmp_path / 'wrongprj.shp'} lie outside the imagery")
    # read as UTM 54N the points are in the Pacific; the image is near Tsukuba (lon 140.2, lat 36.1)
    assert "read in WGS 84 / UTM zone 54N (EPSG:32654) they lie at lon -137.75" in message
    assert "the imagery at lon 140.15" in message
    assert "lat 36.05" in message


def test_metres_declared_as_degrees_are_not_said_to_be_a_longitude(tutorial: Path, tmp_path: Path) -> None:
    """CLI review: points in metres read as EPSG:4326 were said to lie at "lon 15602384.9313"."""
    frame = gpd.read_file(tutorial / "samples.shp").set_crs("EPSG:4326", allow_override=True)
    path = tmp_path / "degrees.gpkg"
    frame.to_file(path)
    message = refusal(path, tutorial)
    assert "read in WGS 84 (EPSG:4326) they lie at x 1.5" in message, message
    assert "(no lon/lat there)" in message
    assert "lon 1" not in message.split("the imagery at")[0]


def test_a_class_wholly_outside_the_imagery_is_named(
    tutorial: Path, tutorial_classes: Path, tmp_path: Path
) -> None:
    frame = gpd.read_file(tutorial / "samples.shp")
    frame = frame[frame["labels"].isin([1, 2])].copy()
    shifted = frame["labels"] == 2
    frame.loc[shifted, "geometry"] = frame.loc[shifted, "geometry"].translate(xoff=50_000)  # 50 km east
    path = tmp_path / "two.gpkg"
    frame.to_file(path)
    message = refusal(path, tutorial, tutorial_classes)
    assert message.startswith(f"every point of class(es) Dense Veg (28) of {path} lies outside the imagery")
    assert "leaving usable points of Water (25):" in message
    assert "they lie at lon 140.6" in message  # Dense Veg's points only, 50 km east of the image
    assert "--points-crs" in message


def _samples(labels: list[int], dropped: int) -> Samples:
    n = len(labels)
    return Samples(
        reflectance=np.zeros((n, 4), dtype=np.float32),
        labels=np.asarray(labels, dtype=np.int64),
        index=np.arange(n, dtype=np.int64),
        x=np.zeros(n),
        y=np.zeros(n),
        dropped=[DroppedPoint(n + i, 1, 0.0, 0.0, "nodata") for i in range(dropped)],
        blocks_read=1,
    )


def test_dropped_points_are_said_to_be_listed_only_when_training_goes_on() -> None:
    goes_on, stops = Notes(), Notes()
    _note_dropped(_samples([1, 1, 2, 2], dropped=25), 29, goes_on)
    _note_dropped(
        _samples([1, 1, 2], dropped=25), 28, stops
    )  # one point of class 2: check_class_counts stops
    assert "metrics.json" in goes_on.lines[-1]
    assert stops.lines[-1] == "  ... and 5 more"


def test_usable_points_of_one_class_are_refused_by_class_name_saying_what_to_do() -> None:
    table = ClassTable.from_labels([1, 2])
    with pytest.raises(PointsError) as raised:
        check_class_counts(np.asarray([1, 1, 1], dtype=np.int64), table, "pts.gpkg")
    message = str(raised.value)
    assert "pts.gpkg has usable points of fewer than 2 classes: {'1': 3, '2': 0}" in message
    assert message.endswith("add points of the other classes")
