"""Where Sentinel-2 items come from: a STAC API or a static catalog, searched with the same semantics.

Both sources implement ``ItemSource.search`` and return ``NormalizedItem`` lists sorted by
``(datetime, id)``. Semantics shared by both:

- ``bbox`` / ``intersects`` (EPSG:4326): items whose geometry intersects it.
- ``datetime``: an RFC 3339 instant or interval, open ends as ``..`` (``2024-01-01/..``); a date or
  month alone means the whole day or month (pystac-client's expansion, used by both paths). An item
  matches when its ``datetime`` (or ``start_datetime``..``end_datetime``) overlaps the interval.
- ``max_cloud_cover``: ``eo:cloud_cover <= max_cloud_cover`` (inclusive, the API's ``lte``: 0 finds the
  cloud-free items); items without ``eo:cloud_cover`` do not match when a limit is given.
- ``limit``: at most this many items, the first ones in ``(datetime, id)`` order.

A source given ``max_search_items`` (the service: ``MAX_SEARCH_ITEMS`` unless configured) reads at most that
many items a search: an API is asked for one more and a static catalog walked until one more; finding it is
``ItemLimitError``, not an endless paging. Without it (the command line and training, trusted use) every
matching item is read, as before. Every response is read through ``lulc.stac_io.CheckedHttp`` up to its
``max_response_bytes``.

An empty result is returned as an empty list: callers that need items call ``require_items`` which
raises ``NoItemsError`` naming the source and the search parameters.

Every fetch goes through an ``AllowList`` (``lulc.allowlist``; the CLIs use ``AllowList.anything()``):
the source itself, every API page and catalog link (``lulc.stac_io``), and the band asset hrefs of the
items found, which come back normalised, as the readers must open them. Hrefs found in a remote
document may not point at local files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pystac
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from lulc import stac_io
from lulc.allowlist import AllowList
from lulc.datetimes import format_datetime, parse_datetime_interval
from lulc.errors import (
    InputError,
    ItemLimitError,
    LulcError,
    NoItemsError,
    SourceError,
    SourceUnavailableError,
)
from lulc.sentinel2 import BandAsset, NormalizedItem, normalize_item
from lulc.stac_io import (
    MAX_RESPONSE_BYTES,
    CheckedHttp,
    CheckedStacApiIO,
    CheckedStacIO,
    short_reason,
    temporary_status,
)

BBox = tuple[float, float, float, float]

RETRY_STATUSES = tuple(sorted(stac_io.RETRY_STATUSES))
"""HTTP statuses a STAC API or catalog request is retried on (``lulc.stac_io``)."""

PAGE_SIZE = 100
"""Items per page asked of a STAC API (the ``limit`` of each request; pages are read up to the cap)."""

MAX_SEARCH_ITEMS = 5000
"""The service's default for the most items one search may read (the candidates, before a least-cloudy pick).

Sentinel-2 sees a place every 2-5 days: a year over an AOI on a few tiles and orbits is some hundreds.
"""


@dataclass(frozen=True)
class SearchParams:
    """One search, as given to ``ItemSource.search``; printable for error messages."""

    bbox: BBox | None = None
    intersects: dict[str, Any] | None = None
    datetime: str | None = None
    max_cloud_cover: float | None = None
    limit: int | None = None

    def describe(self) -> str:
        """The parameters that were set, e.g. ``bbox=(...), datetime=2024-06``."""
        parts = []
        if self.bbox is not None:
            parts.append(f"bbox={tuple(self.bbox)}")
        if self.intersects is not None:
            parts.append(f"intersects={shapely.geometry.shape(self.intersects).wkt[:120]}")
        if self.datetime is not None:
            parts.append(f"datetime={self.datetime}")
        if self.max_cloud_cover is not None:
            parts.append(f"eo:cloud_cover<={self.max_cloud_cover:g}")
        if self.limit is not None:
            parts.append(f"limit={self.limit}")
        return ", ".join(parts) or "no filters"


@runtime_checkable
class ItemSource(Protocol):
    """Anything that finds Sentinel-2 items: a STAC API, a static catalog, a test double."""

    def search(
        self,
        *,
        bbox: BBox | None = None,
        intersects: dict[str, Any] | None = None,
        datetime: str | None = None,
        max_cloud_cover: float | None = None,
        limit: int | None = None,
    ) -> list[NormalizedItem]:
        """Normalised items matching the search, sorted by ``(datetime, id)``."""
        ...

    def describe(self) -> str:
        """A short human name for messages, e.g. ``STAC API https://... (sentinel-2-l2a)``."""
        ...


