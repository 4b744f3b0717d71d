"""``lulc assess`` as the README walkthrough uses it: run folders, points files, a cleaned map and its source.

Review of the walkthrough: a run folder gave "unexpected RasterioIOError" and an ``--out`` folder "unexpected
IsADirectoryError"; a sample with a second layer was read by its unlabelled first one; a cleaned map was
compared with whatever run was then in its source's folder (+2.63 points after the source was rerun), and
with its source deleted could not be assessed at all.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyogrio
import pytest

from lulc.olofsson import Z95
from service.clean import clean_run
from tests.service.products_support import Runs, read_band, truth_map, two_runs
from tests.support.cli import lulc
from tests.support.points import write_pixel_points
from training.assess import assess_map, render_assessment
from training.errors import AssessError, PointsError
from training.points import read_points


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return two_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def points(runs: Runs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 points per mapped class of the first run, labelled from its truth."""
    rng = np.random.default_rng(0)
    mapped = read_band(runs.first / "classes.tif")
    truth = truth_map((600, 640), 40, seed=1)
    cells = np.concatenate(
        [rng.choice(np.flatnonzero(mapped.ravel() == v), 120, replace=False) for v in (1, 2, 3)]
    )
    rows, cols = np.unravel_index(cells, mapped.shape)
    path = tmp_path_factory.mktemp("assess-points") / "points.gpkg"
    return write_pixel_points(path, rows, cols, truth[rows, cols])


