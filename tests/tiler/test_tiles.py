"""Class tiles over real HTTP: only class colours plus transparency, at full resolution and from overviews."""

from __future__ import annotations

import httpx
import morecantile
import numpy as np
import pytest
import rasterio
from rasterio.warp import transform

from lulc.classes import NODATA
from tests.support.http_server import ServerHandle
from tests.support.serve import BackgroundServer
from tests.tiler.conftest import CACHE_CONTROL, CORS_ORIGIN, Runs, class_colours, decode_png, get
from tiler.colormaps import colormap_name

TMS = morecantile.tms.get("WebMercatorQuad")


def _lonlat(path: str, row: float, col: float) -> tuple[float, float]:
    with rasterio.open(path) as src:
        x, y = src.xy(row, col)
        lon, lat = transform(src.crs, "EPSG:4326", [x], [y])
    return lon[0], lat[0]


def _tile(tiler_url: str, url: str, z: int, lonlat: tuple[float, float], **params: str) -> httpx.Response:
    tile = TMS.tile(lonlat[0], lonlat[1], z)
    return get(
        f"{tiler_url}/cog/tiles/WebMercatorQuad/{z}/{tile.x}/{tile.y}.png",
        params={"url": url, **params},
    )


def _check_only_class_colours(rgba: np.ndarray, runs: Runs) -> set[tuple[int, int, int]]:
    alpha = rgba[..., 3]
    assert set(np.unique(alpha).tolist()) <= {0, 255}, "partially transparent pixels: blended edges"
    opaque = rgba[alpha == 255][:, :3]
    seen = {tuple(int(v) for v in c) for c in np.unique(opaque, axis=0)}
    assert seen <= class_colours(runs.table), (
        f"colours not in the class table: {seen - class_colours(runs.table)}"
    )
    return seen


def test_z14_tile_has_only_class_colours_and_transparent_nodata(tiler_url: str, tiler_runs: Runs) -> None:
    path = str(tiler_runs.main / "classes.tif")
    height, width = tiler_runs.classes.shape
    strip = height // 16
    # a tile straddling the nodata strip's lower edge, in the middle of the map
    response = _tile(tiler_url, path, 14, _lonlat(path, strip, width / 2))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    rgba = decode_png(response.content)
    seen = _check_only_class_colours(rgba, tiler_runs)
    assert len(seen) >= 2, "the demo map has spatial structure: a z14 tile shows several classes"
    assert (rgba[..., 3] == 0).any(), "the nodata strip is transparent"
    # the colours are the classes of the map under each pixel: compare the share of each class
    expected_classes = set(np.unique(tiler_runs.classes[strip : strip + 300]).tolist()) - {NODATA}
    expected = {tiler_runs.table.by_value(v).rgba[:3] for v in expected_classes}
    assert seen <= expected


def test_low_zoom_tile_from_overviews_has_no_blended_colours(tiler_url: str, tiler_runs: Runs) -> None:
    path = str(tiler_runs.main / "classes.tif")
    with rasterio.open(path) as src:
        assert src.overviews(1), "the demo map has internal overviews"
        z = TMS.zoom_for_res(src.res[0] * 2 ** (len(src.overviews(1))), zoom_level_strategy="lower")
    height, width = tiler_runs.classes.shape
    response = _tile(tiler_url, path, z, _lonlat(path, height / 2, width / 2))
    assert response.status_code == 200, response.text
    rgba = decode_png(response.content)
    seen = _check_only_class_colours(rgba, tiler_runs)
    present = set(np.unique(tiler_runs.classes).tolist()) - {NODATA}
    assert len(seen) >= min(3, len(present))
    assert (rgba[..., 3] == 0).any(), "outside the map and the nodata strip are transparent"


