"""``POST /statistics``'s class areas on maps in any CRS and for polygons of any size (``tiler.areas``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin
from rasterio.warp import transform
from shapely.geometry import box, mapping

from lulc.aoi import aoi_area_m2
from lulc.classes import ClassTable
from lulc.cog import write_cog
from tiler.areas import AoaLayer, class_areas

TABLE = ClassTable.from_labels([1, 2])
SIZE = 200


def _map(folder: Path, crs: str, x0: float, y0: float, res: float) -> Path:
    """A SIZE x SIZE map, class 1 left and class 2 right, the top 10 rows nodata."""
    data = np.ones((SIZE, SIZE), dtype=np.uint8)
    data[:, SIZE // 2 :] = 2
    data[:10] = 255
    path = folder / f"{crs.replace(':', '-')}.tif"
    write_cog(path, data, crs=crs, transform=from_origin(x0, y0, res, res), nodata=255)
    return path


def test_web_mercator_pixels_count_with_their_true_area(tmp_path: Path) -> None:
    """At 60° N a 10 m Web Mercator pixel covers 25 m² of ground: hectares are the polygon's, not 4x them."""
    path = _map(tmp_path, "EPSG:3857", 1_113_194.9, 8_399_737.9, 10.0)
    # a lon/lat box on pixel edges (Mercator keeps meridians and parallels straight): rows 50-150, cols 20-120
    xs, ys = [1_113_194.9 + 20 * 10, 1_113_194.9 + 120 * 10], [8_399_737.9 - 150 * 10, 8_399_737.9 - 50 * 10]
    lons, lats = transform("EPSG:3857", "EPSG:4326", xs, ys)
    polygon = box(lons[0], lats[0], lons[1], lats[1])
    stats = class_areas(str(path), mapping(polygon), TABLE, 10**6)
    assert stats.pixels == 100 * 100
    assert stats.hectares == pytest.approx(aoi_area_m2(polygon) / 10_000, rel=1e-3)
    assert stats.pixel_area_m2 == pytest.approx(25.1, rel=0.01)  # 100 m² x cos²(60°)
    by_class = {c.value: c for c in stats.classes}
    assert (by_class[1].pixels, by_class[2].pixels) == (100 * 80, 100 * 20)


def test_feet_and_degrees_give_square_metres(tmp_path: Path) -> None:
    feet = _map(tmp_path, "EPSG:2263", 1_000_000.0, 200_000.0, 30.0)  # New York State Plane, US feet
    everything = mapping(box(-80, 35, -70, 45))
    stats = class_areas(str(feet), everything, TABLE, 10**6)
    assert stats.pixels == SIZE * SIZE
    assert stats.pixel_area_m2 == pytest.approx((30 * 0.3048006) ** 2, rel=1e-3)
    degrees = _map(tmp_path, "EPSG:4326", 10.0, 60.0, 0.001)
    stats = class_areas(str(degrees), mapping(box(9, 50, 12, 61)), TABLE, 10**6)
    map_box = box(10.0, 60.0 - SIZE * 0.001, 10.0 + SIZE * 0.001, 60.0 - 10 * 0.001)  # without nodata rows
    assert stats.hectares == pytest.approx(aoi_area_m2(map_box) / 10_000, rel=1e-4)


def test_a_polygon_far_larger_than_the_map_counts_all_of_it(tmp_path: Path) -> None:
    """A pole-to-pole strip cannot be reprojected whole into a UTM zone: its part near the map can."""
    path = _map(tmp_path, "EPSG:32654", 400_000.0, 4_000_000.0, 10.0)  # near 141° E, 36° N
    for polygon in (box(139, -90, 143, 90), box(-170, -80, 170, 80), box(-60, 0, 179, 80)):
        stats = class_areas(str(path), mapping(polygon), TABLE, 10**6)
        assert stats.pixels == SIZE * SIZE, polygon.bounds
        assert stats.nodata_pixels == 10 * SIZE
    far = class_areas(str(path), mapping(box(0, 0, 1, 1)), TABLE, 10**6)
    assert far.pixels == 0
    assert far.hectares == 0


def test_a_run_whose_aoa_file_is_gone_still_gets_its_class_areas(tmp_path: Path) -> None:
    path = _map(tmp_path, "EPSG:32654", 400_000.0, 4_000_000.0, 10.0)
    everything = mapping(box(139, 30, 143, 40))
    gone = AoaLayer(str(tmp_path / "aoa.tif"), 1.0)
    stats = class_areas(str(path), everything, TABLE, 10**6, gone)
    assert stats.pixels == SIZE * SIZE
    assert stats.aoa_fraction is None
    assert stats.aoa_threshold is None
    di = np.full((SIZE, SIZE), 50, dtype=np.uint8)
    di[:, :50] = 200  # a quarter outside a threshold of 1.0 (DI x 100 = 100)
    write_cog(
        tmp_path / "aoa.tif",
        di,
        crs="EPSG:32654",
        transform=from_origin(400_000, 4_000_000, 10, 10),
        nodata=255,
    )
    stats = class_areas(str(path), everything, TABLE, 10**6, gone)
    assert stats.aoa_fraction == pytest.approx(0.75)
    assert stats.aoa_threshold == 1.0
