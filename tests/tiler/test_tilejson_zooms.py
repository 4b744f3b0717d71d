"""TileJSON's zoom range for class maps: every zoom a tile is really served at, not minzoom = maxzoom."""

from __future__ import annotations

from pathlib import Path

import morecantile
import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds

from lulc.cog import write_cog
from tests.tiler.conftest import decode_png
from tiler.app import create_app
from tiler.settings import TilerSettings


def _map(path: Path, size: int) -> Path:
    """A class map of ``size`` x ``size`` 10 m pixels in UTM 54N, written as the service's COGs are."""
    data = (np.indices((size, size)).sum(axis=0) // 40 % 5 + 1).astype(np.uint8)
    return write_cog(
        path, data, crs="EPSG:32654", transform=from_origin(400_000, 3_990_000, 10, 10), nodata=255
    )


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, Path]:
    root = tmp_path_factory.mktemp("zooms")
    return TestClient(create_app(TilerSettings(allow=[str(root)]))), root


def test_a_small_map_has_every_zoom_below_its_native_one(client: tuple[TestClient, Path]) -> None:
    """A 226 px map (no overviews) said minzoom = maxzoom = 14: nothing showed when zoomed out."""
    app, root = client
    path = _map(root / "small.tif", 226)
    with rasterio.open(path) as src:
        assert src.overviews(1) == []
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    tilejson = app.get("/cog/WebMercatorQuad/tilejson.json", params={"url": str(path)}).json()
    assert tilejson["maxzoom"] == 14
    assert tilejson["minzoom"] == 0
    # and a tile well below the native zoom is drawn: the map is there, a few pixels wide
    tile = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, 10)
    response = app.get(f"/cog/tiles/WebMercatorQuad/10/{tile.x}/{tile.y}.png", params={"url": str(path)})
    assert response.status_code == 200
    assert (decode_png(response.content)[..., 3] > 0).sum() > 4


def test_a_large_map_without_overviews_keeps_the_derived_minzoom(client: tuple[TestClient, Path]) -> None:
    """Reading 1,100 px whole for every low-zoom tile is not cheap: rio-tiler's minzoom stays."""
    app, root = client
    path = root / "large.tif"
    data = np.ones((1100, 1100), dtype=np.uint8)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=1100,
        height=1100,
        count=1,
        dtype="uint8",
        crs="EPSG:32654",
        transform=from_origin(400_000, 3_990_000, 10, 10),
        nodata=255,
        tiled=True,
        blockxsize=256,
        blockysize=256,
    ) as dst:
        dst.write(data, 1)
    tilejson = app.get("/cog/WebMercatorQuad/tilejson.json", params={"url": str(path)}).json()
    assert 0 < tilejson["minzoom"] < tilejson["maxzoom"] == 14
