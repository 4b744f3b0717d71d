"""Bad input gets JSON errors with the right status: 403 outside the allow-list, 404, 400; never a 500."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.support.http_server import ServerHandle
from tests.tiler.conftest import Runs, World, get, post


def _json_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["detail"]
    return body


@pytest.mark.parametrize(
    "url",
    [
        "/etc/passwd",
        "file:///etc/passwd",
        "/vsicurl/http://127.0.0.1:1/x.tif",
        "ftp://example.com/x.tif",
        "http://example.com/classes.tif",
    ],
)
def test_urls_outside_the_allow_list_get_403(tiler_url: str, inside_tile: str, url: str) -> None:
    for path in (inside_tile, "/cog/info", "/legend", "/stac/info"):
        body = _json_error(get(f"{tiler_url}{path}", params={"url": url}), 403)
        assert "allow" in body["detail"] or "not allowed" in body["detail"]


def test_traversal_symlinks_and_prefix_lookalikes_get_403(
    tiler_url: str, tiler_runs: Runs, runs_http: ServerHandle, tmp_path
) -> None:
    secret = tmp_path / "secret.tif"
    secret.write_bytes((tiler_runs.main / "classes.tif").read_bytes())
    link = tiler_runs.root / "2024" / "link.tif"
    if not link.exists():
        os.symlink(secret, link)
    dotdot = f"{tiler_runs.root}/2024/../../{tmp_path.name}/secret.tif"
    for url in (str(secret), str(link), dotdot):
        _json_error(get(f"{tiler_url}/cog/info", params={"url": url}), 403)
    # http prefix: only /2024/ of the runs server is allowed, by whole path segments
    for url in (
        f"{runs_http.base_url}/2023/second/classes.tif",
        f"{runs_http.base_url}/2024/../2023/second/classes.tif",
        f"{runs_http.base_url}/2024%2F..%2F2023/second/classes.tif",
        f"{runs_http.base_url}/2024x/classes.tif",
        f"http://user@{runs_http.base_url[7:]}/2024/main/classes.tif",
    ):
        _json_error(get(f"{tiler_url}/cog/info", params={"url": url}), 403)
    ok = get(f"{tiler_url}/cog/info", params={"url": runs_http.url(tiler_runs.main / "classes.tif")})
    assert ok.status_code == 200


def test_stac_assets_outside_the_allow_list_get_403(
    tiler_url: str, tiler_runs: Runs, inside_tile: str
) -> None:
    item = json.loads((tiler_runs.main / "item.json").read_text())
    item["assets"]["classes"]["href"] = "/etc/passwd.tif"
    path = tiler_runs.root / "2024" / "evil-item.json"
    path.write_text(json.dumps(item))
    body = _json_error(
        get(
            f"{tiler_url}/stac{inside_tile[4:]}",
            params={"url": str(path), "assets": "classes"},
            timeout=10,
        ),
        403,
    )
    assert "passwd" in body["detail"]


def test_tile_outside_bounds_is_404(tiler_url: str, tiler_runs: Runs) -> None:
    path = str(tiler_runs.main / "classes.tif")
    _json_error(get(f"{tiler_url}/cog/tiles/WebMercatorQuad/14/0/0.png", params={"url": path}), 404)
    _json_error(get(f"{tiler_url}/cog/point/0,0", params={"url": path}), 404)


def test_missing_and_non_raster_files(
    tiler_url: str, tiler_runs: Runs, tiler_world: World, inside_tile: str
) -> None:
    missing = str(tiler_runs.root / "2024" / "nope.tif")
    _json_error(get(f"{tiler_url}{inside_tile}", params={"url": missing}), 404)
    # HTTP review: a relative path was answered with the server's absolute path
    relative = os.path.relpath(missing)
    detail = _json_error(get(f"{tiler_url}/cog/info", params={"url": relative}), 404)["detail"]
    assert detail.startswith(f"dataset not found: {relative}: "), detail
    for not_raster in (tiler_runs.root / "not-a-run" / "classes.tif", tiler_world.root / "classes.yaml"):
        body = _json_error(get(f"{tiler_url}{inside_tile}", params={"url": str(not_raster)}), 400)
        assert "raster" in body["detail"]
    # a raster given to the STAC endpoint, and a JSON file that is not a STAC item
    # (with `assets`: without it the 400 was the missing parameter's, whatever the file)
    for not_item in (tiler_runs.main / "classes.tif", tiler_world.root / "catalog.json"):
        answer = get(f"{tiler_url}/stac/info", params={"url": str(not_item), "assets": "classes"})
        assert "is not a STAC item" in _json_error(answer, 400)["detail"]
    # a GeoJSON Feature that is not STAC: pystac's STACTypeError is no STACError, and it was a 500 (written
    # beside the runs, not in the shared demo world, whose every JSON document a demo test validates)
    feature = tiler_runs.root / "2024" / "feature-not-stac.json"
    feature.write_text(json.dumps({"type": "Feature", "geometry": None, "properties": {}}))
    answer = get(f"{tiler_url}/stac/info", params={"url": str(feature), "assets": "classes"})
    assert "is not a STAC item" in _json_error(answer, 400)["detail"]
    _json_error(get(f"{tiler_url}/legend", params={"url": missing}), 404)
    # review: a folder where a document should be was a 500 (IsADirectoryError)
    folder = str(tiler_world.root)
    _json_error(get(f"{tiler_url}/backdrop", params={"url": folder}), 404)
    polygon = {"type": "Polygon", "coordinates": [[[1, 2], [3, 2], [3, 4], [1, 2]]]}
    _json_error(post(f"{tiler_url}/statistics/series", params={"url": folder}, json=polygon), 404)


def test_remote_missing_and_non_raster(
    tiler_url: str, runs_http: ServerHandle, tiler_runs: Runs, inside_tile: str
) -> None:
    _json_error(
        get(f"{tiler_url}{inside_tile}", params={"url": f"{runs_http.base_url}/2024/main/none.tif"}), 404
    )
    item_url = runs_http.url(tiler_runs.main / "item.json")
    response = get(f"{tiler_url}{inside_tile}", params={"url": item_url})
    assert response.status_code in (400, 404), response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/cog/tiles/WebMercatorQuad/abc/1/2.png", {}),
        ("/cog/tiles/NoSuchTMS/14/1/2.png", {}),
        ("TILE", {"colormap_name": "no_such_map"}),
        ("TILE", {"colormap": "{not json"}),
        ("TILE", {"bidx": "x"}),
        ("TILE", {"expression": "b1 +* (("}),
        ("/legend", {"format": "gif"}),
        ("/cog/tiles/WebMercatorQuad/-1/0/0.png", {}),
        ("/cog/tiles/WebMercatorQuad/99/0/0.png", {}),
        ("/cog/tiles/WebMercatorQuad/2/4/1.png", {}),
        ("TILE", {"tilesize": "100000"}),
        ("TILE", {"buffer": "5000"}),
        ("TILE", {"padding": "10000"}),  # HTTP review: 1.6 GB for one tile of a map in the grid's CRS
        ("TILE", {"padding": "10000.0"}),  # review: the limits read only "10000", the route "10000.0" too
        ("TILE", {"tilesize": "4096.0"}),
        # HTTP review: formulas and algorithms for three bands on a one-band map were 500s
        ("TILE", {"color_formula": "gamma rgb 1.5"}),
        ("TILE", {"color_formula": "sigmoidal rgb 10 0.5"}),
        ("TILE", {"color_formula": "saturation 1.5"}),
        ("TILE", {"algorithm": "normalizedIndex"}),
        # HTTP review: a list colormap not of [[min, max], colour] pairs was a TypeError, 500
        ("TILE", {"colormap": "[1]"}),
        ("TILE", {"colormap": "[[1, 2]]"}),
    ],
)
def test_bad_parameters_are_400(
    tiler_url: str, tiler_runs: Runs, inside_tile: str, path: str, params: dict
) -> None:
    path = inside_tile if path == "TILE" else path
    query = {"url": str(tiler_runs.main / "classes.tif"), **params}
    _json_error(get(f"{tiler_url}{path}", params=query), 400)
    _json_error(get(f"{tiler_url}/cog/info"), 400)  # url missing


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'"a string"',
        b'{"type": "Point", "coordinates": [140, 36]}',
        # a self-intersecting bow tie
        b'{"type": "Polygon", "coordinates": [[[140.0, 36.0], [140.01, 36.01], [140.0, 36.01], '
        b"[140.01, 36.0], [140.0, 36.0]]]}",
        b'{"type": "Polygon", "coordinates": [[[140.0, 36.0]]]}',
        b'{"type": "Polygon", "coordinates": "nope"}',
        b'{"type": "Feature", "geometry": null, "properties": {}}',
        b'{"type": "FeatureCollection", "features": []}',
        b'{"type": "Polygon", "coordinates": [[[400, 36], [401, 36], [401, 37], [400, 36]]]}',
    ],
)
def test_malformed_polygons_are_400(tiler_url: str, tiler_runs: Runs, body: bytes) -> None:
    response = post(
        f"{tiler_url}/statistics",
        params={"url": str(tiler_runs.main / "classes.tif")},
        content=body,
        headers={"content-type": "application/json"},
    )
    _json_error(response, 400)


def test_unbounded_reads_are_not_offered(tiler_url: str, tiler_runs: Runs) -> None:
    """No /bbox or /feature image endpoints, and TiTiler's polygon statistics read a bounded image."""
    path = str(tiler_runs.main / "classes.tif")
    assert get(f"{tiler_url}/cog/bbox/1,2,3,4.png", params={"url": path}).status_code == 404
    far = {"type": "Polygon", "coordinates": [[[1, 2], [3, 2], [3, 4], [1, 2]]]}
    feature = {"type": "Feature", "properties": {}, "geometry": far}
    response = post(f"{tiler_url}/cog/statistics", params={"url": path, "max_size": "99999"}, json=feature)
    _json_error(response, 400)
    # HTTP review: cover_scale=200 on a 256 px image rasterised 2 GB of coverage cells
    for params in (
        {"cover_scale": "200", "max_size": "256"},
        {"cover_scale": "200.0", "max_size": "256"},
        {"cover_scale": "2e2", "max_size": "256.0"},
        {"cover_scale": "12"},
        {"cover_scale": "40", "width": "600", "height": "600"},
    ):
        response = post(f"{tiler_url}/cog/statistics", params={"url": path, **params}, json=feature)
        assert "(max_coverage_pixels)" in _json_error(response, 400)["detail"], params
    fine = post(
        f"{tiler_url}/cog/statistics",
        params={"url": path, "cover_scale": "38", "max_size": "600"},
        json=feature,
    )
    assert "max_coverage_pixels" not in fine.text, fine.text


