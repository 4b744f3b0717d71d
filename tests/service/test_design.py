"""``lulc design``: Olofsson's sample size and allocation, seeded points per class, read back by assess."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio

from lulc.errors import InputError
from lulc.olofsson import allocate, anticipated_overall_se, cochran_sample_size, read_sample_design
from service.clean import clean_run
from service.design import design_run, plan_design
from tests.service.products_support import Runs, read_band, truth_map, two_runs
from tests.support.cli import lulc
from tests.support.stac_validation import assert_valid_stac_file
from training.assess import assess_map
from training.errors import AssessError

# Olofsson et al. 2014, section 5.1: strata weights and anticipated user's accuracies of the example.
PAPER_PIXELS = np.array([200_000, 150_000, 3_200_000, 6_450_000])
PAPER_UA = np.array([0.7, 0.6, 0.9, 0.95])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return two_runs(tmp_path_factory)


def test_sample_size_is_the_papers_641_and_grows_until_the_allocation_reaches_the_target() -> None:
    weights = PAPER_PIXELS / PAPER_PIXELS.sum()
    assert cochran_sample_size(weights, PAPER_UA, 0.01) == 641  # the paper's n
    # control: allocating 641 as 75, 75, then by area misses 0.01 (eq. 13 assumes Neyman allocation)
    at_641 = allocate(641, PAPER_PIXELS, 75)
    assert at_641.tolist()[:2] == [75, 75]
    assert at_641.sum() == 641
    assert anticipated_overall_se(weights, PAPER_UA, at_641) > 0.0105
    design = plan_design(PAPER_PIXELS, PAPER_UA, 0.01, 75)
    assert design.cochran_size == 641
    assert design.size > 641
    assert 0.0098 < design.anticipated_se <= 0.01
    smaller = allocate(design.size - 1, PAPER_PIXELS, 75)
    assert anticipated_overall_se(weights, PAPER_UA, smaller) > 0.01  # the smallest size that reaches it


def test_a_class_of_one_pixel_does_not_make_the_design_sample_every_pixel() -> None:
    """Its one point is the whole stratum (review: the size doubled until it reached all 1,000,001 pixels)."""
    design = plan_design([1, 400_000, 600_000], [0.75] * 3, 0.01, 50)
    reference = plan_design([400_000, 600_000], [0.75] * 2, 0.01, 50)
    assert design.size <= reference.size + 1
    assert design.anticipated_se <= 0.01
    assert next(s.points for s in design.strata) == 1


def test_allocation_gives_the_minimum_then_shares_the_rest_by_area() -> None:
    sizes = np.array([10, 400, 0, 20_000, 79_600])
    counts = allocate(1000, sizes, 50)
    assert counts[0] == 10  # no more points than pixels
    assert counts[1] == 50  # its proportional share (4) is under the minimum
    assert counts[2] == 0
    assert counts.sum() == 1000
    rest = 1000 - 60
    assert counts[3] == pytest.approx(rest * 20_000 / 99_600, abs=1)
    assert counts[4] == pytest.approx(rest * 79_600 / 99_600, abs=1)


def _points(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, object]:
    meta, _, geometry, data = pyogrio.raw.read(path)
    import shapely

    geoms = shapely.from_wkb(geometry)
    fields = list(meta["fields"])
    return shapely.get_x(geoms), shapely.get_y(geoms), np.asarray(data[fields.index("stratum")]), (meta, data)


def test_points_lie_on_distinct_pixel_centres_of_their_stratum(runs: Runs, tmp_path: Path) -> None:
    result = design_run(runs.first, tmp_path / "sample.gpkg", target_se=0.015, min_per_class=60, seed=5)
    x, y, strata, (meta, data) = _points(result.path)
    assert list(meta["fields"]) == ["point_id", "stratum", "stratum_name", "label"]
    assert all(v is None for v in data[3])  # the label column is empty, for the analyst
    with rasterio.open(runs.first / "classes.tif") as src:
        inverse = ~src.transform
    cols, rows = inverse @ (x, y)
    assert np.allclose(cols % 1, 0.5)
    assert np.allclose(rows % 1, 0.5)  # pixel centres
    rows_i, cols_i = rows.astype(int), cols.astype(int)
    assert len(set(zip(rows_i.tolist(), cols_i.tolist(), strict=True))) == len(x)  # without replacement
    mapped = read_band(runs.first / "classes.tif")
    assert np.array_equal(mapped[rows_i, cols_i], strata)
    by_stratum = {s.value: s.points for s in result.design.strata}
    assert {int(v): int((strata == v).sum()) for v in np.unique(strata)} == by_stratum
    # the strata are the map's class pixel counts, read independently
    counts = np.bincount(mapped.ravel(), minlength=256)
    assert {s.value: s.pixels for s in result.design.strata} == {v: int(counts[v]) for v in (1, 2, 3)}
    assert min(by_stratum.values()) >= 60
    assert result.design.anticipated_se <= 0.015
    item = assert_valid_stac_file(result.item_path)
    props = item["properties"]
    assert props["lulc:product"] == "design"
    assert props["lulc:design"]["size"] == len(x)
    assert "file:checksum" not in item["assets"]["sample"]  # made to be labelled: a checksum goes stale
    assert [s["points"] for s in props["lulc:design"]["strata"]] == [by_stratum[v] for v in (1, 2, 3)]
    link = next(k for k in item["links"] if k["rel"] == "derived_from")
    assert (result.item_path.parent / link["href"]).resolve() == (runs.first / "item.json").resolve()


def test_same_seed_same_bytes_whatever_the_strip_height(runs: Runs, tmp_path: Path) -> None:
    a = design_run(runs.first, tmp_path / "a" / "sample.gpkg", seed=7, block_size=512)
    b = design_run(runs.first, tmp_path / "b" / "sample.gpkg", seed=7, block_size=37)
    c = design_run(runs.first, tmp_path / "c" / "sample.gpkg", seed=8)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.item_path.read_bytes() == b.item_path.read_bytes()
    assert a.path.read_bytes() != c.path.read_bytes()  # control: another seed, other points
    assert _points(a.path)[0].tolist() != _points(c.path)[0].tolist()


def _label_from_truth(sample: Path, truth: np.ndarray, runs: Runs) -> None:
    """Fill the label column as an analyst would, from the truth, in place."""
    meta, _, geometry, data = pyogrio.raw.read(sample)
    import shapely

    with rasterio.open(runs.first / "classes.tif") as src:
        inverse = ~src.transform
    points = shapely.from_wkb(geometry)
    cols, rows = inverse @ (shapely.get_x(points), shapely.get_y(points))
    data = list(data)
    data[3] = np.array([str(int(v)) for v in truth[rows.astype(int), cols.astype(int)]], dtype=object)
    pyogrio.raw.write(
        sample,
        geometry,
        data,
        list(meta["fields"]),
        layer="sample",
        driver="GPKG",
        crs=meta["crs"],
        geometry_type="Point",
    )


def test_assess_uses_the_designs_strata_and_reports_the_cleaning(runs: Runs, tmp_path: Path) -> None:
    result = design_run(runs.first, tmp_path / "sample.gpkg", target_se=0.01, seed=2)
    truth = truth_map((600, 640), 40, seed=1)
    _label_from_truth(result.path, truth, runs)
    assessed = assess_map(runs.first / "classes.tif", result.path, "label")
    assert "design" in assessed["method"]
    assert assessed["design"]["points_where_map_class_is_not_stratum"] == 0
    # independent: each stratum's share of right points, weighted by the design's pixels
    mapped = read_band(runs.first / "classes.tif")
    x, y, strata, _ = _points(result.path)
    with rasterio.open(runs.first / "classes.tif") as src:
        cols, rows = ~src.transform @ (x, y)
    right = mapped[rows.astype(int), cols.astype(int)] == truth[rows.astype(int), cols.astype(int)]
    sizes = {s.value: s.pixels for s in result.design.strata}
    total = sum(sizes.values())
    expected = sum(sizes[v] / total * right[strata == v].mean() for v in sizes)
    assert assessed["overall_accuracy"] == pytest.approx(expected, abs=1e-6)
    valid = mapped != 255
    true_oa = float((mapped[valid] == truth[valid]).mean())
    assert abs(assessed["overall_accuracy"] - true_oa) < 3 * assessed["overall_accuracy_se"]

    clean = clean_run(runs.first, tmp_path / "clean", mmu_ha=0.3)
    after = assess_map(clean.out_dir / "classes.tif", result.path, "label")
    assert after["design"]["points_where_map_class_is_not_stratum"] > 0
    assert "Stehman" in after["method"]
    cleaned = read_band(clean.out_dir / "classes.tif")
    right_after = cleaned[rows.astype(int), cols.astype(int)] == truth[rows.astype(int), cols.astype(int)]
    expected_after = sum(sizes[v] / total * right_after[strata == v].mean() for v in sizes)
    assert after["overall_accuracy"] == pytest.approx(expected_after, abs=1e-6)
    change = after["accuracy_change"]
    assert after["source"]["overall_accuracy"] == assessed["overall_accuracy"]
    assert change["overall_accuracy"] == pytest.approx(expected_after - expected, abs=2e-6)
    assert change["overall_accuracy"] > 0  # the speckle removed was mostly wrong
    assert change["points_changed_to_right"] > change["points_changed_to_wrong"]
    d = right_after.astype(float) - right.astype(float)
    paired = np.sqrt(
        sum((sizes[v] / total) ** 2 * d[strata == v].var(ddof=1) / (strata == v).sum() for v in sizes)
    )
    assert change["overall_accuracy_se"] == pytest.approx(paired, abs=2e-6)
    unpaired = np.hypot(after["overall_accuracy_se"], assessed["overall_accuracy_se"])
    assert 0 < change["overall_accuracy_se"] < unpaired  # the same points: tighter than two samples
    # control: the source map itself is no cleaned map, so nothing is compared
    assert "accuracy_change" not in assessed


def test_a_map_on_a_coarser_grid_is_assessed_with_the_designs_pixel_area(runs: Runs, tmp_path: Path) -> None:
    """The strata are the design's map's pixels: at 20 m the assessed map's pixel area made every area 4x."""
    result = design_run(runs.first, tmp_path / "sample.gpkg", target_se=0.02, seed=3)
    _label_from_truth(result.path, truth_map((600, 640), 40, seed=1), runs)
    with rasterio.open(runs.first / "classes.tif") as src:
        fine, profile, tags = src.read(1), src.profile, src.tags(1)
    profile.update(
        width=fine.shape[1] // 2, height=fine.shape[0] // 2, transform=src.transform * src.transform.scale(2)
    )
    coarse = tmp_path / "coarse.tif"
    with rasterio.open(coarse, "w", **profile) as dst:
        dst.write(fine[::2, ::2], 1)
        dst.update_tags(1, **tags)
    assessed = assess_map(coarse, result.path, "label")
    pixel_m2 = read_sample_design(result.path)["pixel_area_m2"]  # geodesic: 100 m2 within 0.1 %
    design_ha = sum(s.pixels for s in result.design.strata) * pixel_m2 / 10_000
    assert sum(c["area_ha"] for c in assessed["classes"]) == pytest.approx(design_ha, rel=1e-6)


