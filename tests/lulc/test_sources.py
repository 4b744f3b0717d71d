"""Item sources: a static catalog searched client-side, and STAC APIs over real loopback HTTP servers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pystac
import pytest

from lulc.allowlist import AllowList
from lulc.errors import InputError, NoItemsError, SourceError
from lulc.sources import (
    ItemSource,
    SearchParams,
    StacApiSource,
    StaticCatalogSource,
    open_source,
    parse_datetime_interval,
    require_items,
)
from lulc.stac_io import CheckedHttp
from lulc.urls import HostNotAllowedError
from tests.support.http_server import Failure, ServerHandle
from tests.support.loopback import stac_api_landing, threaded_server
from tests.support.scripted_server import ScriptedServer

ITEMS_DIR = Path(__file__).resolve().parents[1] / "data" / "items"


# ---------------------------------------------------------------------------------------------
# A small static catalog


def square(x: float, y: float, size: float = 0.1) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]],
    }


def make_item(
    item_id: str,
    when: str | None,
    geometry: dict[str, Any],
    cloud: float | None,
    *,
    collection: str = "sentinel-2-l2a",
    start: str | None = None,
    end: str | None = None,
) -> pystac.Item:
    coords = geometry["coordinates"][0]
    xs = [c[0] for c in coords]
    ys = [c[1] for c in coords]
    props: dict[str, Any] = {"proj:epsg": 32633, "s2:processing_baseline": "05.10"}
    if cloud is not None:
        props["eo:cloud_cover"] = cloud
    if start is not None:
        props["start_datetime"] = start
        props["end_datetime"] = end
    item = pystac.Item(
        id=item_id,
        geometry=geometry,
        bbox=[min(xs), min(ys), max(xs), max(ys)],
        datetime=pystac.utils.str_to_datetime(when) if when else None,
        properties=props,
        collection=collection,
    )
    for key, name in (("red", "B04"), ("nir", "B08"), ("scl", "SCL")):
        item.add_asset(key, pystac.Asset(href=f"./cogs/{item_id}/{name}.tif", roles=["data"]))
    return item


CATALOG_ITEMS = [
    # id, datetime, geometry, cloud cover
    ("a-early", "2024-01-05T10:00:00Z", square(14.0, 48.0), 5.0),
    ("b-june", "2024-06-10T10:00:00Z", square(14.0, 48.0), 20.0),  # exactly at the limit used below
    ("c-june-same-time", "2024-06-10T10:00:00Z", square(14.05, 48.05), 10.0),
    ("d-far-away", "2024-06-12T10:00:00Z", square(30.0, 10.0), 1.0),
    ("e-late", "2025-02-01T10:00:00Z", square(14.0, 48.0), 60.0),
    ("f-no-cloud-cover", "2024-07-01T10:00:00Z", square(14.0, 48.0), None),
]


@pytest.fixture
def static_catalog(tmp_path: Path) -> Path:
    catalog = pystac.Catalog(id="test", description="test catalog")
    l2a = pystac.Collection(
        id="sentinel-2-l2a",
        description="L2A",
        extent=pystac.Extent(
            pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
            pystac.TemporalExtent([[datetime(2015, 6, 27, tzinfo=UTC), None]]),
        ),
    )
    other = l2a.clone()
    other.id = "other-collection"
    catalog.add_child(l2a)
    catalog.add_child(other)
    for item_id, when, geometry, cloud in CATALOG_ITEMS:
        l2a.add_item(make_item(item_id, when, geometry, cloud))
    other.add_item(make_item("z-other", "2024-06-11T10:00:00Z", square(14.0, 48.0), 2.0, collection=other.id))
    l2a.add_item(
        make_item(
            "g-interval",
            None,
            square(14.0, 48.0),
            3.0,
            start="2023-12-30T00:00:00Z",
            end="2024-01-02T00:00:00Z",
        )
    )
    catalog.normalize_hrefs(str(tmp_path / "catalog"))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return tmp_path / "catalog" / "catalog.json"


def ids(items: list[Any]) -> list[str]:
    return [item.id for item in items]


def test_static_search_without_filters_is_sorted_by_datetime_then_id(static_catalog: Path) -> None:
    source = StaticCatalogSource(static_catalog)
    found = source.search()
    assert ids(found) == [
        "g-interval",
        "a-early",
        "b-june",
        "c-june-same-time",
        "z-other",
        "d-far-away",
        "f-no-cloud-cover",
        "e-late",
    ]
    # relative asset hrefs come back absolute, next to the item file
    red = found[1].band("red")
    assert red.href == str(
        static_catalog.parent / "sentinel-2-l2a" / "a-early" / "cogs" / "a-early" / "B04.tif"
    )


def test_static_collection_filter(static_catalog: Path) -> None:
    assert "z-other" not in ids(StaticCatalogSource(static_catalog, ["sentinel-2-l2a"]).search())
    assert ids(StaticCatalogSource(static_catalog, ["other-collection"]).search()) == ["z-other"]


def test_static_bbox_and_intersects(static_catalog: Path) -> None:
    source = StaticCatalogSource(static_catalog, ["sentinel-2-l2a"])
    # touches only the item shifted by 0.05 degrees
    assert ids(source.search(bbox=(14.12, 48.12, 14.2, 48.2))) == ["c-june-same-time"]
    assert ids(source.search(bbox=(29.9, 9.9, 30.01, 10.01))) == ["d-far-away"]
    assert source.search(bbox=(0.0, 0.0, 1.0, 1.0)) == []
    triangle = {"type": "Polygon", "coordinates": [[[29.0, 9.0], [30.05, 10.05], [29.0, 10.05], [29.0, 9.0]]]}
    assert ids(source.search(intersects=triangle)) == ["d-far-away"]
    with pytest.raises(InputError):
        source.search(bbox=(1.0, 1.0, 0.0, 0.0))
    with pytest.raises(InputError):
        source.search(bbox=(0.0, 0.0, 1.0, 1.0), intersects=triangle)


def test_static_datetime_intervals(static_catalog: Path) -> None:
    source = StaticCatalogSource(static_catalog, ["sentinel-2-l2a"])
    assert ids(source.search(datetime="2024-06")) == ["b-june", "c-june-same-time", "d-far-away"]
    assert ids(source.search(datetime="2024-06-10")) == ["b-june", "c-june-same-time"]
    assert ids(source.search(datetime="2024-06-10T10:00:00Z")) == ["b-june", "c-june-same-time"]
    assert ids(source.search(datetime="2024-07-01/..")) == ["f-no-cloud-cover", "e-late"]
    assert ids(source.search(datetime="../2024-01-05")) == ["g-interval", "a-early"]
    # the start_datetime/end_datetime item overlaps the first day of 2024
    assert ids(source.search(datetime="2024-01-01/2024-01-01T12:00:00Z")) == ["g-interval"]
    assert source.search(datetime="2023-01-01/2023-06-30") == []
    with pytest.raises(InputError, match="not-a-date"):
        source.search(datetime="not-a-date")


def test_static_cloud_cover_limit_is_inclusive(static_catalog: Path) -> None:
    """Review: "skip items with more cloud cover than this" kept only those strictly below it."""
    source = StaticCatalogSource(static_catalog, ["sentinel-2-l2a"])
    found = ids(source.search(max_cloud_cover=20))
    assert found == ["g-interval", "a-early", "b-june", "c-june-same-time", "d-far-away"]  # 20.0 <= 20
    assert "b-june" not in ids(source.search(max_cloud_cover=19.99))
    assert "f-no-cloud-cover" not in ids(source.search(max_cloud_cover=100))


def test_a_zero_cloud_limit_finds_the_cloud_free_items(tmp_path: Path) -> None:
    """Review: `max_cloud_cover: 0` found nothing, ever (0 < 0 is false)."""
    items = [
        make_item("clear", "2024-06-01T10:00:00Z", square(14.0, 48.0), 0.0),
        make_item("clear-int", "2024-06-02T10:00:00Z", square(14.0, 48.0), 0),
        make_item("hazy", "2024-06-03T10:00:00Z", square(14.0, 48.0), 0.01),
    ]
    path = tmp_path / "items.json"
    pystac.ItemCollection(items).save_object(dest_href=str(path))
    source = StaticCatalogSource(path)
    assert ids(source.search(max_cloud_cover=0)) == ["clear", "clear-int"]
    assert ids(source.search(max_cloud_cover=0.01)) == ["clear", "clear-int", "hazy"]


def test_static_limit_keeps_the_first_in_order(static_catalog: Path) -> None:
    source = StaticCatalogSource(static_catalog, ["sentinel-2-l2a"])
    assert ids(source.search(datetime="2024-06", limit=2)) == ["b-june", "c-june-same-time"]
    with pytest.raises(InputError):
        source.search(limit=0)


def test_item_collection_file(static_catalog: Path, tmp_path: Path) -> None:
    items = [make_item(i, w, g, c) for i, w, g, c in CATALOG_ITEMS]
    path = tmp_path / "found.geojson.json"
    pystac.ItemCollection(items).save_object(dest_href=str(path))
    source = open_source(str(path))
    assert isinstance(source, StaticCatalogSource)
    found = source.search(bbox=(14.0, 48.0, 14.1, 48.1), max_cloud_cover=15)
    assert ids(found) == ["a-early", "c-june-same-time"]
    assert found[0].band("red").href == str(tmp_path / "cogs" / "a-early" / "B04.tif")


def test_missing_catalog_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "catalog.json"
    with pytest.raises(SourceError, match=r"catalog .*nowhere/catalog.json does not exist"):
        open_source(str(missing))


def test_broken_catalog_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text("{not json")
    with pytest.raises(SourceError, match=r"catalog .*catalog.json"):
        StaticCatalogSource(path).search()


def test_bad_item_in_catalog_names_the_item(tmp_path: Path) -> None:
    items = [make_item("fine", "2024-01-01T00:00:00Z", square(0, 0), 1.0)]
    bad = make_item("no-nir-here", "2024-01-02T00:00:00Z", square(0, 0), 1.0)
    del bad.assets["nir"]
    path = tmp_path / "items.json"
    pystac.ItemCollection([*items, bad]).save_object(dest_href=str(path))
    with pytest.raises(SourceError, match=r"no-nir-here.*nir.*red, scl"):
        StaticCatalogSource(path).search()


def test_require_items_names_source_and_search(static_catalog: Path) -> None:
    source = StaticCatalogSource(static_catalog)
    params = SearchParams(bbox=(0.0, 0.0, 1.0, 1.0), datetime="2024-06", max_cloud_cover=10)
    found = source.search(bbox=params.bbox, datetime=params.datetime, max_cloud_cover=params.max_cloud_cover)
    with pytest.raises(NoItemsError) as info:
        require_items(found, source, params)
    message = str(info.value)
    assert str(static_catalog) in message
    assert "bbox=(0.0, 0.0, 1.0, 1.0)" in message
    assert "datetime=2024-06" in message
    assert "eo:cloud_cover<=10" in message
    assert require_items(source.search(), source, SearchParams()) == source.search()


def test_parse_datetime_interval() -> None:
    start, end = parse_datetime_interval("2024-02") or (None, None)
    assert start == datetime(2024, 2, 1, tzinfo=UTC)
    assert end == datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    assert parse_datetime_interval("../2024-01-01T00:00:00Z") == (None, datetime(2024, 1, 1, tzinfo=UTC))
    assert parse_datetime_interval(None) is None
    with pytest.raises(InputError, match="ends before it starts"):
        parse_datetime_interval("2024-02-01/2024-01-01")


def test_open_source_dispatch(static_catalog: Path) -> None:
    assert isinstance(open_source(str(static_catalog)), StaticCatalogSource)
    assert isinstance(open_source(f"file://{static_catalog}"), StaticCatalogSource)
    assert isinstance(open_source("http://127.0.0.1:9/catalog.json"), StaticCatalogSource)
    api = open_source("http://127.0.0.1:9/stac/v1", ["sentinel-2-l2a"])
    assert isinstance(api, StacApiSource)
    assert isinstance(api, ItemSource)
    assert "http://127.0.0.1:9/stac/v1" in api.describe()


# ---------------------------------------------------------------------------------------------
# Real loopback HTTP servers


@dataclass
class FakeStacApi:
    """A minimal STAC API (landing page + POST /search with paging) that records what it receives."""

    features: list[dict[str, Any]]
    fail_first: list[int] = field(default_factory=list)  # statuses answered to the first /search calls
    always: int | None = None  # answer every /search with this status
    page_size: int = 2
    sort: bool = False  # announce the sort extension
    bodies: list[dict[str, Any]] = field(default_factory=list)
    search_statuses: list[int] = field(default_factory=list)
    base_url: str = ""

    def landing(self) -> dict[str, Any]:
        return stac_api_landing(self.base_url, "fake-stac-api", "loopback test API", sort=self.sort)

    def search(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.bodies.append(body)
        if self.always is not None:
            status = self.always
        elif self.fail_first:
            status = self.fail_first.pop(0)
        else:
            status = 200
        self.search_statuses.append(status)
        if status != 200:
            return status, {"code": "ServerError", "description": f"test failure {status}"}
        start = int(body.get("token", 0))
        features = self.features
        if body.get("sortby"):
            features = sorted(features, key=lambda f: (f["properties"]["datetime"], f["id"]))
        page = features[start : start + self.page_size]
        links = []
        if start + self.page_size < len(self.features):
            links.append(
                {
                    "rel": "next",
                    "href": f"{self.base_url}/search",
                    "method": "POST",
                    "body": {**body, "token": str(start + self.page_size)},
                    "merge": False,
                }
            )
        return 200, {"type": "FeatureCollection", "features": page, "links": links}


@contextmanager
def serve_api(api: FakeStacApi) -> Iterator[FakeStacApi]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "":
                self._send(200, api.landing())
            else:
                self._send(404, {"code": "NotFound"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.startswith("/search"):
                self._send(*api.search(body))
            else:
                self._send(404, {"code": "NotFound"})

    with threaded_server(Handler) as api.base_url:
        yield api


def fixture_features() -> list[dict[str, Any]]:
    names = [
        "cdse-sentinel-2-l2a.json",
        "earth-search-v1-sentinel-2-l2a.json",
        "planetary-computer-sentinel-2-l2a.json",
        "earth-search-v1-sentinel-2-c1-l2a.json",
    ]
    return [json.loads((ITEMS_DIR / name).read_text()) for name in names]


def api_source(api: FakeStacApi, **kwargs: Any) -> StacApiSource:
    return StacApiSource(api.base_url, ["sentinel-2-l2a"], backoff_factor=0.01, timeout=10, **kwargs)


def test_api_search_pages_normalises_and_sorts() -> None:
    with serve_api(FakeStacApi(fixture_features(), page_size=3)) as api:
        found = api_source(api).search(bbox=(10.0, 40.0, 20.0, 50.0), datetime="2023/2025")
    assert len(api.bodies) == 2  # two pages
    assert [item.id for item in found] == [
        "S2A_MSIL2A_20230613T100031_R122_T33UVR_20230614T002009",
        "S2A_39QTA_20230628_0_L2A",
        "S2B_MSIL2A_20250302T095029_N0511_R079_T33UXP_20250302T104753",
        "S2B_T38XNF_20250422T091553_L2A",
    ]
    assert [item.provider for item in found] == ["planetary-computer", "earth-search", "cdse", "earth-search"]
    body = api.bodies[0]
    assert body["collections"] == ["sentinel-2-l2a"]
    assert body["bbox"] == [10.0, 40.0, 20.0, 50.0]
    assert body["datetime"] == "2023-01-01T00:00:00Z/2025-12-31T23:59:59Z"
    assert body["limit"] == 100  # page size
    assert "query" not in body
    assert "sortby" not in body  # the API does not announce the sort extension


def test_api_cloud_cover_query_reaches_the_server_as_a_number() -> None:
    with serve_api(FakeStacApi(fixture_features())) as api:
        api_source(api).search(intersects={"type": "Point", "coordinates": [14.5, 49.0]}, max_cloud_cover=20)
    body = api.bodies[0]
    assert body["query"] == {"eo:cloud_cover": {"lte": 20}}  # inclusive, as the static catalog's filter
    limit = body["query"]["eo:cloud_cover"]["lte"]
    assert isinstance(limit, int | float)
    assert not isinstance(limit, bool)
    assert body["intersects"] == {"type": "Point", "coordinates": [14.5, 49.0]}


def test_api_retries_503_then_succeeds() -> None:
    with serve_api(FakeStacApi(fixture_features(), fail_first=[503, 503], page_size=10)) as api:
        found = api_source(api, max_retries=3).search()
    assert api.search_statuses == [503, 503, 200]
    assert len(found) == 4


@pytest.mark.parametrize("status", [502, 504])
def test_api_retries_other_gateway_errors(status: int) -> None:
    with serve_api(FakeStacApi(fixture_features(), fail_first=[status], page_size=10)) as api:
        assert len(api_source(api).search()) == 4
    assert api.search_statuses == [status, 200]


def test_api_503_beyond_the_retries_is_a_source_error() -> None:
    with serve_api(FakeStacApi(fixture_features(), always=503)) as api, pytest.raises(SourceError) as info:
        api_source(api, max_retries=2).search()
    assert api.search_statuses == [503, 503, 503]  # the request and two retries
    assert api.base_url in str(info.value)
    assert "503" in str(info.value)


def test_api_answering_500_is_one_clear_error_naming_the_url() -> None:
    with serve_api(FakeStacApi(fixture_features(), always=500)) as api, pytest.raises(SourceError) as info:
        api_source(api).search(bbox=(0.0, 0.0, 1.0, 1.0))
    message = str(info.value)
    assert message.startswith(f"STAC API {api.base_url} answered HTTP 500")
    assert api.search_statuses == [500]  # 500 is not retried
    assert "Traceback" not in message


def test_unreachable_api_is_a_source_error() -> None:
    with serve_api(FakeStacApi([])) as api:
        url = api.base_url
    # the server is gone: nothing listens on that port any more
    source = StacApiSource(url, backoff_factor=0.01, max_retries=1, timeout=5)
    reason = r"could not be reached: \[Errno \d+\] Connection refused"
    with pytest.raises(SourceError, match=rf"STAC API {url} {reason}"):
        source.search()


def test_api_returning_a_bad_item_names_the_item() -> None:
    features = fixture_features()
    del features[2]["assets"]["B04"]
    with serve_api(FakeStacApi(features, page_size=10)) as api, pytest.raises(SourceError) as info:
        api_source(api).search()
    assert "S2A_MSIL2A_20230613T100031_R122_T33UVR_20230614T002009" in str(info.value)


def test_api_limit_returns_the_first_items_in_order() -> None:
    with serve_api(FakeStacApi(fixture_features(), page_size=10)) as api:
        found = api_source(api).search(limit=2)
    assert [item.id for item in found] == [
        "S2A_MSIL2A_20230613T100031_R122_T33UVR_20230614T002009",
        "S2A_39QTA_20230628_0_L2A",
    ]


@contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            return

    with threaded_server(Handler) as base:
        yield base


def test_static_catalog_over_http(static_catalog: Path) -> None:
    with serve_directory(static_catalog.parent) as base:
        source = open_source(f"{base}/catalog.json", ["sentinel-2-l2a"])
        assert isinstance(source, StaticCatalogSource)
        found = source.search(datetime="2024-06-10")
        missing = StaticCatalogSource(f"{base}/nope/catalog.json")
        with pytest.raises(SourceError, match=rf"catalog {base}/nope/catalog.json"):
            missing.search()
    assert ids(found) == ["b-june", "c-june-same-time"]
    assert found[0].band("red").href == f"{base}/sentinel-2-l2a/b-june/cogs/b-june/B04.tif"


def test_root_relative_links_of_a_remote_catalog_resolve_on_its_host(static_catalog: Path) -> None:
    """HTTP review: ``/sentinel-2-l2a/collection.json`` in a served catalog was refused as a local file."""
    root = static_catalog.parent
    for path in root.rglob("*.json"):
        document = json.loads(path.read_text())
        for link in document.get("links", []):
            if link["rel"] in ("child", "item", "parent", "root", "collection"):
                target = (path.parent / link["href"]).resolve()
                link["href"] = "/" + target.relative_to(root.resolve()).as_posix()
        path.write_text(json.dumps(document))
    assert json.loads(static_catalog.read_text())["links"][1]["href"].startswith("/sentinel-2-l2a/")
    with serve_directory(root) as base:
        allow = AllowList.of([f"127.0.0.1:{base.rsplit(':', 1)[1]}"])
        found = open_source(f"{base}/catalog.json", ["sentinel-2-l2a"], allow=allow).search(
            datetime="2024-06-10"
        )
    assert ids(found) == ["b-june", "c-june-same-time"]
    assert found[0].band("red").href == f"{base}/sentinel-2-l2a/b-june/cogs/b-june/B04.tif"


def test_a_catalog_linking_itself_or_a_child_twice_is_walked_once(static_catalog: Path) -> None:
    """HTTP review: a catalog listing itself as a child ended in RecursionError (a 502 in the service)."""
    expected = ids(StaticCatalogSource(static_catalog).search())
    catalog = json.loads(static_catalog.read_text())
    children = [link for link in catalog["links"] if link["rel"] == "child"]
    catalog["links"] += [{"rel": "child", "href": "./catalog.json"}, *children]
    static_catalog.write_text(json.dumps(catalog))
    with serve_directory(static_catalog.parent) as base:
        remote = ids(StaticCatalogSource(f"{base}/catalog.json").search())
    assert ids(StaticCatalogSource(static_catalog).search()) == expected
    assert remote == expected
    assert len(expected) == len(set(expected)) > 3


@pytest.mark.parametrize("failure", ["503", "drop"])
def test_static_catalog_over_http_survives_one_request_in_five_failing(
    static_catalog: Path, http_server_factory: Callable[..., ServerHandle], failure: Failure
) -> None:
    """Every 5th request answered 503 (or its body dropped): the whole catalog still loads, every time."""
    server = http_server_factory(static_catalog.parent, fail_every=5, failure=failure)
    for _ in range(3):
        source = StaticCatalogSource(server.url("catalog.json"), ["sentinel-2-l2a"], http=fast_http())
        assert ids(source.search(datetime="2024-06-10")) == ["b-june", "c-june-same-time"]
    records = server.requests.records()
    assert sum(r.failed for r in records) >= 3, records
    control = http_server_factory(static_catalog.parent, fail_every=1, failure=failure)
    with pytest.raises(SourceError, match=r"catalog http://127.0.0.1:\d+/catalog.json"):
        StaticCatalogSource(control.url("catalog.json"), http=fast_http()).items()
    assert len(control.requests.records()) == 1 + fast_http().max_retries  # bounded, then one clear error


def fast_http(**kwargs: Any) -> CheckedHttp:
    """A checked client with short back-off (allows anything, like the CLIs)."""
    return CheckedHttp(AllowList.anything(), backoff=0.01, max_backoff=0.05, timeout=10, **kwargs)


def test_static_catalog_links_and_assets_off_the_allow_list_are_refused(static_catalog: Path) -> None:
    with serve_directory(static_catalog.parent) as base, serve_directory(static_catalog.parent) as other:
        port = base.rsplit(":", 1)[1]
        allow = AllowList.of([f"127.0.0.1:{port}"])
        assert ids(open_source(f"{base}/catalog.json", allow=allow).search(datetime="2024-06-10")) == [
            "b-june",
            "c-june-same-time",
        ]
        catalog = json.loads((static_catalog).read_text())
        catalog["links"].append({"rel": "child", "href": f"{other}/sentinel-2-l2a/collection.json"})
        (static_catalog.parent / "linked.json").write_text(json.dumps(catalog))
        with pytest.raises(HostNotAllowedError, match=rf"{other}/sentinel-2-l2a/collection.json"):
            open_source(f"{base}/linked.json", allow=allow).search()
        with pytest.raises(HostNotAllowedError, match="STAC source"):
            open_source(f"{other}/catalog.json", allow=allow)
        # a remote catalog may not send the reader to local files, even where local files are allowed
        catalog["links"][-1]["href"] = f"file://{static_catalog.parent}/sentinel-2-l2a/collection.json"
        (static_catalog.parent / "linked.json").write_text(json.dumps(catalog))
        with pytest.raises(HostNotAllowedError, match="local files are not on the allow-list"):
            open_source(f"{base}/linked.json").search()
        assert open_source(static_catalog.parent / "linked.json").search(datetime="2024-06-10")


def test_a_reader_factory_opening_a_source_by_url_checks_its_links_too(static_catalog: Path) -> None:
    """Before, ``StacReaderFactory.item_source`` checked the URL it was given and then read any link."""
    from lulc.gdal_env import GdalAllowList
    from service.readers import StacReaderFactory

    with serve_directory(static_catalog.parent) as base, serve_directory(static_catalog.parent) as other:
        allow = GdalAllowList.of([f"127.0.0.1:{base.rsplit(':', 1)[1]}"])
        catalog = json.loads(static_catalog.read_text())
        catalog["links"].append({"rel": "child", "href": f"{other}/sentinel-2-l2a/collection.json"})
        (static_catalog.parent / "linked.json").write_text(json.dumps(catalog))
        with pytest.raises(HostNotAllowedError, match=rf"{other}/sentinel-2-l2a/collection.json"):
            StacReaderFactory(f"{base}/linked.json", allow=allow).item_source().search()
        found = (
            StacReaderFactory(f"{base}/catalog.json", allow=allow).item_source().search(datetime="2024-06-10")
        )
        assert ids(found) == ["b-june", "c-june-same-time"]
        with pytest.raises(HostNotAllowedError, match="STAC source"):
            StacReaderFactory(f"{other}/catalog.json", allow=allow).item_source()


@pytest.mark.parametrize(
    ("href", "words"),
    [
        ("file:///etc/passwd", "local files"),
        ("/vsizip//local/file.zip/B04.tif", "virtual file systems"),
        ("gopher://127.0.0.1:6379/_INFO", "scheme"),
    ],
)
def test_asset_hrefs_of_a_remote_catalog_are_checked_where_items_are_normalised(
    static_catalog: Path, tmp_path: Path, href: str, words: str
) -> None:
    """Both the service and training get these checks: they are made by the sources, not the readers."""
    item_path = static_catalog.parent / "sentinel-2-l2a" / "b-june" / "b-june.json"
    original = item_path.read_text()
    item = json.loads(original)
    item["assets"]["red"]["href"] = href
    item_path.write_text(json.dumps(item))
    try:
        with serve_directory(static_catalog.parent) as base, pytest.raises(HostNotAllowedError, match=words):
            open_source(f"{base}/catalog.json").search(datetime="2024-06-10")
    finally:
        item_path.write_text(original)
    # the same href in a local catalog: a local path is fine when the list allows local files
    if href.startswith("file://"):
        item["assets"]["red"]["href"] = str(tmp_path / "B04.tif")
        item_path.write_text(json.dumps(item))
        try:
            found = open_source(static_catalog).search(datetime="2024-06-10")
        finally:
            item_path.write_text(original)
        assert found[0].band("red").href == str(tmp_path / "B04.tif")


def test_api_error_pages_are_not_echoed() -> None:
    with serve_api(FakeStacApi(fixture_features(), always=502)) as api, pytest.raises(SourceError) as info:
        api_source(api, max_retries=0).search()
    assert str(info.value) == f"STAC API {api.base_url} answered HTTP 502"
    assert "test failure" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# The same search through the real stac-fastapi-pgstac and through the static demo catalog


@pytest.mark.pgstac
def test_api_and_static_catalog_agree(request: pytest.FixtureRequest) -> None:
    api_url = request.getfixturevalue("pgstac_api")
    catalog = request.getfixturevalue("http_catalog")
    api = open_source(str(api_url), ["sentinel-2-l2a"])
    static = open_source(str(catalog), ["sentinel-2-l2a"])
    assert isinstance(api, StacApiSource)
    everything = static.search()
    assert everything, "the demo catalog has items"
    first, last = everything[0], everything[-1]
    west, south, east, north = first.bbox or (0.0, 0.0, 0.0, 0.0)
    middle = ((west + east) / 2, (south + north) / 2)
    searches: list[dict[str, Any]] = [
        {},
        {"bbox": (middle[0] - 0.01, middle[1] - 0.01, middle[0] + 0.01, middle[1] + 0.01)},
        {"intersects": {"type": "Point", "coordinates": list(middle)}},
        {"datetime": f"{first.datetime.isoformat()}/{last.datetime.isoformat()}"},
        {"datetime": f"../{first.datetime.date().isoformat()}"},
        {"datetime": f"{last.datetime.date().isoformat()}/.."},
        {"max_cloud_cover": sorted(i.cloud_cover or 0.0 for i in everything)[len(everything) // 2]},
        {"bbox": (west, south, east, north), "max_cloud_cover": 50.0, "limit": 2},
        {"bbox": (0.0, 0.0, 0.001, 0.001)},
    ]
    for params in searches:
        assert ids(api.search(**params)) == ids(static.search(**params)), params


def test_api_modifier_is_applied_before_normalisation() -> None:
    def sign(obj: Any) -> None:
        for feature in obj.get("features", []) if isinstance(obj, dict) else []:
            for asset in feature["assets"].values():
                asset["href"] += "?sig=test"

    with serve_api(FakeStacApi(fixture_features()[2:3])) as api:
        found = api_source(api, modifier=sign).search()
    assert found[0].band("red").href.endswith("_B04_10m.tif?sig=test")


# ---------------------------------------------------------------------------------------------
# The offline demo world


@pytest.fixture
def demo_catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    try:
        root = Path(request.getfixturevalue("demo_world"))
    except pytest.FixtureLookupError:
        from demo.world import generate

        root = generate(tmp_path / "world", size=128, seed=3).root
    return root / "catalog.json"


def test_demo_world_items_normalise_with_the_baseline_offset(demo_catalog: Path) -> None:
    source = open_source(str(demo_catalog))
    items = source.search()
    assert len(items) >= 2
    assert [i.datetime for i in items] == sorted(i.datetime for i in items)
    for item in items:
        assert item.provider == "earth-search"
        assert item.scl is not None
        assert item.has_bands(["blue", "green", "red", "nir", "swir16"])
        assert Path(item.band("red").href).is_file()
        baseline = float(item.processing_baseline or "0")
        expected = -0.1 if baseline >= 4.0 else 0.0
        assert {band.offset for band in item.bands.values()} == {expected}
    assert {i.bands["red"].offset for i in items} == {0.0, -0.1}  # dates on both sides of 04.00


def test_api_limit_with_sort_extension_fetches_only_what_it_needs() -> None:
    with serve_api(FakeStacApi(fixture_features(), page_size=1, sort=True)) as api:
        found = api_source(api).search(limit=2)
    assert [item.id for item in found] == [
        "S2A_MSIL2A_20230613T100031_R122_T33UVR_20230614T002009",
        "S2A_39QTA_20230628_0_L2A",
    ]
    assert len(api.bodies) == 2  # two one-item pages, not four
    assert api.bodies[0]["sortby"] == [
        {"field": "properties.datetime", "direction": "asc"},
        {"field": "id", "direction": "asc"},
    ]


def test_checked_http_follows_redirects_within_the_list_and_stops_loops() -> None:
    script = {
        "/a.json": {"status": 302, "headers": {"location": "/b.json"}},
        "/b.json": {"status": 200, "body": '{"ok": true}'},
        "/loop.json": {"status": 301, "headers": {"location": "/loop.json"}},
        "/flaky.json": {"status": 503, "body": "busy"},
    }
    with ScriptedServer(script) as server:
        http = CheckedHttp(AllowList.of([f"127.0.0.1:{server.port}"]), backoff=0.01, max_backoff=0.02)
        assert json.loads(http.get_text(server.url("a.json"), "catalog")) == {"ok": True}
        with pytest.raises(SourceError, match="redirects more than 5 times"):
            http.get_text(server.url("loop.json"), "catalog")
        server.clear()
        with pytest.raises(SourceError, match=r"answered HTTP 503$"):
            http.get_text(server.url("flaky.json"), "catalog")
        assert len(server.requests()) == 1 + http.max_retries