def test_an_upstream_failure_is_not_remembered(
    tiler_url: str, runs_http: ServerHandle, tiler_runs: Runs, inside_tile: str
) -> None:
    """A 502 while the server fails; once it recovers the next request reads again: no cached failure."""
    url = runs_http.url(tiler_runs.main / "classes.tif") + "?upstream-failure-test"
    runs_http.set_failure(1, "503")
    try:
        failed = get(f"{tiler_url}{inside_tile}", params={"url": url})
    finally:
        runs_http.set_failure(None)
    _json_error(failed, 502)
    recovered = get(f"{tiler_url}{inside_tile}", params={"url": url})
    assert recovered.status_code == 200, recovered.text
    assert recovered.headers["content-type"] == "image/png"


def test_an_upstream_failure_is_502_on_every_route_that_reads(
    tiler_url: str, runs_http: ServerHandle, tiler_runs: Runs
) -> None:
    """HTTP review: the legend, class areas, backdrop and series answered a server's 500 with 404."""
    classes = runs_http.url(tiler_runs.main / "classes.tif") + "?upstream-failure-everywhere"
    item = runs_http.url(tiler_runs.main / "item.json") + "?upstream-failure-everywhere"
    polygon = {"type": "Polygon", "coordinates": [[[1, 2], [3, 2], [3, 4], [1, 2]]]}
    runs_http.set_failure(1, "503")
    try:
        answers = {
            "legend": get(f"{tiler_url}/legend", params={"url": classes}),
            "statistics": post(f"{tiler_url}/statistics", params={"url": classes}, json=polygon),
            "backdrop": get(f"{tiler_url}/backdrop", params={"url": item}),
            "series": post(f"{tiler_url}/statistics/series", params={"url": item}, json=polygon),
        }
    finally:
        runs_http.set_failure(None)
    for route, answer in answers.items():
        assert answer.status_code == 502, (route, answer.text)