def _source_and_cleaned(runs: Runs, tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "runs" / "demo"
    shutil.copytree(runs.first, source)
    cleaned = clean_run(source, tmp_path / "runs" / "demo-clean", mmu_ha=0.3).out_dir
    return source, cleaned


def test_a_run_folder_is_its_classes_tif_and_an_out_folder_is_refused(
    runs: Runs, points: Path, tmp_path: Path
) -> None:
    by_map = assess_map(runs.first / "classes.tif", points, "label")
    assert assess_map(runs.first, points, "label") == by_map
    done = lulc("assess", runs.first, "--points", points, "--out", tmp_path / "assess.json")
    assert done.returncode == 0, done.stderr
    assert (
        json.loads((tmp_path / "assess.json").read_text())["overall_accuracy"] == by_map["overall_accuracy"]
    )
    folder = tmp_path / "reports"
    folder.mkdir()
    for args, message in (
        ([runs.first / "classes.tif", "--out", folder], f"--out {folder} is a folder"),
        ([tmp_path, "--out", tmp_path / "x.json"], f"{tmp_path} is a folder without classes.tif"),
        ([points, "--out", tmp_path / "x.json"], "cannot be read as a raster"),
    ):
        bad = lulc("assess", args[0], "--points", points, *args[1:])
        assert bad.returncode == 2, bad.stderr
        assert bad.stderr.count("\n") == 1
        assert message in bad.stderr
        assert "unexpected" not in bad.stderr
    assert not any(folder.iterdir())
    assert not (tmp_path / "x.json").exists()


def test_an_out_that_is_an_input_or_another_file_is_kept_and_an_earlier_assessment_replaced(
    runs: Runs, points: Path, tmp_path: Path
) -> None:
    """Review: ``--out`` naming the points being assessed replaced them with the JSON (the map too)."""
    labels = tmp_path / "labels.gpkg"
    shutil.copy(points, labels)
    classes = tmp_path / "map.tif"
    shutil.copy(runs.first / "classes.tif", classes)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    kept = {path: path.read_bytes() for path in (labels, classes, notes)}
    for map_arg, out, message in (
        (classes, labels, "is an input of the assessment"),
        (classes, classes, "is an input of the assessment"),
        (runs.first, runs.first / "classes.tif", "is an input of the assessment"),
        (classes, notes, "exists and is not an earlier assessment; it is kept"),
    ):
        bad = lulc("assess", map_arg, "--points", labels, "--out", out)
        assert bad.returncode == 2, bad.stderr
        assert bad.stderr.splitlines() == [f"error: --out {out} {message}: give a new file, e.g. assess.json"]
    assert {path: path.read_bytes() for path in kept} == kept
    report = tmp_path / "assess.json"
    for _ in range(2):  # written, then an earlier assessment replaced
        done = lulc("assess", classes, "--points", labels, "--out", report)
        assert done.returncode == 0, done.stderr
    assert json.loads(report.read_text())["map"] == "map.tif"


def _two_layers(path: Path, points: Path) -> Path:
    """``points`` with a second point layer, as geopandas' ``to_file`` adds one under the file's stem."""
    import geopandas as gpd

    frame = gpd.read_file(points)
    frame.to_file(path, layer="sample")
    frame.to_file(path, layer="mine")
    return path


def test_a_points_file_of_several_layers_is_refused_naming_them(
    runs: Runs, points: Path, tmp_path: Path
) -> None:
    two = _two_layers(tmp_path / "mine.gpkg", points)
    with pytest.raises(PointsError, match=r"holds 2 layers \(sample, mine\)"):
        assess_map(runs.first / "classes.tif", two, "label")
    with pytest.raises(PointsError, match=r"holds 2 layers \(sample, mine\)"):
        read_points(two, "label")  # lulc train's reader too
    done = lulc("assess", runs.first / "classes.tif", "--points", two)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "2 layers (sample, mine)" in done.stderr
    # control: a table without geometries (QGIS's layer_styles) is no second layer
    import pandas as pd

    styled = tmp_path / "styled.gpkg"
    shutil.copy(points, styled)
    pyogrio.write_dataframe(pd.DataFrame({"styleName": ["x"]}), styled, layer="layer_styles")
    assert len(pyogrio.list_layers(styled)) == 2
    assert (
        assess_map(runs.first / "classes.tif", styled, "label")["overall_accuracy"]
        == assess_map(runs.first / "classes.tif", points, "label")["overall_accuracy"]
    )


def test_a_cleaned_map_is_compared_only_with_the_run_it_was_cleaned_from(
    runs: Runs, points: Path, tmp_path: Path
) -> None:
    source, cleaned = _source_and_cleaned(runs, tmp_path)
    compared = assess_map(cleaned / "classes.tif", points, "label")
    assert "accuracy_change" in compared
    assert "source_not_compared" not in compared
    alone = assess_map(cleaned / "classes.tif", points, "label", compare_source=False)

    # the source folder rerun with other inputs: another run (item id) is there now
    shutil.rmtree(source)
    shutil.copytree(runs.second, source)
    rerun = assess_map(cleaned / "classes.tif", points, "label")
    assert "accuracy_change" not in rerun
    assert "source" not in rerun
    other = json.loads((source / "item.json").read_text())["id"]
    cleaned_from = json.loads((cleaned / "item.json").read_text())["properties"]["lulc:source"]
    assert other != cleaned_from
    assert f"now holds run {other}, not {cleaned_from}" in rerun["source_not_compared"]
    assert rerun["overall_accuracy"] == alone["overall_accuracy"]  # the cleaned map's own assessment
    text = render_assessment(rerun)
    assert "not compared with the map it was cleaned from:" in text
    assert not any(line.startswith("cleaned from") for line in text.splitlines())

    # the source deleted: still assessed, with the reason
    shutil.rmtree(source)
    gone = assess_map(cleaned / "classes.tif", points, "label")
    assert "accuracy_change" not in gone
    assert gone["source_not_compared"] == f"the run {source.resolve()} is gone (no item.json)"
    assert gone["overall_accuracy"] == alone["overall_accuracy"]
    done = lulc("assess", cleaned / "classes.tif", "--points", points)
    assert done.returncode == 0, done.stderr
    assert "not compared with the map it was cleaned from: the run" in done.stdout


def test_no_compare_source_option(runs: Runs, points: Path, tmp_path: Path) -> None:
    _, cleaned = _source_and_cleaned(runs, tmp_path)
    compared = lulc("assess", cleaned / "classes.tif", "--points", points)
    assert compared.returncode == 0, compared.stderr
    assert any(line.startswith("cleaned from") for line in compared.stdout.splitlines())
    alone = lulc(
        "assess",
        cleaned / "classes.tif",
        "--points",
        points,
        "--no-compare-source",
        "--out",
        tmp_path / "a.json",
    )
    assert alone.returncode == 0, alone.stderr
    assert not any(line.startswith("cleaned from") for line in alone.stdout.splitlines())
    result = json.loads((tmp_path / "a.json").read_text())
    assert "accuracy_change" not in result
    assert result["method"] == "Olofsson et al. 2014, stratified by map class"


def test_the_readme_quotes_the_cleaning_change_as_the_cli_prints_it() -> None:
    """The README gave "+0.19 +- 0.17 points", a standard error, where the CLI prints a 95 % interval."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    paragraph = " ".join(
        readme[readme.index("`lulc clean` / `classify --mmu-ha`") :].split("\n- ")[0].split()
    )
    assert "+-" not in paragraph
    quoted = re.search(
        r"\+(\d\.\d\d) points, standard error (\d\.\d\d), printed as \"± (\d\.\d\d) \(95 % CI\)\"", paragraph
    )
    assert quoted is not None, paragraph
    _, se, ci = (float(g) for g in quoted.groups())
    assert abs(ci - Z95 * se) <= 0.01  # the interval the CLI prints is 1.96 standard errors
    # the CLI's own wording: points, then the 95 % interval
    line = render_assessment(
        {
            "map": "classes.tif",
            "points": "sample.gpkg",
            "used_points": 2,
            "dropped": [],
            "method": "m",
            "overall_accuracy": 0.956,
            "overall_accuracy_se": 0.01,
            "classes": [],
            "error_matrix": {"labels": [], "area_proportions": []},
            "source": {"map": "s", "overall_accuracy": 0.954},
            "accuracy_change": {
                "overall_accuracy": 0.0019,
                "overall_accuracy_se": ci / Z95 / 100,
                "points_changed_to_right": 1,
                "points_changed_to_wrong": 0,
                "classes": [],
            },
        }
    )
    assert f"+0.19 points ± {ci:.2f} (95 % CI" in line


def test_polygons_and_multipoints_are_refused_not_ignored_or_counted_per_part(
    runs: Runs, points: Path, tmp_path: Path
) -> None:
    """Validation samples are single points.

    Statistics review: polygons were dropped without a word, MultiPoint parts counted as points (and in a
    design sample one crashed the stratum lookup).
    """
    import geopandas as gpd
    from shapely.geometry import MultiPoint

    from training.errors import AssessError

    frame = gpd.read_file(points)
    for name, geometry in (
        ("polygon", frame.geometry.iloc[0].buffer(15, cap_style="square")),
        ("multipoint", MultiPoint([frame.geometry.iloc[0], frame.geometry.iloc[1]])),
    ):
        mixed = frame.copy()
        mixed.loc[0, "geometry"] = geometry
        path = tmp_path / f"{name}.gpkg"
        mixed.to_file(path)
        with pytest.raises(AssessError, match="must be single Points"):
            assess_map(runs.first / "classes.tif", path, "label")


def test_a_standard_error_of_0_is_said_to_be_no_precision(runs: Runs, tmp_path: Path) -> None:
    """Every point right: 100 % +- 0.0 printed bare read as a perfectly known accuracy."""
    mapped = read_band(runs.first / "classes.tif")
    rng = np.random.default_rng(1)
    cells = np.concatenate(
        [rng.choice(np.flatnonzero(mapped.ravel() == v), 5, replace=False) for v in (1, 2, 3)]
    )
    rows, cols = np.unravel_index(cells, mapped.shape)
    path = write_pixel_points(tmp_path / "right.gpkg", rows, cols, mapped[rows, cols])
    result = assess_map(runs.first / "classes.tif", path, "label")
    assert result["overall_accuracy"] == 1.0
    assert result["overall_accuracy_se"] == 0.0
    assert "a ± 0 is no precision" in render_assessment(result)


def test_a_map_without_georeferencing_is_one_line(points: Path, tmp_path: Path) -> None:
    """Review: rasterio's NotGeoreferencedWarning printed two lines before the error."""
    import rasterio

    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8") as dst:
        dst.write(np.ones((1, 8, 8), dtype=np.uint8))
    done = lulc("assess", plain, "--points", points)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"error: map {plain} must be in a projected CRS to measure areas (it is None)"
    ]


