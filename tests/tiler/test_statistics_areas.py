"""``POST /statistics``'s class areas on maps in any CRS and for polygons of any size (``tiler.areas``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from rasterio.transform import from_origin
from rasterio.warp import transform
from shapely.geometry import box, mapping

from lulc.aoi import aoi_area_m2
from lulc.classes import ClassTable
from lulc.cog import write_cog
from tests.tiler.conftest import Runs
from tiler.app import create_app
from tiler.areas import AoaLayer, class_areas
from tiler.errors import BadParameterError
from tiler.settings import TilerSettings

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


def test_maps_of_wider_integers_and_floats_count_their_classes(tmp_path: Path) -> None:
    """Review: a UInt16 map with values over 255, or a float32 map, made POST /statistics a 500.

    A float map's whole numbers are its classes (R's FLT4S, Earth Engine exports); other values are none.
    """
    data = np.ones((SIZE, SIZE), dtype=np.uint16)
    data[:, SIZE // 2 :] = 2
    data[:10] = 65535  # nodata
    data[10:20, :50] = 300  # no class of the table: counted inside the polygon, in no class
    path = write_cog(
        tmp_path / "u16.tif",
        data,
        crs="EPSG:32654",
        transform=from_origin(400_000, 4_000_000, 10, 10),
        nodata=65535,
    )
    everything = mapping(box(139, 30, 143, 40))
    stats = class_areas(str(path), everything, TABLE, 10**6)
    assert stats.pixels == SIZE * SIZE
    assert stats.nodata_pixels == 10 * SIZE
    by_class = {c.value: c.pixels for c in stats.classes}
    assert by_class == {1: (SIZE - 10) * SIZE // 2 - 10 * 50, 2: (SIZE - 10) * SIZE // 2}
    signed = write_cog(
        tmp_path / "i16.tif",
        np.where(data == 300, -255, data.astype(np.int32)).astype(np.int16),
        crs="EPSG:32654",
        transform=from_origin(400_000, 4_000_000, 10, 10),
        nodata=-1,
    )
    assert {c.value: c.pixels for c in class_areas(str(signed), everything, TABLE, 10**6).classes} == by_class
    grid = {"crs": "EPSG:32654", "transform": from_origin(400_000, 4_000_000, 10, 10)}
    floats = write_cog(tmp_path / "f32.tif", data.astype(np.float32), nodata=65535, **grid)
    assert {c.value: c.pixels for c in class_areas(str(floats), everything, TABLE, 10**6).classes} == by_class
    halves = data.astype(np.float32) + 0.5
    halves[0, :5] = np.nan
    halved = write_cog(tmp_path / "f32-halves.tif", halves, nodata=None, **grid)
    stats = class_areas(str(halved), everything, TABLE, 10**6)
    assert stats.pixels == SIZE * SIZE
    assert all(c.pixels == 0 for c in stats.classes), "1.5 and NaN are no class"
    waves = write_cog(tmp_path / "c64.tif", data.astype(np.complex64), nodata=None, **grid)
    with pytest.raises(BadParameterError, match="complex64"):
        class_areas(str(waves), everything, TABLE, 10**6)


def _map_and_centre(path: Path) -> tuple[dict[str, Any], tuple[float, float], np.ndarray]:
    """A class map's grid (``crs``, ``transform``), its centre in lon/lat, and its pixels."""
    with rasterio.open(path) as src:
        x, y = src.xy(src.height / 2, src.width / 2)
        lon, lat = transform(src.crs, "EPSG:4326", [x], [y])
        return {"crs": src.crs, "transform": src.transform}, (lon[0], lat[0]), src.read(1)


def test_statistics_over_http_count_a_float_map_and_ignore_a_malformed_aoa_asset(
    tiler_runs: Runs, tmp_path: Path
) -> None:
    """Review: an item whose ``assets.aoa`` is a string made POST /statistics a 500 (AttributeError)."""
    item = json.loads((tiler_runs.main / "item.json").read_text())
    profile, (lon, lat), classes = _map_and_centre(tiler_runs.main / "classes.tif")
    polygon = mapping(box(lon - 0.005, lat - 0.005, lon + 0.005, lat + 0.005))
    variants: dict[str, Any] = {
        "aoa-string": {"aoa": "aoa.tif"},
        "aoa-href-number": {"aoa": {"href": 5}},
        "assets-list": ["classes.tif"],
    }
    for name, change in variants.items():
        folder = tmp_path / name
        shutil.copytree(tiler_runs.main, folder)
        broken = json.loads(json.dumps(item))
        broken["properties"]["lulc:aoa_threshold"] = 1.0
        if isinstance(change, dict):
            broken["assets"].update(change)
        else:
            broken["assets"] = change
        (folder / "item.json").write_text(json.dumps(broken))
    shutil.copytree(tiler_runs.main, tmp_path / "original")
    floats = tmp_path / "floats"
    shutil.copytree(tiler_runs.main, floats)
    write_cog(floats / "classes.tif", classes.astype(np.float32), nodata=255, **profile)
    (tmp_path / "props-string").mkdir()
    shutil.copy(tiler_runs.main / "classes.tif", tmp_path / "props-string")
    (tmp_path / "props-string" / "item.json").write_text(json.dumps({**item, "properties": "x"}))
    settings = TilerSettings(allow=[str(tmp_path)])
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for name in (*variants, "props-string"):
            answer = client.post(
                "/statistics", params={"url": str(tmp_path / name / "classes.tif")}, json=polygon
            )
            # counted (classes from the item or the map's colour table), without the broken AOA
            assert answer.status_code == 200, (name, answer.text)
            assert answer.json()["aoa_fraction"] is None
        counted = client.post("/statistics", params={"url": str(floats / "classes.tif")}, json=polygon)
        assert counted.status_code == 200, counted.text
        original = client.post(
            "/statistics", params={"url": str(tmp_path / "original" / "classes.tif")}, json=polygon
        )
        assert counted.json()["classes"] == original.json()["classes"]