def test_a_source_that_is_down_is_502_and_one_that_cannot_be_used_400() -> None:
    """The caller named the item: unusable, it is their mistake (400); its server down is not (502)."""
    from lulc.errors import SourceError, SourceUnavailableError, UpstreamError
    from lulc.http_status import status_for
    from tiler.errors import STATUS_BY_ERROR

    assert status_for(SourceError("catalog x is not JSON"), STATUS_BY_ERROR) == 400
    assert status_for(SourceUnavailableError("catalog x answered HTTP 503"), STATUS_BY_ERROR) == 502
    assert status_for(UpstreamError("fetching STAC item x failed: HTTP 500"), STATUS_BY_ERROR) == 502


def test_a_host_that_never_answers_is_a_502_in_seconds_not_minutes(inside_tile: str) -> None:
    """HTTP review: GDAL's batch settings (60 s a request, 5 retries) held such a tile for over 6 minutes."""
    from tests.support.serve import BackgroundServer
    from tiler.app import create_app
    from tiler.settings import TilerSettings

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections are queued by the kernel and never read
        base = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        settings = TilerSettings(allow=[base], upstream_timeout_seconds=1)
        with BackgroundServer(create_app(settings)) as server:
            for path, extra in (
                ("/cog/info", {}),
                (inside_tile, {}),
                ("/aoa/point/1,2", {"threshold": "0.5"}),
            ):
                started = time.monotonic()
                answer = httpx.get(
                    f"{server.url}{path}", params={"url": f"{base}map.tif", **extra}, timeout=60
                )
                _json_error(answer, 502)
                # a redirect probe, a read of the item beside the map, GDAL's read tried twice: 1 s each
                assert time.monotonic() - started < 8, path


