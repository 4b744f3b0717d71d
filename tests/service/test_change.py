"""``lulc change``: from-to COG and transition matrix equal a numpy cross-tabulation; mismatches refused."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from rasterio.transform import from_origin

from lulc.errors import InputError
from service.change import change_runs
from tests.service.products_support import Runs, read_band, truth_map, two_runs
from tests.support.cli import lulc
from tests.support.stac_validation import assert_valid_stac_file


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return two_runs(tmp_path_factory)


def test_matrix_and_codes_equal_numpy(runs: Runs, tmp_path: Path) -> None:
    out = tmp_path / "change"
    result = change_runs(runs.first, runs.second, out, block_size=128)
    a, b = read_band(runs.first / "classes.tif"), read_band(runs.second / "classes.tif")
    valid = (a != 255) & (b != 255)
    crosstab = np.zeros((3, 3), dtype=np.int64)
    np.add.at(crosstab, (a[valid].astype(int) - 1, b[valid].astype(int) - 1), 1)
    assert np.array_equal(result.pixels, crosstab)
    matrix = json.loads((out / "transitions.json").read_text())
    assert matrix["pixels"] == crosstab.tolist()
    pixel_ha = json.loads((runs.first / "stats.json").read_text())["pixel_area_m2"] / 10_000  # true area
    assert 0.0099 < pixel_ha < 0.0101
    assert matrix["hectares"] == [[round(v * pixel_ha, 4) for v in row] for row in crosstab.tolist()]
    assert matrix["changed_pixels"] == int(((a != b) & valid).sum()) > 0
    assert matrix["nodata_pixels"] == int((~valid).sum()) == 6400  # the larger nodata corner
    codes = read_band(out / "change.tif")
    expected = np.where(valid, (a.astype(int) - 1) * 3 + (b.astype(int) - 1), 255)
    assert np.array_equal(codes, expected)
    with rasterio.open(out / "change.tif") as src:
        assert src.tags(1)["CLASS_1"] == "Open water to Tree cover"
        assert src.tags(1)["CLASS_4"] == "Tree cover unchanged"
        assert src.colormap(1)[1][:3] == (0x33, 0xA0, 0x2C)  # changed: the colour of the class it became
        assert src.overviews(1)
    ET.parse(out / "transitions.svg")  # a well-formed figure
    assert 'label="Open water to Tree cover"' in (out / "change.qml").read_text()  # QGIS's legend
    item = assert_valid_stac_file(out / "item.json")
    assert item["properties"]["lulc:product"] == "change"
    assert item["properties"]["start_datetime"].startswith("2024-06-01")
    assert item["properties"]["end_datetime"].startswith("2025-06-01")
    windows = [
        json.loads((r / "item.json").read_text())["properties"]["lulc:datetime_window"]
        for r in (runs.first, runs.second)
    ]
    assert item["properties"]["lulc:datetime_windows"] == windows
    assert "lulc:datetime_window" not in item["properties"]  # a run's one window is a string: not a list
    names = [c["name"] for c in item["assets"]["change"]["classification:classes"]]
    assert names[:2] == ["open-water-unchanged", "open-water-to-tree-cover"]
    sources = {json.loads((out / link["href"]).read_text())["id"] for link in item["links"]}
    assert len(sources) == 2


def _rewrite_classes(
    run: Path,
    folder: Path,
    *,
    transform: object = None,
    tags: dict[str, str] | None = None,
    crs: str | None = None,
) -> Path:
    """A copy of ``run`` whose classes.tif has another transform, CRS or other class names."""
    shutil.copytree(run, folder)
    with rasterio.open(run / "classes.tif") as src:
        profile = src.profile | {"driver": "GTiff"}
        data, old_tags, colours = src.read(1), src.tags(1), src.colormap(1)
    if transform is not None:
        profile["transform"] = transform
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(folder / "classes.tif", "w", **profile) as dst:
        dst.write(data, 1)
        dst.update_tags(1, **(old_tags | (tags or {})))
        dst.write_colormap(1, colours)
    return folder


def test_different_grids_are_refused_naming_both(runs: Runs, tmp_path: Path) -> None:
    shifted = _rewrite_classes(
        runs.second, tmp_path / "shifted", transform=from_origin(500020, 5000000, 10, 10)
    )
    with pytest.raises(
        InputError,
        match=r"different grids: .*at \(500000.0, 5000000.0\) and .*at \(500020.0, 5000000.0\); "
        r"classify both with the same --aoi and --crs",
    ):
        change_runs(runs.first, shifted, tmp_path / "out")
    assert not (tmp_path / "out" / "item.json").exists()
    # half a metre apart: the message told two identical origins apart no more (review)
    nudged = _rewrite_classes(
        runs.second, tmp_path / "nudged", transform=from_origin(500000.5, 5000000, 10, 10)
    )
    with pytest.raises(InputError, match=r"at \(500000.0, 5000000.0\) and .*at \(500000.5, 5000000.0\)"):
        change_runs(runs.first, nudged, tmp_path / "out")


def test_maps_in_different_crss_are_refused_saying_which_crs_to_classify_in(
    runs: Runs, tmp_path: Path
) -> None:
    """CLI review: the message named both CRSs but not how to make the maps comparable."""
    with rasterio.open(runs.first / "classes.tif") as src:
        first = src.crs.to_string()
    other = _rewrite_classes(runs.second, tmp_path / "other", crs="EPSG:32634")
    done = lulc("change", runs.first, other, "--out", tmp_path / "out")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: the maps have different CRSs: {first} and EPSG:32634; classify the second again with --crs "
        f"{first} and the first's --aoi, so that their pixels line up"
    ]
    assert not (tmp_path / "out").exists()
    # a CRS without a code was named by its WKT: a one-line error of 600 characters (noted, carried)
    custom = "+proj=aeqd +lat_0=47 +lon_0=8 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
    odd = _rewrite_classes(runs.second, tmp_path / "odd", crs=custom)
    done = lulc("change", odd, runs.first, "--out", tmp_path / "out")
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: the maps have different CRSs: +proj=aeqd +lat_0=47 +lon_0=8 "), line
    assert f"and {first}; classify the second again in the first's CRS and" in line
    assert "PROJCS" not in line
    assert len(line) < 300


def test_the_earlier_run_comes_first(runs: Runs, tmp_path: Path) -> None:
    """Review: 2025 to 2024 made an item ending before it starts, and a 'from 2025 to 2024' matrix."""
    with pytest.raises(InputError, match=r"\(2025-06-01\) is later than .* \(up to 2024-"):
        change_runs(runs.second, runs.first, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_different_class_tables_are_refused_naming_both(runs: Runs, tmp_path: Path) -> None:
    renamed = _rewrite_classes(runs.second, tmp_path / "renamed", tags={"CLASS_3": "Urban"})
    with pytest.raises(InputError, match=r"different class tables: .*3=Built-up area.*3=Urban"):
        change_runs(runs.first, renamed, tmp_path / "out")


def test_cli_change(runs: Runs, tmp_path: Path) -> None:
    points = _validation_points(runs, tmp_path / "points.gpkg", per_stratum=5)
    done = lulc(
        "change", str(runs.first), str(runs.second), "--out", str(tmp_path / "c"), "--points", str(points)
    )
    assert done.returncode == 0, done.stderr
    assert "pixels changed" in done.stdout
    assert "changed area (Olofsson et al. 2014, 45 points)" in done.stdout
    assert (tmp_path / "c" / "item.json").is_file()
    bad = lulc("change", str(runs.first), str(tmp_path / "nowhere"), "--out", str(tmp_path / "d"))
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "does not exist" in bad.stderr


def _validation_points(runs: Runs, path: Path, per_stratum: int = 25) -> Path:
    """Points stratified by the change map's from-to classes, labelled from the two truth maps."""
    import pyogrio.raw
    import shapely

    a, b = read_band(runs.first / "classes.tif"), read_band(runs.second / "classes.tif")
    truth_a, truth_b = truth_map((600, 640), 40, seed=1), truth_map((600, 640), 40, seed=2)
    valid = (a != 255) & (b != 255)
    codes = np.where(valid, (a.astype(int) - 1) * 3 + (b.astype(int) - 1), -1)
    rng = np.random.default_rng(7)
    picked = []
    for code in range(9):
        flat = np.flatnonzero(codes.ravel() == code)
        picked.append(rng.choice(flat, size=min(per_stratum, flat.size), replace=False))
    index = np.concatenate(picked)
    rows, cols = np.unravel_index(index, codes.shape)
    points = shapely.points(500000.0 + (cols + 0.5) * 10, 5000000.0 - (rows + 0.5) * 10)
    names = {1: "Open water", 2: "Tree cover", 3: "Built-up area"}
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb(points),
        [
            truth_a[rows, cols].astype(np.int32),
            np.array([names[v] for v in truth_b[rows, cols]], dtype=object),
        ],
        ["label_a", "label_b"],
        driver="GPKG",
        geometry_type="Point",
        crs="EPSG:32633",
    )
    return path


