"""Class hectares from each pixel's true area where pixel areas vary across the map (review).

In Web Mercator a pixel's ground area shrinks as cos² latitude: 100 m pixels from 57.5 to 62 N cover 13 %
less ground in the north than in the south. stats.json, the cleaned map's, the change matrix and the
vectorized patches multiplied pixel counts by the map's mean pixel area, overstating the northern class
(by about 3 % on this test's 400 km map, 7 % from 57.5 to 62 N) and understating the southern one; the tiler
already weighted each pixel.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio
import pyproj
import pytest
from rasterio.transform import from_origin

from lulc.cog import write_cog
from lulc.grid import pixel_areas_m2
from service.change import change_runs
from service.clean import clean_run
from service.vectorize import vectorize_run
from tests.service.products_support import BANDS, MEANS, classify_image, train_model
from training.assess import map_areas

SIZE = 400
"""Pixels a side, 1 km each: 400 km of Web Mercator, about 1.8 degrees of latitude at 60 N."""
PIXEL = 1000.0


def _image(path: Path, truth: np.ndarray, crs: str, origin: tuple[float, float]) -> Path:
    dn = (MEANS[truth - 1].transpose(2, 0, 1) * 10000).astype(np.uint16)
    return write_cog(
        path,
        dn,
        crs=crs,
        transform=from_origin(*origin, PIXEL, PIXEL),
        nodata=0,
        band_descriptions=list(BANDS),
    )


@pytest.fixture(scope="module")
def mercator(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    root = tmp_path_factory.mktemp("mercator")
    model = train_model(root)
    origin = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(10.0, 60.2)
    truth = np.ones((SIZE, SIZE), dtype=np.uint8)
    truth[: SIZE // 2] = 2  # the northern half one class, the southern another
    later = truth.copy()
    later[: SIZE // 2, : SIZE // 4] = 3
    first = classify_image(model, _image(root / "a.tif", truth, "EPSG:3857", origin), root / "2024", 128)
    second = classify_image(
        model, _image(root / "b.tif", later, "EPSG:3857", origin), root / "2025", 128, "2025-06-01"
    )
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    areas = pixel_areas_m2("EPSG:3857", from_origin(*origin, PIXEL, PIXEL), rows[:, ::40], cols[:, ::40])
    per_row = areas.reshape(SIZE, -1).mean(axis=1)  # one area per row: it varies with latitude only
    return first, second, per_row


def _points(path: Path, first: Path, second: Path) -> Path:
    """Ten points on each from-to code of the two maps, labelled with the maps' own classes (no error)."""
    import geopandas as gpd
    import rasterio
    import shapely

    with rasterio.open(first / "classes.tif") as a, rasterio.open(second / "classes.tif") as b:
        before, after, transform = a.read(1), b.read(1), a.transform
    codes = before.astype(int) * 10 + after
    rows, cols = [], []
    for code in np.unique(codes):
        r, c = np.nonzero(codes == code)
        rows += list(r[:: max(1, r.size // 10)][:10])
        cols += list(c[:: max(1, c.size // 10)][:10])
    rows_a, cols_a = np.array(rows), np.array(cols)
    x, y = transform * (cols_a + 0.5, rows_a + 0.5)
    pyogrio.write_dataframe(
        gpd.GeoDataFrame(
            {
                "label_a": before[rows_a, cols_a].astype(np.int32),
                "label_b": after[rows_a, cols_a].astype(np.int32),
            },
            geometry=shapely.points(x, y),
            crs="EPSG:3857",
        ),
        path,
    )
    return path


def _hectares(mask: np.ndarray, per_row: np.ndarray) -> float:
    return float((mask * per_row[:, None]).sum()) / 10_000.0


def test_stats_clean_change_and_patches_weigh_each_pixel(
    mercator: tuple[Path, Path, np.ndarray], tmp_path: Path
) -> None:
    first, second, per_row = mercator
    north, south = np.zeros((SIZE, SIZE), bool), np.zeros((SIZE, SIZE), bool)
    north[: SIZE // 2], south[SIZE // 2 :] = True, True
    assert per_row[0] < 0.95 * per_row[-1]  # the premise: northern pixels are much smaller

    stats = json.loads((first / "stats.json").read_text())
    hectares = {c["value"]: c["hectares"] for c in stats["classes"]}
    assert hectares[2] == pytest.approx(_hectares(north, per_row), rel=1e-3)
    assert hectares[1] == pytest.approx(_hectares(south, per_row), rel=1e-3)
    assert stats["valid_hectares"] == pytest.approx(_hectares(north | south, per_row), rel=1e-4)
    assert stats["hectares_from"] == "each pixel's area"
    assert stats["pixel_area_m2"] * SIZE * SIZE / 10_000 == pytest.approx(stats["valid_hectares"], rel=1e-4)

    # lulc assess measures the map as stats.json does (it used the CRS's nominal pixel area: 4x at 60 N)
    measured = map_areas(first / "classes.tif")
    assert measured.hectares[2] == pytest.approx(hectares[2], rel=1e-6)
    assert measured.hectares[1] == pytest.approx(hectares[1], rel=1e-6)

    cleaned = json.loads(
        (clean_run(first, tmp_path / "clean", mmu_ha=100).out_dir / "stats.json").read_text()
    )
    assert [c["hectares"] for c in cleaned["classes"]] == [c["hectares"] for c in stats["classes"]]

    matrix = change_runs(first, second, tmp_path / "change").matrix
    moved = np.zeros((SIZE, SIZE), bool)
    moved[: SIZE // 2, : SIZE // 4] = True
    assert matrix["hectares"][1][2] == pytest.approx(_hectares(moved, per_row), rel=1e-3)  # 2 -> 3
    assert matrix["by_class"][0]["from_hectares"] == pytest.approx(hectares[1], rel=1e-6)

    # the change areas' mapped hectares and strata weigh the same true areas (points on every from-to code)
    points = _points(tmp_path / "points.gpkg", first, second)
    estimate = change_runs(first, second, tmp_path / "change-points", points=points).areas
    assert estimate is not None
    by_name = {c["name"]: c for c in estimate["classes"]}
    moved_name = next(name for name in by_name if name.endswith(" to Built-up area") and "Tree" in name)
    assert by_name[moved_name]["mapped_hectares"] == pytest.approx(matrix["hectares"][1][2], rel=1e-6)
    assert by_name[moved_name]["estimated_hectares"] == pytest.approx(matrix["hectares"][1][2], rel=1e-6)

    patches = vectorize_run(first, tmp_path / "patches.gpkg").path
    table = pyogrio.read_dataframe(patches)
    by_value = table.groupby("value")["area_ha"].sum()
    assert by_value[2] == pytest.approx(hectares[2], rel=2e-3)
    assert by_value[1] == pytest.approx(hectares[1], rel=2e-3)


@pytest.mark.parametrize(
    ("row", "col", "height", "width", "length"),
    [(512, 1024, 512, 512, 256), (70, 5, 300, 131, 8), (0, 0, 1, 1, 256), (64, 64, 64, 200, 70_000)],
)
def test_sums_by_value_weigh_each_pixel_by_its_cells_area(
    row: int, col: int, height: int, width: int, length: int
) -> None:
    """Per-cell counts (and, for patch numbers, the one weighted count) give each pixel its cell's area."""
    from lulc.areas import area_cells
    from lulc.grid import AREA_CELL

    transform = from_origin(1_500_000, 8_400_000, 20, 20)  # EPSG:3857 near 60 N: areas vary
    cells = area_cells("EPSG:3857", transform, 2048, 2048)
    assert cells is not None
    values = np.random.default_rng(3).integers(0, min(length, 300), (height, width))
    rows = np.arange(row, row + height)[:, None] // AREA_CELL
    cols = np.arange(col, col + width)[None, :] // AREA_CELL
    per_pixel = cells.areas[rows, cols]
    expected = np.bincount(values.ravel(), weights=per_pixel.ravel(), minlength=length)[:length]
    got = cells.sum_by_value(values, row, col, length)
    assert got.shape == (length,)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    mean = got.sum() / (height * width)  # ground m² a pixel: 400 nominal, cos² 59.7 N of it on the ground
    assert 0.24 * 400 < mean < 0.27 * 400


def test_a_designed_samples_class_areas_weigh_each_strata_true_area(
    mercator: tuple[Path, Path, np.ndarray], tmp_path: Path
) -> None:
    """Science review: the design's strata weighed pixels x the mean pixel area, overstating the north 7 %."""
    from service.design import design_run
    from training.assess import assess_map

    first, _, per_row = mercator
    design = design_run(first, tmp_path / "sample.gpkg", min_per_class=20, seed=1)
    strata = {s["value"]: s for s in design.item["properties"]["lulc:design"]["strata"]}
    north, south = np.zeros((SIZE, SIZE), bool), np.zeros((SIZE, SIZE), bool)
    north[: SIZE // 2], south[SIZE // 2 :] = True, True
    assert strata[2]["hectares"] == pytest.approx(_hectares(north, per_row), rel=1e-3)
    assert strata[1]["weight"] == pytest.approx(
        _hectares(south, per_row) / _hectares(north | south, per_row), rel=1e-3
    )
    sample = pyogrio.read_dataframe(design.path)
    sample["label"] = sample["stratum"]  # the map is right everywhere: the estimate is the map's true area
    pyogrio.write_dataframe(sample, design.path)
    result = assess_map(first, design.path, "label")
    areas = {c["value"]: c for c in result["classes"]}
    assert areas[2]["area_ha"] == pytest.approx(_hectares(north, per_row), rel=1e-3)
    assert areas[1]["area_ha"] == pytest.approx(_hectares(south, per_row), rel=1e-3)
    assert areas[2]["area_ha"] == pytest.approx(areas[2]["map_area_ha"], rel=1e-6)
