"""Class colours from the map itself (its STAC item's classification:classes, else its GDAL colour table)."""

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urljoin, urlsplit

import httpx
import rasterio
from fastapi import Depends, Query
from rio_tiler.colormap import ColorMaps, parse_color
from rio_tiler.types import ColorMapType
from starlette.concurrency import run_in_threadpool

from lulc.classes import NODATA, ClassTable, load_class_table, table_from_band_tags
from lulc.contract import load_contract
from lulc.errors import LulcError, UpstreamError
from lulc.gdal_env import REMOTE_RASTER_DRIVER, gdal_env
from tiler.errors import BadParameterError, NotAllowedError, NotFoundError

logger = logging.getLogger(__name__)

ITEM_NAME = "item.json"
"""The STAC item the classifier service writes next to ``classes.tif``."""

MAX_JSON_BYTES = 16 * 2**20
"""Largest JSON document ``read_json`` reads (``LULC_TILER_MAX_RESPONSE_BYTES``'s default): an item is kB."""

MAX_JSON_SECONDS = 30.0
"""Longest a remote JSON document may take to arrive, request to last byte."""

Source = Literal["stac", "colortable"]


@dataclass(frozen=True)
class MapClasses:
    """The class table of a map and where it came from."""

    table: ClassTable
    source: Source
    origin: str


def is_remote(location: str) -> bool:
    """Whether ``location`` is a URL rather than a local path."""
    return "://" in location


def sibling(location: str, name: str) -> str:
    """The path or URL of file ``name`` in the same folder as ``location``."""
    if is_remote(location):
        return urljoin(location, name)
    return str(Path(location).with_name(name))


class DocumentLimitError(Exception):
    """A JSON document over the size or time limit of one read."""


class DocumentSchemeError(Exception):
    """A remote location that is not http(s) (``s3://``): documents are read over http(s) or locally."""


class DocumentStatusError(Exception):
    """A remote JSON document answered with another status than 200."""

    def __init__(self, url: str, status: int) -> None:
        super().__init__(f"{url} answered HTTP {status}")
        self.status = status


def read_json(
    location: str,
    timeout: float = 10.0,
    max_bytes: int = MAX_JSON_BYTES,
    max_seconds: float = MAX_JSON_SECONDS,
) -> dict[str, Any] | None:
    """The JSON object at a path or URL; None when it does not exist or is not a JSON object.

    Neither is a document larger than ``max_bytes`` (a larger ``Content-Length`` is not read at all, a
    longer body or file is read no further) nor a remote one slower than ``max_seconds``: each is logged
    as a warning and answered None, like any other document that cannot be used.
    """
    try:
        data = json.loads(read_document(location, timeout, max_bytes, max_seconds))
    except DocumentLimitError as exc:
        logger.warning("ignoring %s: %s", location, exc)
        return None
    except (OSError, ValueError, httpx.HTTPError, DocumentStatusError, DocumentSchemeError) as exc:
        logger.debug("no JSON at %s: %s", location, exc)
        return None
    return data if isinstance(data, dict) else None


@contextmanager
def document_errors(location: str, what: str) -> Iterator[None]:
    """A request's own document (``what`` at ``location``) failing to arrive, as the tiler's errors.

    Not there (a missing file, HTTP 404): 404; its server failing or answering anything else but 200, or
    over the limits: 502 (HTTP review: a collection whose server answered 500 was a 404, "no collection");
    an ``s3://`` document: 400.
    """
    try:
        yield
    except DocumentSchemeError as exc:
        raise BadParameterError(
            f"{what} {location}: documents are read over http(s) or from local files, not s3:// (serve it "
            "over https; the rasters it names may stay on s3://)"
        ) from exc
    except DocumentStatusError as exc:
        if exc.status == 404:
            raise NotFoundError(f"{what} {location} does not exist (HTTP 404)") from exc
        raise UpstreamError(f"fetching {what} {location} failed: HTTP {exc.status}") from exc
    except DocumentLimitError as exc:
        raise UpstreamError(f"{what} {location} is not read: {exc}") from exc
    except FileNotFoundError as exc:
        raise NotFoundError(f"{what} {location} does not exist") from exc
    except OSError as exc:  # a folder, a file not ours to read: no document there (a 500 in review)
        raise NotFoundError(f"{what} {location} cannot be read: {exc.strerror or exc}") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"fetching {what} {location} failed: {exc}") from exc