def test_colours_come_from_the_stac_item_when_the_cog_has_no_colour_table(
    tiler_url: str, tiler_runs: Runs
) -> None:
    path = str(tiler_runs.plain / "classes.tif")
    with rasterio.open(path) as src, pytest.raises(ValueError, match="NULL color table"):
        src.colormap(1)
    height, width = tiler_runs.classes.shape
    response = _tile(tiler_url, path, 14, _lonlat(path, height / 2, width / 2))
    assert response.status_code == 200, response.text
    seen = _check_only_class_colours(decode_png(response.content), tiler_runs)
    assert len(seen) >= 2


def test_named_colormap_matches_the_maps_own_colours(tiler_url: str, tiler_runs: Runs, tiler_world) -> None:
    path = str(tiler_runs.main / "classes.tif")
    height, width = tiler_runs.classes.shape
    lonlat = _lonlat(path, height / 2, width / 2)
    own = _tile(tiler_url, path, 14, lonlat)
    named = _tile(tiler_url, path, 14, lonlat, colormap_name=colormap_name("classes"))
    assert named.status_code == 200, named.text
    assert np.array_equal(decode_png(own.content), decode_png(named.content))
    listed = get(f"{tiler_url}/colorMaps").json()
    assert colormap_name("classes") in str(listed)


def test_remote_cog_over_http_gives_the_same_tile(
    tiler_url: str, tiler_runs: Runs, runs_http: ServerHandle
) -> None:
    path = tiler_runs.main / "classes.tif"
    height, width = tiler_runs.classes.shape
    lonlat = _lonlat(str(path), height / 2, width / 2)
    local = _tile(tiler_url, str(path), 14, lonlat)
    remote = _tile(tiler_url, runs_http.url(path), 14, lonlat)
    assert remote.status_code == 200, remote.text
    assert np.array_equal(decode_png(local.content), decode_png(remote.content))
    # GDAL read the COG with range requests (possibly earlier in the session: vsicurl caches blocks)
    assert any(r.range for r in runs_http.requests.for_path("main/classes.tif"))


def test_tiles_carry_cache_control_and_cors(tiler_url: str, tiler_runs: Runs) -> None:
    path = str(tiler_runs.main / "classes.tif")
    height, width = tiler_runs.classes.shape
    tile = TMS.tile(*_lonlat(path, height / 2, width / 2), 13)
    response = get(
        f"{tiler_url}/cog/tiles/WebMercatorQuad/13/{tile.x}/{tile.y}.png",
        params={"url": path},
        headers={"Origin": CORS_ORIGIN},
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == CACHE_CONTROL
    assert response.headers["access-control-allow-origin"] == CORS_ORIGIN
    other = get(f"{tiler_url}/healthz", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    assert "cache-control" not in other.headers
    error = get(f"{tiler_url}/cog/tiles/WebMercatorQuad/13/0/0.png", params={"url": path})
    assert error.status_code == 404
    assert "cache-control" not in error.headers, "errors are not cached"


def test_bare_titiler_renders_the_same_map_without_class_colours(tiler_url: str, tiler_runs: Runs) -> None:
    """Why the colormap override exists: plain TiTiler applies only a COG's own colour table."""
    from fastapi import FastAPI
    from titiler.core.factory import TilerFactory

    bare = FastAPI()
    bare.include_router(TilerFactory(router_prefix="/cog").router, prefix="/cog")
    path = str(tiler_runs.plain / "classes.tif")
    height, width = tiler_runs.classes.shape
    lonlat = _lonlat(path, height / 2, width / 2)
    with BackgroundServer(bare) as server:
        plain = decode_png(_tile(server.url, path, 14, lonlat).content)
        with_table = decode_png(_tile(server.url, str(tiler_runs.main / "classes.tif"), 14, lonlat).content)
    ours = decode_png(_tile(tiler_url, path, 14, lonlat).content)
    opaque = plain[plain[..., 3] == 255][:, :3]
    assert not (
        {tuple(int(v) for v in c) for c in np.unique(opaque, axis=0)} & class_colours(tiler_runs.table)
    )
    assert np.array_equal(ours, with_table), (
        "our tiler colours the table-less COG exactly like the paletted one"
    )