def test_cli_design_and_its_one_line_errors(runs: Runs, tmp_path: Path) -> None:
    out = tmp_path / "s.fgb"
    done = lulc(
        "design", str(runs.first), "--target-se", "0.02", "--min-per-class", "30", "--users-accuracy",
        "Open water=0.95,2=0.8", "--seed", "1", "--out", str(out)
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "points (eq. 13:" in done.stdout
    item = json.loads(out.with_suffix(".json").read_text())
    accuracies = [s["users_accuracy"] for s in item["properties"]["lulc:design"]["strata"]]
    assert accuracies == [0.95, 0.8, 0.75]
    for args, message in (
        (["--target-se", "0"], "--target-se must lie between 0 and 0.5"),
        (["--users-accuracy", "Mud=0.9"], "not a class of the map"),
        (["--users-accuracy", "high"], "--users-accuracy takes a number"),
        (["--users-accuracy", "Open water=0.9,Open water=0.5"], "gives 'Open water' twice"),  # the last won
        (
            ["--users-accuracy", "1=0.9,open water=0.5"],
            "gives class 1=Open water twice ('1' and 'open water')",
        ),
        (["--min-per-class", "1"], "--min-per-class must be at least 2"),
    ):
        bad = lulc("design", str(runs.first), "--out", str(tmp_path / "x.gpkg"), *args)
        assert bad.returncode == 2
        assert bad.stderr.count("\n") == 1
        assert message in bad.stderr
    with pytest.raises(InputError, match=r"\.gpkg or \.fgb"):
        design_run(runs.first, tmp_path / "x.csv")


def test_a_change_product_is_sampled_by_its_change_strata(runs: Runs, tmp_path: Path) -> None:
    from service.change import change_runs
    from service.change_areas import change_strata

    change = change_runs(runs.first, runs.second, tmp_path / "change", block_size=128)
    result = design_run(change.out_dir, tmp_path / "change-sample.gpkg", min_per_class=20, seed=4)
    design = result.item["properties"]["lulc:design"]
    assert design["kind"] == "change"
    assert design["label_fields"] == ["label_a", "label_b"]
    assert [s["name"] for s in design["strata"]][:4] == [
        "Open water unchanged",
        "Tree cover unchanged",
        "Built-up area unchanged",
        "changed to Open water",
    ]
    codes = read_band(change.out_dir / "change.tif")
    strata = change_strata(codes, 3)
    counts = np.bincount(strata[codes != 255], minlength=6)
    assert [s["pixels"] for s in design["strata"]] == counts.tolist()
    x, y, point_strata, (meta, _) = _points(result.path)
    assert list(meta["fields"]) == ["point_id", "stratum", "stratum_name", "label_a", "label_b"]
    with rasterio.open(change.out_dir / "change.tif") as src:
        cols, rows = ~src.transform @ (x, y)
    assert np.array_equal(strata[rows.astype(int), cols.astype(int)], point_strata)
    assert_valid_stac_file(result.item_path)
    # a map's design is no change design, and a change design no map's
    classes_sample = design_run(runs.first, tmp_path / "map-sample.gpkg", target_se=0.05, seed=1)
    with pytest.raises(InputError, match="designed on a map's classes, not on change"):
        change_runs(runs.first, runs.second, tmp_path / "never", points=classes_sample.path)
    with pytest.raises(AssessError, match="designed on a change map's strata"):
        assess_map(runs.first / "classes.tif", result.path, "label_a")


def test_a_design_on_maps_of_a_smaller_extent_is_refused(runs: Runs, tmp_path: Path) -> None:
    """Products review: the design's strata areas with its points off the map dropped, exit 0 (wrong ha)."""
    from service.change import change_runs

    sample = design_run(runs.first, tmp_path / "sample.gpkg", target_se=0.05, seed=1).path
    frame = gpd.read_file(sample)
    frame["label"] = frame["stratum"]
    frame.to_file(sample)
    halves = []
    for run in (runs.first, runs.second):  # the western half of each map, as a run of a smaller AOI
        half = tmp_path / f"half-{run.name}"
        shutil.copytree(run, half)
        with rasterio.open(run / "classes.tif") as src:
            data, profile, tags, colormap = src.read(1), src.profile, src.tags(1), src.colormap(1)
        profile.update(width=data.shape[1] // 2)
        (half / "classes.tif").unlink()
        with rasterio.open(half / "classes.tif", "w", **profile) as dst:
            dst.write(data[:, : data.shape[1] // 2], 1)
            dst.update_tags(1, **tags)
            dst.write_colormap(1, colormap)
        halves.append(half)
    with pytest.raises(AssessError, match=r"points of the sample design .*sample.gpkg lie outside map"):
        assess_map(halves[0] / "classes.tif", sample, "label")
    change = change_runs(runs.first, runs.second, tmp_path / "change", block_size=128)
    change_sample = design_run(change.out_dir, tmp_path / "change-sample.gpkg", min_per_class=5, seed=4).path
    frame = gpd.read_file(change_sample)
    frame["label_a"], frame["label_b"] = "Open water", "Open water"
    frame.to_file(change_sample)
    with pytest.raises(InputError, match=r"points of the sample design .*change-sample.gpkg lie outside the"):
        change_runs(halves[0], halves[1], tmp_path / "never", points=change_sample)