def test_files_a_request_leads_to_are_named_by_the_folders_as_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers name the files a request led to relative to the tiler's folders, as the operator set them.

    HTTP review: ``_as_given`` rewrote the ``url`` parameter only: a series' item was named by the server's
    absolute path (``series item /srv/tiler/runs/series/2099/item.json ...``).
    """
    from fastapi.testclient import TestClient

    from tiler.app import create_app
    from tiler.settings import TilerSettings

    monkeypatch.chdir(tmp_path)
    series = tmp_path / "runs" / "series"
    series.mkdir(parents=True)
    collection = {"type": "Collection", "links": [{"rel": "item", "href": "./2099/item.json"}]}
    (series / "collection.json").write_text(json.dumps(collection))
    (series / "2099").mkdir()
    (series / "2099" / "item.json").write_text(json.dumps({"type": "Feature", "assets": {}}))
    client = TestClient(create_app(TilerSettings(allow=["runs"])), raise_server_exceptions=False)
    polygon = {"type": "Polygon", "coordinates": [[[1, 2], [3, 2], [3, 4], [1, 2]]]}
    answer = client.post("/statistics/series", params={"url": "runs/series/collection.json"}, json=polygon)
    detail = _json_error(answer, 400)["detail"]
    assert detail == "series item runs/series/2099/item.json has no classes asset"
    assert str(tmp_path) not in answer.text