def require_items(
    items: list[NormalizedItem], source: ItemSource, params: SearchParams
) -> list[NormalizedItem]:
    """``items`` unchanged, or ``NoItemsError`` naming the source and the search if it is empty."""
    if not items:
        raise NoItemsError(f"no items in {source.describe()} match {params.describe()}")
    return items


def _search_geometry(bbox: BBox | None, intersects: dict[str, Any] | None) -> BaseGeometry | None:
    if bbox is not None and intersects is not None:
        raise InputError("give either bbox or intersects, not both")
    if bbox is not None:
        if len(bbox) != 4:
            raise InputError(f"bbox must be (west, south, east, north), got {bbox!r}")
        west, south, east, north = (float(v) for v in bbox)
        if west > east or south > north:
            raise InputError(f"bbox must be (west, south, east, north), got {bbox!r}")
        return shapely.geometry.box(west, south, east, north)
    if intersects is not None:
        try:
            return shapely.geometry.shape(intersects)
        except Exception as exc:  # shapely raises several types for malformed GeoJSON
            raise InputError(f"intersects is not a GeoJSON geometry: {exc}") from exc
    return None


def _sorted(items: Iterable[NormalizedItem], limit: int | None) -> list[NormalizedItem]:
    ordered = sorted(items, key=lambda it: (it.datetime, it.id))
    return ordered if limit is None else ordered[:limit]


def _collections_suffix(collections: Sequence[str] | None) -> str:
    """`` (a, b)`` for the collections a source is restricted to, empty when it is not."""
    return f" ({', '.join(collections)})" if collections else ""


def checked_item(item: NormalizedItem, allow: AllowList) -> NormalizedItem:
    """``item`` with every band and SCL href checked against ``allow`` and replaced by its normalised form.

    Raises:
        HostNotAllowedError: an asset href is malformed or not allowed.
    """

    def check(asset: BandAsset) -> BandAsset:
        href = allow.check(asset.href, f"asset {asset.key!r} of item {item.id!r} at")
        return asset if href == asset.href else dataclasses.replace(asset, href=href)

    bands = {name: check(asset) for name, asset in item.bands.items()}
    scl = check(item.scl) if item.scl is not None else None
    return dataclasses.replace(item, bands=bands, scl=scl)