def read_required_json(location: str, what: str, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any] | None:
    """The JSON object a request names (``document_errors`` if it cannot be read), or None if it is none."""
    with document_errors(location, what):
        body = read_document(location, 10.0, max_bytes, MAX_JSON_SECONDS)
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def read_document(location: str, timeout: float, max_bytes: int, max_seconds: float) -> bytes:
    """The bytes at a path or URL (no redirects followed), within ``max_bytes`` and ``max_seconds``.

    Raises:
        DocumentLimitError: larger or slower than the limits.
        DocumentStatusError: a remote answer other than 200.
        DocumentSchemeError: a remote location that is not http(s).
        OSError, httpx.HTTPError: the file or server could not be read.
    """
    if not is_remote(location):
        return _read_local(location, max_bytes)
    if not location.lower().startswith(("http://", "https://")):
        raise DocumentSchemeError(f"{location}: documents are read over http(s) or from local files")
    return _read_remote(location, timeout, max_bytes, max_seconds)


def _read_local(path: str, max_bytes: int) -> bytes:
    """The bytes of a local file, read no further than ``max_bytes`` (a device or FIFO never ends)."""
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise DocumentLimitError(f"larger than {max_bytes:,} bytes, the limit of one JSON document")
    return data


def _read_remote(url: str, timeout: float, max_bytes: int, max_seconds: float) -> bytes:
    """The body of a 200 answer to ``GET url`` (no redirects followed), streamed within the limits."""
    deadline = time.monotonic() + max_seconds
    with httpx.stream("GET", url, timeout=timeout, follow_redirects=False) as response:
        if response.status_code != 200:
            raise DocumentStatusError(url, response.status_code)
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > max_bytes:
            raise DocumentLimitError(
                f"Content-Length {int(declared):,} is over {max_bytes:,} bytes, the limit of one JSON "
                "document"
            )
        body = bytearray()
        for chunk in response.iter_bytes():  # what each network read brings (decoded), never more
            body += chunk
            if len(body) > max_bytes:
                raise DocumentLimitError(f"larger than {max_bytes:,} bytes, the limit of one JSON document")
            if time.monotonic() > deadline:
                raise DocumentLimitError(
                    f"took longer than {max_seconds:g} s, the limit of one JSON document"
                )
    return bytes(body)


def _classes_entries(holder: Mapping[str, Any]) -> Sequence[dict[str, Any]] | None:
    """``classification:classes`` of an asset/properties, or of its single raster band."""
    if isinstance(entries := holder.get("classification:classes"), list) and entries:
        return entries
    for key in ("raster:bands", "bands"):
        bands = holder.get(key)
        if isinstance(bands, list) and len(bands) == 1 and isinstance(bands[0], dict):
            inner = bands[0].get("classification:classes")
            if isinstance(inner, list) and inner:
                return inner
    return None


def classes_from_item(item: Mapping[str, Any], raster_name: str | None = None) -> ClassTable | None:
    """The class table of a STAC item.

    When an asset points at ``raster_name``, only that asset counts (a confidence COG next to the class
    map has no classes); otherwise the first asset with classes, then the item properties.
    """
    assets = item.get("assets")
    holders: list[Mapping[str, Any]] = (
        [a for a in assets.values() if isinstance(a, dict)] if isinstance(assets, dict) else []
    )
    if raster_name is not None:
        named = [
            a for a in holders if urlsplit(str(a.get("href", ""))).path.rsplit("/", 1)[-1] == raster_name
        ]
        if named:
            entries = _classes_entries(named[0])
            return ClassTable.from_stac(entries) if entries else None
    properties = item.get("properties")
    if isinstance(properties, dict):
        holders.append(properties)
    for holder in holders:
        entries = _classes_entries(holder)
        if entries:
            return ClassTable.from_stac(entries)
    return None


def classes_from_colortable(
    location: str, gdal_overrides: Mapping[str, str | int] | None = None
) -> ClassTable | None:
    """A class table from a raster's band tags and colour table, else its colour table alone.

    The tags (``CLASS_<value>=<name>``) are how lulc-stac names every map's classes: a map copied without
    its item had "class 1" to "class 6" for the names its tags hold (HTTP review). Of a colour table alone,
    GDAL pads it with opaque black up to its last entry, so those entries (and nodata) are skipped, and the
    names are the pixel values (GDAL category names are not exposed by rasterio).
    """
    with gdal_env(gdal_overrides), rasterio.open(location, driver=REMOTE_RASTER_DRIVER) as src:
        if src.count != 1:
            return None
        try:
            table = src.colormap(1)
        except ValueError:
            return None
        nodata = src.nodata
        try:
            named = table_from_band_tags(src.tags(1), table, "the map")  # the colour table read once
        except LulcError:  # tags that make no class table (a name twice, say): the colour table alone
            named = None
    if named is not None:
        return named
    rows = [
        {"value": value, "name": f"class {value}", "color": "#{:02x}{:02x}{:02x}".format(*rgba[:3])}
        for value, rgba in sorted(table.items())
        if value != nodata and value != NODATA and rgba[3] > 0 and tuple(rgba) != (0, 0, 0, 255)
    ]
    return ClassTable.model_validate({"classes": rows}) if rows else None