def test_change_areas_with_confidence_intervals(runs: Runs, tmp_path: Path) -> None:
    """Olofsson et al. 2014 on the change strata: as training's estimator computes it; covers the truth."""
    from lulc.olofsson import Z95, estimate

    points = _validation_points(runs, tmp_path / "points.gpkg")
    result = change_runs(runs.first, runs.second, tmp_path / "c", points=points, block_size=256)
    areas = json.loads((tmp_path / "c" / "change_areas.json").read_text())
    assert result.areas == areas
    assert areas["points"] == 225
    pixel_ha = json.loads((runs.first / "stats.json").read_text())["pixel_area_m2"] / 10_000
    # The same estimate from the training package's implementation of the paper.
    a, b = read_band(runs.first / "classes.tif"), read_band(runs.second / "classes.tif")
    truth_a, truth_b = truth_map((600, 640), 40, seed=1), truth_map((600, 640), 40, seed=2)
    frame = pyogrio.read_dataframe(points)
    rows = ((5000000.0 - frame.geometry.y) / 10).astype(int).to_numpy()
    cols = ((frame.geometry.x - 500000.0) / 10).astype(int).to_numpy()
    mapped = (a[rows, cols].astype(int) - 1) * 3 + b[rows, cols] - 1
    reference = (truth_a[rows, cols].astype(int) - 1) * 3 + truth_b[rows, cols] - 1
    counts = np.zeros((9, 9))
    np.add.at(counts, (mapped, reference), 1)
    expected = estimate(counts, result.pixels.ravel())
    got = np.array([c["estimated_hectares"] for c in areas["classes"]])
    assert np.allclose(got, expected.area * pixel_ha, atol=1e-3)
    ci = np.array([c["ci95_hectares"] for c in areas["classes"]])
    assert np.allclose(ci, Z95 * expected.area_se * pixel_ha, atol=1e-3)
    assert abs(areas["overall_accuracy"] - expected.overall_accuracy) < 1e-6
    # The interval covers the true changed area (known here), and the estimated areas cover the map.
    valid = (a != 255) & (b != 255)
    true_changed = float(((truth_a != truth_b) & valid).sum()) * pixel_ha
    changed = areas["changed"]
    assert abs(changed["estimated_hectares"] - true_changed) <= changed["ci95_hectares"]
    assert 0 < changed["ci95_hectares"] < 0.1 * changed["estimated_hectares"]
    assert abs(got.sum() - float(result.pixels.sum()) * pixel_ha) < 0.01
    item = assert_valid_stac_file(tmp_path / "c" / "item.json")
    assert item["assets"]["change_areas"]["href"] == "./change_areas.json"