def test_points_off_the_map_are_said_to_be_dropped_not_too_few(runs: Runs, tmp_path: Path) -> None:
    """Training-inputs review: 121 points outside the map read "classes 1 (0), 2 (0) ... fewer than 2"."""
    rows, cols = np.arange(10), np.arange(10)
    far = write_pixel_points(tmp_path / "far.gpkg", rows, cols, np.repeat([1, 2], 5), origin=(900_000.0, 0.0))
    with pytest.raises(
        AssessError, match=r"no validation point of .*far.gpkg is usable on the map \(10 of 10 "
    ):
        assess_map(runs.first / "classes.tif", far, "label")
    near = write_pixel_points(tmp_path / "near.gpkg", rows + 300, cols + 300, np.repeat([1, 2], 5))
    mixed = tmp_path / "mixed.gpkg"
    import geopandas as gpd
    import pandas as pd

    both = pd.concat([gpd.read_file(near).iloc[:2], gpd.read_file(far)])
    gpd.GeoDataFrame(both, crs=gpd.read_file(near).crs).to_file(mixed)
    with pytest.raises(
        AssessError, match=r"fewer than 2 validation points in .*mixed.gpkg \(10 of 12 points "
    ):
        assess_map(runs.first / "classes.tif", mixed, "label")


def test_a_designs_thin_strata_say_the_points_dropped_too(runs: Runs, tmp_path: Path) -> None:
    """Diff review: the design's refusal said "strata 1 (1) have fewer than 2" without the points dropped.

    Points off the map are refused first, counted: a design's estimates are of its map's extent (products
    review: a map of a smaller extent was estimated with the design's strata, its points off it dropped).
    """
    import geopandas as gpd

    from service.design import design_run

    sample = tmp_path / "sample.gpkg"
    design_run(runs.first, sample, target_se=0.05, min_per_class=4)
    frame = gpd.read_file(sample)
    frame["label"] = frame["stratum"]
    first = frame.index[frame["stratum"] == frame["stratum"].iloc[0]]
    away = first[1:]  # all but one point of a stratum moved off the map
    frame.loc[away, "geometry"] = frame.loc[away, "geometry"].translate(1e6)
    frame.to_file(sample)
    with pytest.raises(
        AssessError, match=rf"^{len(away)} of the {len(frame)} points of the sample design .*sample.gpkg lie "
    ):
        assess_map(runs.first / "classes.tif", sample, "label")