def _lulc_cause(exc: BaseException) -> LulcError | None:
    """The first of our own errors in ``exc``'s chain (pystac wraps failures of link reads in STACError)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, LulcError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise InputError(f"limit must be a positive number of items, got {limit}")


def _check_cap(max_search_items: int | None) -> int | None:
    if max_search_items is not None and max_search_items < 1:
        raise InputError(f"max_search_items must be a positive number of items, got {max_search_items}")
    return max_search_items


# ---------------------------------------------------------------------------------------------
# STAC API


class StacApiSource:
    """A STAC API searched with pystac-client: POST /search, retries on 502/503/504, all pages.

    ``modifier`` is pystac-client's hook applied to every item dict before normalisation (e.g.
    ``planetary_computer.sign_inplace`` to sign Planetary Computer asset hrefs). ``allow`` checks the
    API URL, every request and redirect, and the asset hrefs of the items (default: anything).
    ``max_search_items`` caps the items one search pages through (``ItemLimitError`` beyond it; None: no cap),
    ``max_response_bytes`` the body of each answer (``lulc.stac_io.ResponseLimitError``).
    """

    def __init__(
        self,
        url: str,
        collections: Sequence[str] | None = None,
        *,
        max_retries: int = 3,
        backoff_factor: float = 0.5,
        timeout: float = 30.0,
        mask_classes: Sequence[int] | None = None,
        modifier: Callable[[Any], None] | None = None,
        allow: AllowList | None = None,
        max_search_items: int | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.allow = (allow or AllowList.anything()).without_local()
        self.url = self.allow.check(url, "STAC API")
        self.modifier = modifier
        self.collections = list(collections) if collections else None
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        self.timeout = timeout
        self.mask_classes = mask_classes
        self.max_search_items = _check_cap(max_search_items)
        self.max_response_bytes = max_response_bytes
        self._client: Any = None

    def describe(self) -> str:
        """``STAC API <url> (<collections>)``."""
        return f"STAC API {self.url}{_collections_suffix(self.collections)}"

    def __str__(self) -> str:
        return self.describe()

    def _stac_io(self) -> CheckedStacApiIO:
        http = CheckedHttp(
            self.allow,
            max_retries=self.max_retries,
            backoff=self.backoff_factor,
            timeout=self.timeout,
            max_response_bytes=self.max_response_bytes,
        )
        return CheckedStacApiIO(http)

    def _open(self) -> Any:
        if self._client is None:
            from pystac_client import Client

            with _api_errors(self.url):
                self._client = Client.open(self.url, stac_io=self._stac_io(), modifier=self.modifier)
        return self._client

    def search_parameters(self, params: SearchParams) -> dict[str, Any]:
        """Keyword arguments for ``pystac_client.Client.search`` (the cloud limit as a numeric query)."""
        kwargs: dict[str, Any] = {"method": "POST", "limit": PAGE_SIZE}
        if self.collections:
            kwargs["collections"] = self.collections
        if params.bbox is not None:
            kwargs["bbox"] = [float(v) for v in params.bbox]
        if params.intersects is not None:
            kwargs["intersects"] = params.intersects
        if params.datetime is not None:
            kwargs["datetime"] = format_datetime(params.datetime)
        if params.max_cloud_cover is not None:
            # A dict with a number: the list-of-strings form would send {"lte": "20"}, a string.
            kwargs["query"] = {"eo:cloud_cover": {"lte": float(params.max_cloud_cover)}}
        return kwargs

    def search(
        self,
        *,
        bbox: BBox | None = None,
        intersects: dict[str, Any] | None = None,
        datetime: str | None = None,
        max_cloud_cover: float | None = None,
        limit: int | None = None,
    ) -> list[NormalizedItem]:
        """Search the API, page through the results, normalise and sort them.

        Raises:
            ItemLimitError: more than ``max_search_items`` items match (found on reading one more).
        """
        params = SearchParams(bbox, intersects, datetime, max_cloud_cover, limit)
        _check_limit(limit)
        _search_geometry(bbox, intersects)  # validates before any request
        kwargs = self.search_parameters(params)
        cap = self.max_search_items
        if cap is not None:  # one more than the cap: an API that always has a next page is stopped there
            kwargs["max_items"] = cap + 1
        client = self._open()
        with _api_errors(self.url), warnings.catch_warnings():
            # pystac-client warns when the API lacks a conformance class; the search still runs.
            warnings.simplefilter("ignore")
            if limit is not None and _conforms_to_sort(client):
                # The server sorts like we do, so only the first `limit` items need fetching.
                kwargs["sortby"] = [
                    {"field": "properties.datetime", "direction": "asc"},
                    {"field": "id", "direction": "asc"},
                ]
                kwargs["max_items"] = limit if cap is None else min(limit, cap + 1)
            search = client.search(**kwargs)
            raw = list(search.items_as_dicts())
        if cap is not None and len(raw) > cap:
            raise ItemLimitError(
                f"more than {cap:,} items of {self.describe()} match {params.describe()}, over the limit of "
                f"{cap:,} one search may read; narrow the datetime window or the AOI"
            )
        items = (checked_item(normalize_item(feature, self.mask_classes), self.allow) for feature in raw)
        return _sorted(items, limit)


@contextmanager
def _api_errors(url: str) -> Iterator[None]:
    """Turns pystac-client / requests failures into one ``SourceError`` naming the URL and status.

    The server's answer itself is never quoted: it may be an internal page the caller must not see.
    """
    import requests
    from pystac_client.exceptions import APIError

    try:
        yield
    except LulcError:
        raise
    except APIError as exc:
        status = getattr(exc, "status_code", None)
        if status is not None:
            kind = SourceUnavailableError if temporary_status(status) else SourceError
            raise kind(f"STAC API {url} answered HTTP {status}") from exc
        raise SourceError(f"STAC API {url} could not be read: {short_reason(exc)}") from exc
    except requests.RequestException as exc:
        raise SourceUnavailableError(f"STAC API {url} could not be reached: {short_reason(exc)}") from exc
    except Exception as exc:  # anything else from deep inside pystac-client: still one clear error
        cause = _lulc_cause(exc)
        if cause is not None:
            raise cause from None
        raise SourceError(f"STAC API {url} failed: {type(exc).__name__}") from exc


_SORT_CONFORMANCE = re.compile(r"^https://api\.stacspec\.org/v1\.\d+\.\d+[^#]*/item-search#sort$")


def _conforms_to_sort(client: Any) -> bool:
    """Whether the API announces item-search sort, any 1.x version (pystac-client knows only 1.0.x)."""
    return any(_SORT_CONFORMANCE.match(uri) for uri in client.get_conforms_to())


# ---------------------------------------------------------------------------------------------
# Static catalog / ItemCollection


CATALOGS_BESIDE_ITEMS = 1000
"""Documents a walk under ``max_search_items`` may read beyond three per item (``CheckedStacIO``'s cap)."""


def walk_items(catalog: pystac.Catalog) -> Iterator[pystac.Item]:
    """Every item under ``catalog`` in pystac's order (its items, then each child's, depth first), each once.

    pystac's ``get_items(recursive=True)`` recurses without remembering where it has been: a catalog that
    links itself or an ancestor as a child ended in RecursionError (HTTP review), and a catalog or item
    linked twice was read twice. Here each catalog and item (by its href) is taken once, on an explicit
    stack, so a deep chain of catalogs is no recursion either.
    """
    seen: set[str] = set()

    def first_time(obj: pystac.STACObject) -> bool:
        key = obj.get_self_href() or f"object {id(obj)}"
        if key in seen:
            return False
        seen.add(key)
        return True

    stack: list[Iterator[pystac.Catalog]] = [iter([catalog])]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
        elif first_time(node):
            yield from (item for item in node.get_items() if first_time(item))
            stack.append(iter(node.get_children()))


class StaticCatalogSource:
    """A static STAC catalog, collection or ItemCollection file (path or http URL), searched client-side.

    Every document (the file, child and item links) is read through ``lulc.stac_io.CheckedStacIO``
    with ``allow`` (default: anything); reads over HTTP are retried on 429/5xx and dropped connections,
    and bounded by ``http``'s ``max_response_bytes``. The catalog is walked up to one item more than
    ``max_search_items`` (if given): a catalog that has it is refused (``ItemLimitError``) for any search.
    """

    def __init__(
        self,
        path_or_url: str | Path,
        collections: Sequence[str] | None = None,
        *,
        mask_classes: Sequence[int] | None = None,
        allow: AllowList | None = None,
        http: CheckedHttp | None = None,
        max_search_items: int | None = None,
    ) -> None:
        allow = allow or AllowList.anything()
        location = allow.location(str(path_or_url), "catalog")
        if location.scheme == "s3":
            raise SourceError(f"catalog {location.href}: s3:// catalogs are not supported, use an https URL")
        self.location = location.href
        self.remote = not location.is_local
        self.allow = allow.without_local() if self.remote else allow
        # one list for the file, its links, their redirects and the asset hrefs
        self.http = dataclasses.replace(http, allow=self.allow) if http else CheckedHttp(self.allow)
        self.collections = list(collections) if collections else None
        self.mask_classes = mask_classes
        self.max_search_items = _check_cap(max_search_items)
        self._items: list[pystac.Item] | None = None
        if location.is_local and not Path(self.location).exists():
            raise SourceError(f"catalog {self.location} does not exist")

    def describe(self) -> str:
        """``static catalog <path> (<collections>)``."""
        return f"static catalog {self.location}{_collections_suffix(self.collections)}"

    def __str__(self) -> str:
        return self.describe()

    def items(self) -> list[pystac.Item]:
        """Every item of the catalog or file (read once, then cached).

        Raises:
            ItemLimitError: the catalog holds more than ``max_search_items`` items.
        """
        if self._items is None:
            self._items = self._load()
        return self._items

    def _load(self) -> list[pystac.Item]:
        href = self.location
        cap = self.max_search_items
        # the items and twice as many catalogs at most: a walk of catalogs alone is bounded too
        io = CheckedStacIO(self.http, href, None if cap is None else 3 * cap + CATALOGS_BESIDE_ITEMS)
        try:
            data = io.read_json(href)
        except LulcError:
            raise
        except FileNotFoundError as exc:
            raise SourceError(f"catalog {href} does not exist") from exc
        except json.JSONDecodeError as exc:
            raise SourceError(f"catalog {href} is not JSON: {exc}") from exc
        except Exception as exc:  # OSError and the like: the reason, never the content
            raise SourceError(f"catalog {href} could not be read: {type(exc).__name__}") from exc
        if not isinstance(data, dict):
            raise SourceError(f"catalog {href} is not a STAC catalog, collection or ItemCollection")
        if cap is not None and isinstance(data.get("features"), list) and len(data["features"]) > cap:
            raise self._too_many(cap)
        try:
            if data.get("type") == "FeatureCollection":
                collection = pystac.ItemCollection.from_dict(data, preserve_dict=False)
                items = list(collection.items)
                for item in items:
                    self_link = item.get_single_link("self")
                    if self_link is None:
                        # Relative asset hrefs in an ItemCollection file are relative to that file.
                        item.set_self_href(_join(href, f"{item.id}.json"))
                return items
            if data.get("type") == "Feature":
                return [pystac.Item.from_dict(data, href=href, preserve_dict=False)]
            obj = pystac.read_dict(data, href=href, stac_io=io)
        except Exception as exc:  # pystac raises STACError, KeyError, ValueError on malformed catalogs
            raise _lulc_cause(exc) or SourceError(
                f"catalog {href} could not be read as STAC: {type(exc).__name__}"
            ) from None
        if not isinstance(obj, pystac.Catalog):
            raise SourceError(f"catalog {href} is a {type(obj).__name__}, not a catalog or collection")
        obj._stac_io = io  # child and item links are read through the checked I/O, not StacIO.default()
        try:  # the walk stops at one item over the cap: the rest of a huge catalog is never read
            walked = list(itertools.islice(walk_items(obj), None if cap is None else cap + 1))
        except Exception as exc:  # a broken or refused child link
            raise _lulc_cause(exc) or SourceError(
                f"catalog {href} has an unreadable child or item: {type(exc).__name__}"
            ) from None
        if cap is not None and len(walked) > cap:
            raise self._too_many(cap)
        return walked

    def _too_many(self, cap: int) -> ItemLimitError:
        return ItemLimitError(
            f"{self.describe()} holds more than {cap:,} items, over the limit of {cap:,} one search may "
            "read (a static catalog is read whole, whatever the search); search a STAC API instead"
        )

    def search(
        self,
        *,
        bbox: BBox | None = None,
        intersects: dict[str, Any] | None = None,
        datetime: str | None = None,
        max_cloud_cover: float | None = None,
        limit: int | None = None,
    ) -> list[NormalizedItem]:
        """Filter the catalog's items client-side with the STAC API's semantics; sorted by (datetime, id)."""
        _check_limit(limit)
        geometry = _search_geometry(bbox, intersects)
        interval = parse_datetime_interval(datetime)
        matches = [
            item
            for item in self.items()
            if _matches(item, self.collections, geometry, interval, max_cloud_cover)
        ]
        normalized = (checked_item(normalize_item(item, self.mask_classes), self.allow) for item in matches)
        return _sorted(normalized, limit)


def _matches(
    item: pystac.Item,
    collections: Sequence[str] | None,
    geometry: BaseGeometry | None,
    interval: tuple[dt.datetime | None, dt.datetime | None] | None,
    max_cloud_cover: float | None,
) -> bool:
    if collections and item.collection_id not in collections:
        return False
    if max_cloud_cover is not None:
        cloud = item.properties.get("eo:cloud_cover")
        if not isinstance(cloud, int | float) or not cloud <= max_cloud_cover:
            return False
    if interval is not None and not _overlaps(item, interval):
        return False
    if geometry is not None:
        if item.geometry is None:
            return False
        if not shapely.geometry.shape(item.geometry).intersects(geometry):
            return False
    return True


def _overlaps(item: pystac.Item, interval: tuple[dt.datetime | None, dt.datetime | None]) -> bool:
    start_text = item.properties.get("start_datetime")
    end_text = item.properties.get("end_datetime")
    item_start = pystac.utils.str_to_datetime(start_text) if isinstance(start_text, str) else item.datetime
    item_end = pystac.utils.str_to_datetime(end_text) if isinstance(end_text, str) else item.datetime
    if item_start is None or item_end is None:
        return False
    start, end = interval
    if end is not None and item_start > end:
        return False
    return not (start is not None and item_end < start)


def _join(base: str, name: str) -> str:
    if "://" in base:
        return base.rsplit("/", 1)[0] + "/" + name
    return str(Path(base).resolve().parent / name)


def open_source(
    url_or_path: str | Path,
    collections: Sequence[str] | None = None,
    *,
    mask_classes: Sequence[int] | None = None,
    allow: AllowList | None = None,
    max_search_items: int | None = None,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
) -> ItemSource:
    """A ``StaticCatalogSource`` for a path or a URL ending ``.json``, else a ``StacApiSource``.

    ``allow`` checks the location and everything read from it (default: anything, still normalised).
    ``max_search_items`` caps the items one search reads (None: no cap, the command line's trusted use),
    ``max_response_bytes`` each response's body.

    Raises:
        HostNotAllowedError: The location is malformed or not on ``allow``.
        SourceError: A local catalog path does not exist.
    """
    checked = allow or AllowList.anything()
    location = checked.location(str(url_or_path), "STAC source")
    if location.scheme in ("http", "https") and not location.path.lower().endswith((".json", ".geojson")):
        return StacApiSource(
            location.href,
            collections,
            mask_classes=mask_classes,
            allow=allow,
            max_search_items=max_search_items,
            max_response_bytes=max_response_bytes,
        )
    return StaticCatalogSource(
        location.href,
        collections,
        mask_classes=mask_classes,
        allow=allow,
        http=CheckedHttp(checked, max_response_bytes=max_response_bytes),  # its allow-list is the source's
        max_search_items=max_search_items,
    )
