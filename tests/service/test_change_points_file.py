"""``lulc change --points``: the points file's one layer, and its own fields named when a label is missing.

Review of the README walkthrough: labels saved from geopandas into a second layer were ignored for the
unlabelled first one, and a missing label column was reported as "(fields: )".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from lulc.errors import InputError
from service.change_areas import read_change_points
from service.run_folder import open_run
from tests.service.products_support import Runs, two_runs
from tests.support.cli import lulc


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return two_runs(tmp_path_factory)


def _points(path: Path, layer: str) -> Path:
    """Two points on the runs' grid labelled at both dates, in ``layer`` of ``path`` (added if it exists)."""
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb(shapely.points([[500005.0, 4999995.0], [500105.0, 4999905.0]])),
        [np.array([1, 2], dtype=np.int32), np.array(["Tree cover", "Open water"], dtype=object)],
        ["label_a", "label_b"],
        layer=layer,
        driver="GPKG",
        geometry_type="Point",
        crs="EPSG:32633",
    )
    return path


def test_a_points_file_of_several_layers_is_refused_naming_them(runs: Runs, tmp_path: Path) -> None:
    run = open_run(runs.first)
    path = _points(tmp_path / "mine.gpkg", "sample")
    read = read_change_points(path, "label_a", "label_b", run.classes, run.grid)
    assert read.first.tolist() == [0, 1]
    _points(path, "mine")
    assert len(pyogrio.list_layers(path)) == 2
    with pytest.raises(InputError, match=r"holds 2 layers \(sample, mine\)"):
        read_change_points(path, "label_a", "label_b", run.classes, run.grid)
    done = lulc(
        "change", str(runs.first), str(runs.second), "--out", str(tmp_path / "c"), "--points", str(path)
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "2 layers (sample, mine)" in done.stderr
    # control: a table without geometries (QGIS's layer_styles) is no second layer
    styled = _points(tmp_path / "styled.gpkg", "sample")
    pyogrio.write_dataframe(pd.DataFrame({"styleName": ["x"]}), styled, layer="layer_styles")
    assert read_change_points(styled, "label_a", "label_b", run.classes, run.grid).first.tolist() == [0, 1]


def test_a_missing_label_field_names_the_files_fields(runs: Runs, tmp_path: Path) -> None:
    run = open_run(runs.first)
    path = _points(tmp_path / "points.gpkg", "points")
    with pytest.raises(InputError, match=r"have no field 'reference' \(fields: label_a, label_b\)$"):
        read_change_points(path, "reference", "label_b", run.classes, run.grid)
    with pytest.raises(InputError, match=r"have no field 'later' \(fields: label_a, label_b\)$"):
        read_change_points(path, "label_a", "later", run.classes, run.grid)


@pytest.mark.parametrize(
    "where",
    [[[600005.0, 4999995.0], [600105.0, 4999905.0]], [[5.3e20, 3.3e16], [-6.9e16, 1.4e-45]]],
    ids=["100 km away", "off the CRS"],
)
def test_points_that_all_miss_the_map_say_so_in_one_line(
    runs: Runs, tmp_path: Path, where: list[list[float]]
) -> None:
    """CLI review: a 1,400-character list of every stratum without a point (and numpy's warnings first)."""
    import warnings

    run = open_run(runs.first)
    path = tmp_path / "far.gpkg"
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb(shapely.points(where)),
        [np.array([1, 2], dtype=np.int32), np.array(["Tree cover", "Open water"], dtype=object)],
        ["label_a", "label_b"],
        driver="GPKG",
        geometry_type="Point",
        crs="EPSG:32633",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(InputError, match=r"none of the 2 validation points in .* lies on the change map"):
            read_change_points(path, "label_a", "label_b", run.classes, run.grid)
    done = lulc(
        "change", str(runs.first), str(runs.second), "--out", str(tmp_path / "c"), "--points", str(path)
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "lies on the change map (the map covers longitude" in done.stderr
    assert len(done.stderr) < 400, done.stderr


def test_a_run_compared_with_itself_and_a_series_folder_are_refused_with_what_to_give(
    runs: Runs, tmp_path: Path
) -> None:
    """CLI review: `lulc change A A` was accepted; a series folder only "has no classes.tif"."""
    import shutil

    same = lulc("change", str(runs.first), str(runs.first), "--out", str(tmp_path / "c"))
    assert same.returncode == 2, same.stderr
    assert "both runs are" in same.stderr
    assert not (tmp_path / "c").exists()
    series = tmp_path / "series"
    for period in ("2021", "2022"):
        shutil.copytree(runs.first, series / period)
    with pytest.raises(InputError, match=r"is a series of maps \(2021, 2022\): give one of its period"):
        open_run(series)
    done = lulc("vectorize", str(series), "--out", str(tmp_path / "v.gpkg"))
    assert done.returncode == 2, done.stderr
    assert f"e.g. {series / '2021'}" in done.stderr
