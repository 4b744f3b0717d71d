"""``lulc design``'s sample file: never replaced unasked, one layer named after it, a map path or its run.

Review of the README walkthrough: a rerun of ``lulc design RUN --out sample.gpkg`` silently replaced a sample
holding 1,882 hand labels; labels saved from geopandas (``to_file``) landed in a second layer named after the
file while ``lulc assess`` read the unlabelled ``sample`` layer ("empty 'label' labels").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio

from lulc.errors import InputError
from service.design import design_run
from tests.service.products_support import Runs, truth_map, two_runs
from tests.support.cli import lulc
from training.assess import assess_map


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return two_runs(tmp_path_factory)


def _label(sample: Path, runs: Runs) -> None:
    """Fill the label column from the truth as an analyst in geopandas would, and save it back in place."""
    import geopandas as gpd

    frame = gpd.read_file(sample)
    truth = truth_map((600, 640), 40, seed=1)
    with rasterio.open(runs.first / "classes.tif") as src:
        cols, rows = ~src.transform @ (frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy())
    frame["label"] = [str(int(v)) for v in truth[rows.astype(int), cols.astype(int)]]
    frame.to_file(sample)  # geopandas' default layer: the file's stem


def test_an_existing_sample_is_refused_unless_overwrite(runs: Runs, tmp_path: Path) -> None:
    out = tmp_path / "sample.gpkg"
    args = ["design", runs.first, "--target-se", "0.05", "--min-per-class", "10", "--out", out]
    assert lulc(*args).returncode == 0
    _label(out, runs)
    labelled = out.read_bytes()
    again = lulc(*args, "--seed", "3")
    assert again.returncode == 2, again.stderr
    assert again.stderr.count("\n") == 1
    assert again.stderr.startswith(f"error: --out {out} exists")
    assert "--overwrite" in again.stderr
    assert out.read_bytes() == labelled  # the labels are kept
    with pytest.raises(InputError, match="--overwrite"):
        design_run(runs.first, out, target_se=0.05, min_per_class=10)
    replaced = lulc(*args, "--seed", "3", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert out.read_bytes() != labelled
    folder = tmp_path / "folder.gpkg"
    folder.mkdir()
    done = lulc("design", runs.first, "--out", folder, "--overwrite")
    assert done.returncode == 2
    assert "is a folder" in done.stderr
    assert done.stderr.count("\n") == 1


def test_labels_saved_from_geopandas_replace_the_points_and_are_assessed(runs: Runs, tmp_path: Path) -> None:
    out = tmp_path / "mine.gpkg"
    design_run(runs.first, out, target_se=0.03, min_per_class=20, seed=1)
    assert pyogrio.list_layers(out).tolist() == [["mine", "Point"]]
    _label(out, runs)
    assert pyogrio.list_layers(out).tolist() == [["mine", "Point"]]  # one layer, labelled
    assessed = assess_map(runs.first / "classes.tif", out, "label")
    assert assessed["used_points"] > 0
    assert "design" in assessed["method"]


def test_a_map_path_names_its_run(runs: Runs, tmp_path: Path) -> None:
    by_map = design_run(runs.first / "classes.tif", tmp_path / "a.gpkg", target_se=0.05, min_per_class=10)
    by_run = design_run(runs.first, tmp_path / "b.gpkg", target_se=0.05, min_per_class=10)
    a, b = pyogrio.raw.read(by_map.path), pyogrio.raw.read(by_run.path)
    assert np.array_equal(a[2], b[2])  # the same points