class ClassResolver:
    """Finds (and caches) the class table of a map: STAC item first, then the GDAL colour table.

    Local entries are keyed by the files' modification times, so a rewritten map is picked up at once;
    remote entries are kept for ``ttl`` seconds. An item larger than ``max_response_bytes`` is not read
    (``read_json``): the map then has no classes from its item. ``timeout``: seconds a read of an item may
    wait for its server; ``gdal_overrides``: the GDAL options a colour table is read under (the tiler's
    ``answering_options``).
    """

    def __init__(
        self,
        allowed: Callable[[str], object] | None = None,
        ttl: float = 60.0,
        maxsize: int = 256,
        max_response_bytes: int = MAX_JSON_BYTES,
        gdal_overrides: Mapping[str, str | int] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.allowed = allowed
        self.timeout = timeout
        self.gdal_overrides = gdal_overrides
        self.ttl = ttl
        self.maxsize = maxsize
        self.max_response_bytes = max_response_bytes
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str, object], tuple[float, MapClasses | None]] = OrderedDict()

    def _stamp(self, location: str) -> object:
        if is_remote(location):
            return None
        try:
            stat = Path(location).stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def _lookup(self, key: tuple[str, str, object]) -> tuple[bool, MapClasses | None]:
        """``(hit, value)`` of a cache key from the cache alone (never reads the item or raster)."""
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and (not is_remote(key[1]) or time.monotonic() - hit[0] < self.ttl):
                self._cache.move_to_end(key)
                return True, hit[1]
        return False, None

    def _cached(
        self, kind: str, location: str, compute: Callable[[], MapClasses | None]
    ) -> MapClasses | None:
        # The stamp is taken before reading: a file rewritten meanwhile is a miss next time, never stale.
        key = (kind, location, self._stamp(location))
        hit, value = self._lookup(key)
        if hit:
            return value
        now = time.monotonic()
        value = compute()
        with self._lock:
            self._cache[key] = (now, value)
            while len(self._cache) > self.maxsize:
                self._cache.popitem(last=False)
        return value

    def _item_of(self, location: str) -> tuple[str, str, str | None] | None:
        """``(cache kind, item location, raster name)`` of a map, None when its item is off the allow-list."""
        is_item = urlsplit(location).path.endswith(".json")
        item_location = location if is_item else sibling(location, ITEM_NAME)
        raster_name = None if is_item else urlsplit(location).path.rsplit("/", 1)[-1]
        if self.allowed is not None:
            try:
                self.allowed(item_location)
            except NotAllowedError:
                return None
        return f"item:{raster_name or ''}", item_location, raster_name

    def from_item_cached(self, location: str) -> tuple[bool, MapClasses | None]:
        """``from_item`` answered from the cache alone: ``(hit, value)``; a miss reads nothing."""
        found = self._item_of(location)
        if found is None:
            return True, None
        kind, item_location, _ = found
        return self._lookup((kind, item_location, self._stamp(item_location)))

    def from_item(self, location: str) -> MapClasses | None:
        """Classes from the STAC item of a map.

        The item is ``location`` itself if it is a ``.json`` file, else ``item.json`` beside it. None when
        there is no item or it carries no (valid) classes.
        """
        found = self._item_of(location)
        if found is None:
            return None
        kind, item_location, raster_name = found

        def compute() -> MapClasses | None:
            item = read_json(item_location, self.timeout, max_bytes=self.max_response_bytes)
            if item is None:
                return None
            try:
                table = classes_from_item(item, raster_name)
            except LulcError as exc:
                logger.warning("ignoring the classes of %s: %s", item_location, exc)
                return None
            return MapClasses(table, "stac", item_location) if table else None

        return self._cached(kind, item_location, compute)

    def from_colortable(self, location: str) -> MapClasses | None:
        """Classes from the raster's own colour table (None if it has none)."""

        def compute() -> MapClasses | None:
            table = classes_from_colortable(location, self.gdal_overrides)
            return MapClasses(table, "colortable", location) if table else None

        return self._cached("colortable", location, compute)

    def resolve(self, location: str) -> MapClasses:
        """The map's classes, or ``NotFoundError`` when neither its item nor its raster defines any."""
        found = self.from_item(location)
        if found is None and not urlsplit(location).path.endswith(".json"):
            found = self.from_colortable(location)  # a GDAL failure: 404, 400 or 502 as the handler reads it
        if found is None:
            raise NotFoundError(
                f"{location} has no class table: no classification:classes in its STAC item and no "
                "colour table"
            )
        return found


