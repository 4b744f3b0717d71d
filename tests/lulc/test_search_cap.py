"""One search reads at most ``max_search_items`` items: an endless API and a huge catalog are refused early.

Real loopback servers: a STAC API that always offers a next page (``tests.service.stac_api_support``) and
a static catalog served by ``http.server`` with a request log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pystac
import pytest

from lulc.errors import InputError, LimitError
from lulc.sources import StacApiSource, StaticCatalogSource, open_source
from tests.service.stac_api_support import PAGE, EndlessApi, feature, serve_endless_api
from tests.support.loopback import threaded_server

DEFAULT_CAP = 5000  # lulc.sources.MAX_SEARCH_ITEMS, the service's default


def test_an_api_that_always_has_a_next_page_is_refused_after_the_cap_plus_one() -> None:
    """The service's cap (5,000): 51 pages read for the 5,001st item, then a 413-class error, not 60 pages."""
    with serve_endless_api(EndlessApi(max_pages=60)) as api:
        source = StacApiSource(
            api.base_url, ["sentinel-2-l2a"], backoff_factor=0.01, timeout=10, max_search_items=DEFAULT_CAP
        )
        with pytest.raises(
            LimitError, match=r"more than 5,000 items of STAC API http://127\.0\.0\.1"
        ) as caught:
            source.search(bbox=(14.0, 48.0, 14.2, 48.2), datetime="2024-06")
    assert type(caught.value).__name__ == "ItemLimitError"
    assert "limit of 5,000 one search may read; narrow the datetime window or the AOI" in str(caught.value)
    assert api.pages == (DEFAULT_CAP + 1 + PAGE - 1) // PAGE  # 51: stopped at the 5,001st item


def test_a_smaller_cap_asks_for_one_more_and_a_search_within_it_is_answered() -> None:
    with serve_endless_api(EndlessApi(max_pages=3)) as api:  # 300 items, then no next page
        capped = StacApiSource(api.base_url, max_search_items=250, backoff_factor=0.01)
        with pytest.raises(LimitError, match="more than 250 items"):
            capped.search()
        assert api.pages == 3  # 251 items: three pages of 100
        api.pages = 0
        found = StacApiSource(api.base_url, max_search_items=300).search()
    assert len(found) == 300  # exactly at the cap: every item
    assert api.pages == 3


def test_an_item_collection_over_the_cap_is_refused_before_its_items_are_parsed(tmp_path: Path) -> None:
    path = tmp_path / "items.json"
    features = [feature(n, "http://127.0.0.1:9") for n in range(DEFAULT_CAP + 1)]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with pytest.raises(
        LimitError, match=r"static catalog .*items\.json holds more than 5,000 items"
    ) as caught:
        open_source(path, max_search_items=DEFAULT_CAP).search()
    assert type(caught.value).__name__ == "ItemLimitError"
    # without a cap (the command line and training: trusted use) the file is searched as before (review)
    found = open_source(path).search(datetime="2024-06-01")
    assert 0 < len(found) < DEFAULT_CAP
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features[:DEFAULT_CAP]}))
    assert len(open_source(path).search(limit=3)) == 3  # at the cap: read


def _catalog(root: Path, n_items: int) -> Path:
    catalog = pystac.Catalog(id="many", description="one item per child catalog")
    for n in range(n_items):
        child = pystac.Catalog(id=f"child-{n}", description="holder")
        child.add_item(pystac.Item.from_dict(feature(n, "http://127.0.0.1:9")))
        catalog.add_child(child)
    catalog.normalize_hrefs(str(root))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


@contextmanager
def logged_directory(root: Path) -> Iterator[tuple[str, list[str]]]:
    """``root`` served over loopback HTTP; the list grows with every path requested."""
    requested: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            requested.append(self.path)

    with threaded_server(Handler) as base:
        yield base, requested


def test_a_catalog_walk_stops_at_one_item_over_the_cap(tmp_path: Path) -> None:
    """Twelve items, a cap of 3: four item documents are read, not twelve, and the search is refused."""
    _catalog(tmp_path / "catalog", 12)
    with logged_directory(tmp_path / "catalog") as (base, requested):
        source = StaticCatalogSource(f"{base}/catalog.json", max_search_items=3)
        with pytest.raises(LimitError, match=r"holds more than 3 items, over the limit of 3"):
            source.search()
        items_read = [path for path in requested if "/S2X_" in path]
        assert len(items_read) == 4, requested
        assert len(StaticCatalogSource(f"{base}/catalog.json", max_search_items=12).search()) == 12


def test_a_walk_of_catalogs_without_items_stops_at_the_document_cap(tmp_path: Path) -> None:
    """HTTP review: catalogs of 20 children each and no item were walked without end (3,183 in 150 s)."""
    from lulc.sources import CATALOGS_BESIDE_ITEMS

    catalog = pystac.Catalog(id="empty", description="children, and no item")
    for n in range(CATALOGS_BESIDE_ITEMS + 10):
        catalog.add_child(pystac.Catalog(id=f"child-{n}", description="holds nothing"))
    catalog.normalize_hrefs(str(tmp_path / "catalog"))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    source = StaticCatalogSource(tmp_path / "catalog" / "catalog.json", max_search_items=2)
    with pytest.raises(LimitError, match=r"links more than 1,006 documents \(catalogs and items\), over"):
        source.search()
    assert StaticCatalogSource(tmp_path / "catalog" / "catalog.json", max_search_items=5).search() == []


def test_without_a_cap_every_matching_item_is_read() -> None:
    """The command line and training pass no cap: 6,000 matching items were read before and still are."""
    with serve_endless_api(EndlessApi(max_pages=60)) as api:
        found = StacApiSource(api.base_url, backoff_factor=0.01).search()
    assert len(found) == 6000
    assert api.pages == 60


def test_a_cap_below_one_is_an_input_error() -> None:
    with pytest.raises(InputError, match="max_search_items must be a positive number of items, got 0"):
        StacApiSource("http://127.0.0.1:9", max_search_items=0)