def test_points_with_unknown_labels_are_refused(runs: Runs, tmp_path: Path) -> None:
    import pyogrio.raw
    import shapely

    points = tmp_path / "points.gpkg"
    pyogrio.raw.write(
        str(points),
        shapely.to_wkb(shapely.points([[500005.0, 4999995.0]])),
        [np.array([9], dtype=np.int32), np.array(["Tree cover"], dtype=object)],
        ["label_a", "label_b"],
        driver="GPKG",
        geometry_type="Point",
        crs="EPSG:32633",
    )
    with pytest.raises(InputError, match="have no field 'reference'"):
        change_runs(runs.first, runs.second, tmp_path / "c", points=points, label_a="reference")
    with pytest.raises(InputError, match=r"label_a 9 is not a class of the maps \(1=Open water"):
        change_runs(runs.first, runs.second, tmp_path / "c", points=points)
    assert not (tmp_path / "c" / "item.json").exists()


def test_a_mapped_stratum_without_points_is_refused_not_dropped_from_the_areas() -> None:
    """An empty stratum's mean was taken as 0: its mapped area vanished from every estimate (review).

    Two classes, codes 0..3 mapped 4000 / 500 / 500 / 5000 px, 30 points in each code but "B to A".
    """
    from service.change_areas import change_area_estimate
    from tests.service.products_support import CLASSES

    two = type(CLASSES)(classes=CLASSES.classes[:2])
    names = [c.name for c in two.classes]
    pixels = np.array([4000, 500, 500, 5000])
    codes = np.repeat([0, 1, 3], 30)  # every point right
    with pytest.raises(InputError, match=rf"mapped strata {names[1]} to {names[0]} \(5 ha\)"):
        change_area_estimate(codes, codes, pixels, 0.01, two)
    # control: with that stratum sampled too, the estimates add up to the mapped total
    codes = np.repeat([0, 1, 2, 3], 30)
    areas = change_area_estimate(codes, codes, pixels, 0.01, two)
    assert sum(c["estimated_hectares"] for c in areas["classes"]) == pytest.approx(100.0)
    assert areas["changed"]["estimated_hectares"] == pytest.approx(10.0)


def test_a_mapped_stratum_of_one_point_is_refused_not_given_a_variance_of_0() -> None:
    """A mapped stratum of one point is refused: its variance would read as 0.

    One point in a 450 ha stratum gave the changed area an interval under half of what a second point
    showed (statistics review). Two points, or the whole stratum sampled, pass.
    """
    from service.change_areas import change_area_estimate
    from tests.service.products_support import CLASSES

    two = type(CLASSES)(classes=CLASSES.classes[:2])
    names = [c.name for c in two.classes]
    pixels = np.array([4000, 500, 500, 5000])
    codes = np.concatenate([np.repeat([0, 1, 3], 30), [2]])  # "B to A": one point
    with pytest.raises(InputError, match=rf"{names[1]} to {names[0]} \(1 point\) have fewer than 2"):
        change_area_estimate(codes, codes, pixels, 0.01, two)
    codes = np.concatenate([np.repeat([0, 1, 3], 30), [2, 2]])
    assert change_area_estimate(codes, codes, pixels, 0.01, two)["points"] == 92
    whole = np.array([4000, 500, 1, 5000])  # a stratum of one pixel, sampled whole, is known exactly
    codes = np.concatenate([np.repeat([0, 1, 3], 30), [2]])
    assert change_area_estimate(codes, codes, whole, 0.01, two)["points"] == 91