def test_each_period_of_a_series_has_the_figures_of_its_own_map_aoa_included(
    tiler_runs: Runs, tmp_path: Path
) -> None:
    """Review: the series counted without each period's aoa.tif: aoa_threshold and aoa_fraction were null."""
    item = json.loads((tiler_runs.main / "item.json").read_text())
    profile, (lon, lat), classes = _map_and_centre(tiler_runs.main / "classes.tif")
    rows, cols = np.indices(classes.shape)
    links = []
    for period, source, threshold in (("2021", tiler_runs.main, 1.0), ("2022", tiler_runs.second, 0.8)):
        folder = tmp_path / period
        folder.mkdir()
        shutil.copy(source / "classes.tif", folder / "classes.tif")
        di = ((rows + cols * (2 if period == "2022" else 1)) % 200).astype(np.uint8)
        write_cog(folder / "aoa.tif", di, nodata=255, **profile)
        period_item = json.loads(json.dumps(item))
        period_item["id"] = f"lulc-{period}"
        period_item["properties"]["lulc:aoa_threshold"] = threshold
        period_item["assets"]["aoa"] = {"href": "./aoa.tif", "type": "image/tiff", "roles": ["data"]}
        (folder / "item.json").write_text(json.dumps(period_item))
        links.append({"rel": "item", "href": f"./{period}/item.json", "lulc:period": period})
    collection = {"type": "Collection", "id": "s", "links": links, "summaries": {"lulc:every": ["year"]}}
    (tmp_path / "collection.json").write_text(json.dumps(collection))
    polygon = mapping(box(lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01))
    with TestClient(
        create_app(TilerSettings(allow=[str(tmp_path)])), raise_server_exceptions=False
    ) as client:
        series = client.post(
            "/statistics/series", params={"url": str(tmp_path / "collection.json")}, json=polygon
        )
        assert series.status_code == 200, series.text
        periods = series.json()["periods"]
        assert [p["period"] for p in periods] == ["2021", "2022"]
        fractions = []
        for period in periods:
            own = client.post(
                "/statistics", params={"url": str(tmp_path / period["period"] / "classes.tif")}, json=polygon
            )
            assert own.status_code == 200, own.text
            expected = {k: v for k, v in own.json().items() if k != "url"}
            assert expected["aoa_threshold"] == {"2021": 1.0, "2022": 0.8}[period["period"]]
            assert 0 < expected["aoa_fraction"] < 1
            assert {k: v for k, v in period["statistics"].items() if k != "url"} == expected, period["period"]
            fractions.append(expected["aoa_fraction"])
        assert fractions[0] != fractions[1]


def test_a_series_of_more_periods_than_the_limit_is_413_before_any_is_read(tmp_path: Path) -> None:
    """Review: a collection of 1,000 links to one map was counted 1,000 times (24 s): nothing bounded it."""
    links = [{"rel": "item", "href": f"./{year}/item.json", "lulc:period": str(year)} for year in range(3)]
    (tmp_path / "collection.json").write_text(json.dumps({"type": "Collection", "id": "s", "links": links}))
    polygon = mapping(box(10.0, 45.0, 10.01, 45.01))
    url = str(tmp_path / "collection.json")
    with TestClient(
        create_app(TilerSettings(allow=[str(tmp_path)], max_series_periods=2)), raise_server_exceptions=False
    ) as client:
        refused = client.post("/statistics/series", params={"url": url}, json=polygon)
        assert refused.status_code == 413, refused.text
        assert "3 items" in refused.json()["detail"]
    with TestClient(
        create_app(TilerSettings(allow=[str(tmp_path)], max_series_periods=3)), raise_server_exceptions=False
    ) as client:  # within the limit: its items are read (and are missing here)
        assert client.post("/statistics/series", params={"url": url}, json=polygon).status_code == 404
