"""The tiler's limits and errors over a real uvicorn: sizes, zooms, bodies, token, kept-alive connections."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import rasterio
from pydantic import SecretStr
from rasterio.warp import transform

from tests.support.serve import BackgroundServer
from tests.tiler.conftest import Runs, get, post
from tiler.app import create_app
from tiler.settings import TilerSettings

TOKEN = {"Authorization": "Bearer s3cret"}


@pytest.fixture(scope="module")
def guarded_url(tiler_settings: TilerSettings) -> Iterator[str]:
    """The tiler with a token, a 4 kB body limit, a 20-vertex polygon limit and 3 features at a time."""
    settings = tiler_settings.model_copy(
        update={
            "auth_token": SecretStr("s3cret"),
            "max_body_bytes": 4096,
            "max_aoi_vertices": 20,
            "max_features": 3,
        }
    )
    with BackgroundServer(create_app(settings)) as server:
        yield server.url


@pytest.mark.parametrize(
    ("path", "params", "words"),
    [
        ("/colorMaps/viridis", {"width": 20000, "height": 5000}, "width 20000"),
        ("/colorMaps/viridis", {"width": 401261, "height": 2336, "f": "jp2"}, "width 401261"),
        ("/colorMaps/viridis", {"width": -5, "height": 5}, "width -5"),
        ("/cog/preview.png", {"MAP": 1, "max_size": 100000}, "max_size 100000"),
        ("/cog/preview/5000x10.png", {"MAP": 1}, "width 5000"),
        ("/cog/preview.png", {"MAP": 1, "nodata": 50000000}, "fill_value"),
        ("/cog/preview.png", {"MAP": 1, "expression": "b1/b2"}, "band index 2"),
        ("/cog/statistics", {"MAP": 1, "algorithm": "max", "algorithm_params": "null"}, "mapping"),
        ("/cog/WebMercatorQuad/tilejson.json", {"MAP": 1, "maxzoom": 194364790}, "maxzoom"),
        ("/stac/info", {"ITEM": 1, "assets": ""}, "name"),
    ],
)
def test_parameters_that_do_not_fit_are_400(
    tiler_url: str, tiler_runs: Runs, path: str, params: dict[str, Any], words: str
) -> None:
    if params.pop("MAP", None):
        params["url"] = str(tiler_runs.main / "classes.tif")
    if params.pop("ITEM", None):
        params["url"] = str(tiler_runs.main / "item.json")
    response = get(f"{tiler_url}{path}", params=params)
    assert response.status_code == 400, response.text
    assert words in response.json()["detail"]


def test_within_the_limits_is_answered(tiler_url: str, tiler_runs: Runs) -> None:
    """Controls for the refusals above."""
    assert get(f"{tiler_url}/colorMaps/viridis", params={"width": 256, "height": 20}).status_code == 200
    url = str(tiler_runs.main / "classes.tif")
    preview = get(f"{tiler_url}/cog/preview/64x64.png", params={"url": url})
    assert preview.status_code == 200
    assert preview.headers["content-type"] == "image/png"
    tilejson = get(f"{tiler_url}/cog/WebMercatorQuad/tilejson.json", params={"url": url, "maxzoom": 18})
    assert tilejson.json()["maxzoom"] == 18


def test_the_token_guards_everything_but_health_and_the_web_map(guarded_url: str, tiler_runs: Runs) -> None:
    url = str(tiler_runs.main / "classes.tif")
    for path in ("/cog/info", "/legend", "/docs", "/openapi.json", "/runs"):
        response = get(f"{guarded_url}{path}", params={"url": url})
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"detail": "missing bearer token", "status": 401}
    wrong = get(f"{guarded_url}/cog/info", params={"url": url}, headers={"Authorization": "Bearer nope"})
    assert wrong.json()["detail"] == "wrong bearer token"
    assert get(f"{guarded_url}/cog/info", params={"url": url}, headers=TOKEN).status_code == 200
    for path in ("/healthz", "/map", "/static/map.js"):
        assert get(f"{guarded_url}{path}").status_code == 200, path
    # HTTP review: the public probe listed the server's allowed folders and runs folder
    assert {"allow", "runs_dir"}.isdisjoint(get(f"{guarded_url}/healthz").json())
    schema = get(f"{guarded_url}/openapi.json", headers=TOKEN).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "401" in schema["paths"]["/cog/info"]["get"]["responses"]
    assert "401" not in schema["paths"]["/healthz"]["get"]["responses"]


def _square(n: int) -> dict[str, Any]:
    """A polygon of ``n`` + 1 positions near the demo map."""
    ring = [
        [140.0 + 0.01 * math.cos(2 * math.pi * i / n), 36.0 + 0.01 * math.sin(2 * math.pi * i / n)]
        for i in range(n)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def test_bodies_and_polygons_over_the_limits_are_413(guarded_url: str, tiler_runs: Runs) -> None:
    params = {"url": str(tiler_runs.main / "classes.tif")}
    huge = post(f"{guarded_url}/statistics", params=params, headers=TOKEN, json={"pad": "x" * 5000})
    assert huge.status_code == 413
    assert "4,096 bytes" in huge.json()["detail"]
    many = post(f"{guarded_url}/statistics", params=params, headers=TOKEN, json=_square(30))
    assert many.status_code == 413
    assert "20 vertices" in many.json()["detail"]
    few = post(f"{guarded_url}/statistics", params=params, headers=TOKEN, json=_square(12))
    assert few.status_code == 200, few.text


def _features(n: int, vertices: int = 4) -> dict[str, Any]:
    square = {"type": "Feature", "properties": {}, "geometry": _square(vertices)}
    return {"type": "FeatureCollection", "features": [square] * n}


@pytest.mark.parametrize("factory", ["cog", "stac"])
def test_titilers_statistics_read_a_bounded_number_of_features(
    guarded_url: str, tiler_runs: Runs, factory: str
) -> None:
    """Each feature is one image read: a 4 kB body of tiny features would otherwise cost minutes of CPU."""
    params = {"url": str(tiler_runs.main / ("classes.tif" if factory == "cog" else "item.json"))}
    if factory == "stac":
        params["assets"] = "classes"
    url = f"{guarded_url}/{factory}/statistics"
    many = post(url, params=params, headers=TOKEN, json=_features(4))
    assert many.status_code == 413, many.text
    assert "4 features" in many.json()["detail"]
    complex_ = post(url, params=params, headers=TOKEN, json=_features(1, vertices=30))
    assert complex_.status_code == 413
    assert "20 vertices" in complex_.json()["detail"]
    few = post(url, params=params, headers=TOKEN, json=_features(3))
    assert few.status_code == 200, few.text
    assert len(few.json()["features"]) == 3


@pytest.mark.parametrize(
    ("polygon", "words"),
    [
        ([[[179.5, 0], [-179.5, 0], [-179.5, 1], [179.5, 1], [179.5, 0]]], "antimeridian"),
        ([[[140, 36], [140.01, 36], [140.01, 36.01], [140, 36.01]]], "not closed"),
        ([[[140, 36, 1, 2], [140.01, 36, 1, 2], [140.01, 36.01, 1, 2], [140, 36, 1, 2]]], "got 4 values"),
    ],
)
def test_polygons_are_parsed_by_the_one_aoi_parser(
    tiler_url: str, tiler_runs: Runs, polygon: list[Any], words: str
) -> None:
    response = post(
        f"{tiler_url}/statistics",
        params={"url": str(tiler_runs.main / "classes.tif")},
        json={"type": "Polygon", "coordinates": polygon},
    )
    assert response.status_code == 400, response.text
    assert words in response.json()["detail"]


def test_a_pooled_client_gets_every_error_answered_on_one_connection(
    guarded_url: str, tiler_runs: Runs, inside_tile: str
) -> None:
    url = str(tiler_runs.main / "classes.tif")
    cases = [
        ("/cog/tiles/WebMercatorQuad/14/0/0.png", {"url": url}, TOKEN, 404),
        (inside_tile, {"url": url, "expression": "b1/b2"}, TOKEN, 400),
        ("/cog/info", {"url": "/etc/passwd"}, TOKEN, 403),
        ("/cog/info", {"url": url}, {}, 401),
    ]
    for path, params, headers, status in cases:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        with httpx.Client(base_url=guarded_url, limits=limits, timeout=60) as client:
            answers, ports = [], set()
            for _ in range(20):
                response = client.get(path, params=params, headers=headers)
                answers.append(response.status_code)
                ports.add(response.extensions["network_stream"].get_extra_info("client_addr")[1])
                assert json.loads(response.content)["status"] == status
            assert answers == [status] * 20, path
            assert len(ports) == 1, f"{path}: the connection was dropped and re-opened"


def test_openapi_states_400_not_422(tiler_url: str) -> None:
    schema = get(f"{tiler_url}/openapi.json").json()
    operations = [op for item in schema["paths"].values() for op in item.values()]
    assert not [op for op in operations if "422" in op["responses"]]
    info = schema["paths"]["/cog/info"]["get"]["responses"]
    assert {"200", "400", "403", "404", "500", "502"} <= set(info)
    assert info["400"]["content"]["application/json"]["schema"]["$ref"].endswith("TilerError")
    assert "image/png" in schema["paths"]["/legend"]["get"]["responses"]["200"]["content"]


def test_a_tile_is_checked_against_its_own_tile_matrix_set(tiler_url: str, tiler_runs: Runs) -> None:
    """WorldCRS84Quad has 16 x 8 tiles at zoom 3: 3/8/1 exists there (not outside any map: 404, not 400)."""
    url = str(tiler_runs.main / "classes.tif")

    def status(tms: str, z: int, x: int, y: int) -> tuple[int, str]:
        response = get(f"{tiler_url}/cog/tiles/{tms}/{z}/{x}/{y}.png", params={"url": url})
        return response.status_code, response.json().get("detail", "") if response.status_code != 200 else ""

    assert status("WorldCRS84Quad", 3, 8, 1)[0] in (200, 204, 404)  # the map's own answer, whatever it is
    code, detail = status("WorldCRS84Quad", 3, 16, 1)
    assert code == 400
    assert "16 x 8 tiles" in detail
    assert status("WorldCRS84Quad", 3, 15, 8)[0] == 400
    code, detail = status("WebMercatorQuad", 3, 8, 1)  # the control: a square matrix of 8 x 8
    assert code == 400
    assert "8 x 8 tiles" in detail


def test_a_get_with_a_body_over_the_limit_is_413_as_its_openapi_says(
    guarded_url: str, tiler_runs: Runs
) -> None:
    with httpx.Client(timeout=30) as client:
        answer = client.request(
            "GET",
            f"{guarded_url}/cog/info",
            params={"url": str(tiler_runs.main / "classes.tif")},
            headers=TOKEN,
            content=b"x" * 5000,
        )
        schema = client.get(f"{guarded_url}/openapi.json", headers=TOKEN).json()
    assert answer.status_code == 413
    assert "413" in schema["paths"]["/cog/info"]["get"]["responses"]


NINE_BANDS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("cog", "/cog/preview.tif", [("bidx", "1")] * 9),
    ("cog", "/cog/statistics", [("bidx", "1")] * 9),
    ("cog", "/cog/preview.tif", [("expression", ";".join(["b1"] * 9))]),
    ("cog", "/cog/preview.tif", [("expression", "+".join(f"b{i}" for i in range(1, 10)))]),
    ("stac", "/stac/preview.tif", [("assets", "classes")] * 9),
    ("stac", "/stac/preview.tif", [("assets", "classes|bidx=" + ",".join(["1"] * 9))]),
    ("stac", "/stac/preview.tif", [("assets", "classes|expression=" + ";".join(["b1"] * 9))]),
    ("stac", "/stac/statistics", [("assets", "classes")] * 9),
    ("stac", "/stac/tiles/WebMercatorQuad/14/0/0.png", [("assets", "classes")] * 9),
]


@pytest.mark.parametrize(("factory", "path", "params"), NINE_BANDS)
def test_more_bands_than_the_limit_are_refused_before_any_read(
    tiler_url: str, tiler_runs: Runs, factory: str, path: str, params: list[tuple[str, str]]
) -> None:
    """Review: bidx=1 x40 on a 2048 px preview reached 2.2 GB; assets=classes x1000 took 10 s a tile.

    The dataset does not exist: the 400 comes before any read (else it would be a 404).
    """
    missing = tiler_runs.root / "missing" / ("classes.tif" if factory == "cog" else "item.json")
    response = get(f"{tiler_url}{path}", params=[("url", str(missing)), *params])
    assert response.status_code == 400, response.text
    assert "9 bands" in response.json()["detail"]
    assert "max_bands" in response.json()["detail"]


def test_an_expression_counts_the_bands_it_reads_once_each() -> None:
    """Diff review: a false-colour ratio naming b4 six times was refused as 12 bands (rio-tiler reads 4)."""
    from tiler.limits import expression_bands

    assert expression_bands("(b4-b3)/(b4+b3);(b2-b4)/(b2+b4);(b1-b4)/(b1+b4)") == 4
    assert expression_bands("b1*2;b1+1;b1;b1") == 4  # outputs count when more
    assert expression_bands("+".join(f"b{i}" for i in range(1, 10))) == 9


def test_up_to_the_band_limit_is_answered(tiler_url: str, tiler_runs: Runs) -> None:
    cog, item = str(tiler_runs.main / "classes.tif"), str(tiler_runs.main / "item.json")
    with rasterio.open(cog) as src:
        x, y = src.xy(src.height / 2, src.width / 2)
        lon, lat = transform(src.crs, "EPSG:4326", [x], [y])
    eight = get(f"{tiler_url}/cog/point/{lon[0]},{lat[0]}", params=[("url", cog), *[("bidx", "1")] * 8])
    assert eight.status_code == 200, eight.text
    assert len(eight.json()["values"]) == 8
    assets = get(f"{tiler_url}/stac/statistics", params=[("url", item), *[("assets", "classes")] * 2])
    assert assets.status_code == 200, assets.text
    expression = get(f"{tiler_url}/cog/statistics", params={"url": cog, "expression": "b1*2;b1+1"})
    assert expression.status_code == 200, expression.text


BAD_HISTOGRAMS: list[tuple[dict[str, str | list[str]], str]] = [
    ({"histogram_bins": "1025"}, "1025 bins"),
    ({"histogram_bins": "20000000"}, "1..1024"),
    ({"histogram_bins": "0"}, "0 bins"),
    ({"histogram_bins": ",".join(str(v) for v in range(1026))}, "1026 bin edges"),
    ({"histogram_bins": "5,3"}, "increase"),
    ({"histogram_bins": "1," + "9" * 400}, "finite"),
    ({"histogram_range": "5,1"}, "histogram_range"),
    ({"histogram_range": "0,1.0e999"}, "finite"),
    ({"c": [str(i) for i in range(1025)]}, "1025 categories"),  # a count over every pixel each
    ({"p": [str(i % 100) for i in range(1025)]}, "1025 percentiles"),
    ({"p": ["150"]}, "0..100"),  # numpy's ValueError after the read: a 500
]


@pytest.mark.parametrize("route", ["GET /cog", "GET /stac", "POST /cog", "POST /stac"])
@pytest.mark.parametrize(("histogram", "words"), BAD_HISTOGRAMS)
def test_histogram_parameters_are_bounded_and_checked(
    tiler_url: str, tiler_runs: Runs, route: str, histogram: dict[str, str], words: str
) -> None:
    """Review: histogram_bins=20000000 took 22 s and 1.67 GB; bins=0, range=5,1 or p=150 were 500s."""
    method, factory = route.split()
    params = {"url": str(tiler_runs.main / ("classes.tif" if factory == "/cog" else "item.json"))}
    if factory == "/stac":
        params["assets"] = "classes"
    url = f"{tiler_url}{factory}/statistics"
    params |= histogram
    response = get(url, params=params) if method == "GET" else post(url, params=params, json=_features(1))
    assert response.status_code == 400, response.text
    assert words in json.dumps(response.json()["detail"])


def test_histograms_within_the_limits_are_answered(tiler_url: str, tiler_runs: Runs) -> None:
    url = f"{tiler_url}/cog/statistics"
    params = {"url": str(tiler_runs.main / "classes.tif")}
    most = get(url, params={**params, "histogram_bins": "1024", "histogram_range": "0,255"})
    assert most.status_code == 200, most.text
    assert len(most.json()["b1"]["histogram"][0]) == 1024
    edges = get(url, params={**params, "histogram_bins": "0,1,2,3"})
    assert edges.status_code == 200, edges.text
    assert len(edges.json()["b1"]["histogram"][0]) == 3
    classes = get(url, params={**params, "categorical": "true", "c": ["1", "2"], "p": ["0", "100"]})
    assert classes.status_code == 200, classes.text
    assert len(classes.json()["b1"]["histogram"][0]) == 2


def test_with_a_token_cached_answers_are_private_and_vary_on_authorization(
    guarded_url: str, tiler_url: str, tiler_runs: Runs, inside_tile: str
) -> None:
    """Review: tiles fetched with the token were ``public``: a shared cache could hand them to anyone."""
    from tests.tiler.conftest import CORS_ORIGIN

    url = str(tiler_runs.main / "classes.tif")
    for path, params in (
        (inside_tile, {"url": url}),
        ("/legend", {"url": url}),
        ("/legend", {"url": url, "format": "png"}),
    ):
        answer = get(f"{guarded_url}{path}", params=params, headers={**TOKEN, "Origin": CORS_ORIGIN})
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "private, max-age=120", path
        vary = {v.strip().lower() for v in answer.headers.get("vary", "").split(",")}
        assert {"authorization", "origin"} <= vary, path
    refused = get(f"{guarded_url}{inside_tile}", params={"url": url})
    assert refused.status_code == 401
    assert "cache-control" not in refused.headers
    assert "authorization" in refused.headers.get("vary", "").lower()
    # without a token, the configured value as it is
    open_ = get(f"{tiler_url}{inside_tile}", params={"url": url})
    assert open_.headers["cache-control"] == "public, max-age=120"
    assert "authorization" not in open_.headers.get("vary", "").lower()


@pytest.mark.parametrize(
    ("configured", "sent"),
    [
        ("public, max-age=3600", "private, max-age=3600"),
        ("max-age=60", "private, max-age=60"),
        ("PUBLIC,max-age=60, s-maxage=600", "private, max-age=60"),
        ("private, max-age=5", "private, max-age=5"),
        ("no-store", "private, no-store"),
    ],
)
def test_the_configured_cache_control_is_made_private(configured: str, sent: str) -> None:
    from tiler.caching import private_cache_control

    assert private_cache_control(configured) == sent