def named_class_tables(models_dir: Path | None, colormap_files: Sequence[Path]) -> dict[str, ClassTable]:
    """Class tables to register as named colormaps.

    ``lulc_<model name>`` for every model contract (``*.json``: MLM item or bare contract) and
    ``lulc_<stem>`` for every class-table YAML under ``models_dir``, and for each extra class-table file.
    """
    tables: dict[str, ClassTable] = {}
    candidates: list[Path] = list(colormap_files)
    if models_dir is not None:
        if not models_dir.is_dir():
            state = "is not a folder" if models_dir.exists() else "does not exist"
            raise NotFoundError(f"models folder {models_dir} {state}")
        candidates += sorted(p for p in models_dir.rglob("*") if p.suffix in (".json", ".yaml", ".yml"))
    for path in candidates:
        try:
            if path.suffix == ".json":
                contract = load_contract(path)
                tables[colormap_name(contract.name)] = contract.classes
            else:
                tables[colormap_name(path.stem)] = load_class_table(path)
        except LulcError as exc:
            if path in colormap_files:
                raise
            logger.info("skipping %s: not a model contract or class table (%s)", path, exc)
    return tables


def colormap_name(name: str) -> str:
    """The registered colormap name of a model or class table (lower case, ``lulc_`` prefix)."""
    safe = "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")
    return f"lulc_{safe}"


def register_class_colormaps(base: ColorMaps, tables: Mapping[str, ClassTable]) -> ColorMaps:
    """A new ``ColorMaps`` holding ``base`` plus one named colormap per class table."""
    custom: dict[str, Any] = {name: table.colormap() for name, table in tables.items()}
    return base.register(custom, overwrite=True) if custom else base


def _explicit(cmaps: ColorMaps, colormap_name: str | None, colormap: str | None) -> ColorMapType | None:
    if colormap_name:
        return cmaps.get(colormap_name)
    if colormap:
        try:
            parsed = json.loads(
                colormap, object_hook=lambda x: {int(k): parse_color(v) for k, v in x.items()}
            )
        except (ValueError, TypeError) as exc:
            raise BadParameterError(f"could not parse the colormap parameter: {exc}") from None
        if isinstance(parsed, list):
            try:  # [[[min, max], colour], ...]; [1] or [[1, 2]] were a TypeError, 500 (HTTP review)
                return [(tuple(inter), parse_color(v)) for (inter, v) in parsed]
            except (ValueError, TypeError) as exc:
                raise BadParameterError(
                    'a colormap list must hold [[min, max], colour] pairs, e.g. [[[0, 10], "#ff0000"]]: '
                    f"{exc}"
                ) from None
        if not isinstance(parsed, dict):
            raise BadParameterError("the colormap parameter must be a JSON object or list")
        return parsed
    return None


def named_colormap_dependency(cmaps: ColorMaps) -> Callable[..., Any]:
    """TiTiler's colormap dependency over our ``ColorMaps`` (a client asks by name or sends JSON).

    The dependencies here are ``async`` (FastAPI awaits them in the event loop, no thread-pool hop per
    tile); TiTiler's annotation says a plain callable, hence the ``Any`` return types.
    """
    names = tuple(cmaps.list())

    async def colormap_params(
        colormap_name: Annotated[
            str | None, Query(description=f"Name of a registered colormap (one of: {', '.join(names)}).")
        ] = None,
        colormap: Annotated[str | None, Query(description="JSON-encoded custom colormap.")] = None,
    ) -> ColorMapType | None:
        if colormap_name is not None and colormap_name not in names:
            raise BadParameterError(f"unknown colormap_name {colormap_name!r}")
        return _explicit(cmaps, colormap_name, colormap)

    return colormap_params


def class_colormap_dependency(
    cmaps: ColorMaps, resolver: ClassResolver, path_dependency: Callable[..., Any]
) -> Callable[..., Any]:
    """The ``ColorMapParams`` override of the COG tiler: the class colours come from the map itself.

    Order: an explicit ``colormap_name`` / ``colormap``; else the ``classification:classes`` of the
    map's STAC item (``item.json`` beside it); else None, so TiTiler renders with the dataset's own
    GDAL colour table (``colormap or dst_colormap`` in every image endpoint).
    """
    named = named_colormap_dependency(cmaps)

    async def class_colormap(
        explicit: Annotated[ColorMapType | None, Depends(named)],
        location: Annotated[str, Depends(path_dependency)],
    ) -> ColorMapType | None:
        if explicit is not None:
            return explicit
        # A cached answer costs no I/O, so it is given in the event loop; a miss reads the item in a thread.
        hit, found = resolver.from_item_cached(location)
        if not hit:
            found = await run_in_threadpool(resolver.from_item, location)
        return found.table.colormap() if found is not None else None

    return class_colormap
