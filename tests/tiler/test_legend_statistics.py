"""The legend (JSON and PNG) and class areas for a polygon, checked against the class table and own counts."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from pyproj import Geod
from rasterio.features import geometry_mask
from rasterio.warp import transform
from shapely.geometry import shape

from lulc.classes import NODATA
from lulc.grid import reproject_geometry
from tests.tiler.conftest import Runs, class_colours, decode_png, get, post


def test_legend_json_matches_the_class_table(tiler_url: str, tiler_runs: Runs) -> None:
    response = get(f"{tiler_url}/legend", params={"url": str(tiler_runs.main / "classes.tif")}, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "stac"
    assert body["nodata"] == NODATA
    assert [(c["value"], c["name"], c["color"]) for c in body["classes"]] == [
        (c.value, c.name, c.color) for c in tiler_runs.table.classes
    ]


def test_legend_from_the_colour_table_when_there_is_no_item(
    tiler_url: str, tiler_runs: Runs, tmp_path
) -> None:
    # a map copied without its item.json: the legend falls back to the GDAL colour table
    target = tiler_runs.root / "2024" / "alone"
    target.mkdir(exist_ok=True)
    (target / "map.tif").write_bytes((tiler_runs.main / "classes.tif").read_bytes())
    body = get(f"{tiler_url}/legend", params={"url": str(target / "map.tif")}).json()
    assert body["source"] == "colortable"
    assert [(c["value"], c["color"]) for c in body["classes"]] == [
        (c.value, c.color) for c in tiler_runs.table.classes
    ]


def test_legend_png_shows_every_class_colour(tiler_url: str, tiler_runs: Runs) -> None:
    response = get(
        f"{tiler_url}/legend",
        params={"url": str(tiler_runs.main / "classes.tif"), "format": "png"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    rgba = decode_png(response.content)
    colours = {tuple(int(v) for v in c) for c in np.unique(rgba[..., :3].reshape(-1, 3), axis=0)}
    assert class_colours(tiler_runs.table) <= colours
    for entry in tiler_runs.table.classes:  # a swatch, not a stray pixel
        assert (rgba[..., :3] == entry.rgba[:3]).all(axis=-1).sum() >= 100


def _polygon_around_centre(path: str) -> dict:
    """A pentagon (EPSG:4326) over the middle of the map, not aligned with pixels."""
    with rasterio.open(path) as src:
        cx, cy = src.xy(src.height * 0.55, src.width * 0.45)
        r = min(src.width, src.height) * src.res[0] * 0.3
        angles = np.linspace(0, 2 * np.pi, 6)[:-1] + 0.3
        xs = [cx + r * np.cos(a) for a in angles]
        ys = [cy + r * np.sin(a) * 0.8 for a in angles]
        lons, lats = transform(src.crs, "EPSG:4326", xs, ys)
    ring = [[lon, lat] for lon, lat in zip(lons, lats, strict=True)]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def test_statistics_counts_and_hectares_match_own_pixel_count(tiler_url: str, tiler_runs: Runs) -> None:
    path = str(tiler_runs.main / "classes.tif")
    polygon = _polygon_around_centre(path)
    response = post(
        f"{tiler_url}/statistics",
        params={"url": path},
        json={"type": "Feature", "properties": {}, "geometry": polygon},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    with rasterio.open(path) as src:
        data = src.read(1)
        # the polygon's lon/lat edges followed into the map's CRS (densified), as every AOI is reprojected
        native = reproject_geometry(shape(polygon), "EPSG:4326", src.crs.to_string())
        inside = ~geometry_mask([native], out_shape=data.shape, transform=src.transform)
        # a pixel's true ground area, the geodesic area of its corners in lon/lat (the map is small: one
        # value for all); UTM's scale factor makes it differ from the nominal res² by 0.06 % here
        row, col = data.shape[0] // 2, data.shape[1] // 2
        corners = [src.xy(row + dr, col + dc, offset="ul") for dr, dc in ((0, 0), (0, 1), (1, 1), (1, 0))]
        lons, lats = transform(src.crs, "EPSG:4326", [x for x, _ in corners], [y for _, y in corners])
        pixel_area = abs(Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)[0])
        assert abs(pixel_area / abs(src.res[0] * src.res[1]) - 1) > 1e-4
    assert body["pixels"] == int(inside.sum())
    counts = {c["value"]: c["pixels"] for c in body["classes"]}
    for entry in tiler_runs.table.classes:
        own = int((inside & (data == entry.value)).sum())
        assert counts[entry.value] == own, entry.name
        hectares = next(c["hectares"] for c in body["classes"] if c["value"] == entry.value)
        assert hectares == pytest.approx(own * pixel_area / 10_000, rel=1e-5, abs=1e-6)
    assert sum(1 for n in counts.values() if n) >= 2
    assert abs(sum(c["percent"] for c in body["classes"]) - 100) < 0.01


def test_statistics_counts_nodata_apart(tiler_url: str, tiler_runs: Runs) -> None:
    path = str(tiler_runs.main / "classes.tif")
    with rasterio.open(path) as src:
        data = src.read(1)
        left, top = src.xy(0, 0, offset="ul")
        right, bottom = src.xy(data.shape[0] // 8, data.shape[1] // 2, offset="ul")
        lons, lats = transform(src.crs, "EPSG:4326", [left, right], [top, bottom])
    box = {
        "type": "Polygon",
        "coordinates": [
            [
                [lons[0], lats[0]],
                [lons[1], lats[0]],
                [lons[1], lats[1]],
                [lons[0], lats[1]],
                [lons[0], lats[0]],
            ]
        ],
    }
    body = post(f"{tiler_url}/statistics", params={"url": path}, json=box).json()
    assert body["nodata_pixels"] > 0
    assert body["pixels"] == body["nodata_pixels"] + sum(c["pixels"] for c in body["classes"])


def test_feature_collection_is_the_union_of_its_polygons(tiler_url: str, tiler_runs: Runs) -> None:
    path = str(tiler_runs.main / "classes.tif")
    polygon = _polygon_around_centre(path)
    single = post(f"{tiler_url}/statistics", params={"url": path}, json=polygon).json()
    twice = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": polygon}] * 2,
    }
    union = post(f"{tiler_url}/statistics", params={"url": path}, json=twice).json()
    assert union["classes"] == single["classes"]


def test_confidence_cog_beside_the_map_gets_no_class_legend(tiler_url: str, tiler_runs: Runs) -> None:
    response = get(f"{tiler_url}/legend", params={"url": str(tiler_runs.main / "confidence.tif")})
    assert response.status_code == 404, "its item asset has no classes and the COG has no colour table"
    assert "no class table" in response.json()["detail"]
