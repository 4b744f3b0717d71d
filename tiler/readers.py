"""rio-tiler readers bound to the allow-list: a STAC item's assets are read only from permitted prefixes."""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar

import pystac
import rasterio
from rio_tiler.io import Reader, STACReader
from rio_tiler.types import AssetInfo, AssetType

from lulc.gdal_env import REMOTE_RASTER_DRIVER, ingested_bytes_at_open
from lulc.sas import SasSigner, token_url_for
from lulc.settings_types import BLOB_HOSTS
from lulc.stac_io import CheckedHttp
from tiler.allowlist import AllowList
from tiler.colormaps import MAX_JSON_BYTES, MAX_JSON_SECONDS, document_errors, is_remote, read_document
from tiler.errors import NotARasterError

SMALL_LEVEL = 512
"""Pixels a side of a map level small enough to read whole for one tile (two tiles' width)."""


class GTiffReader(Reader):
    """rio-tiler's ``Reader`` opening its dataset with the GTiff driver only (``REMOTE_RASTER_DRIVER``).

    GDAL would otherwise take a VRT served under a ``.tif`` name for what its content says, and read any
    local file or URL that VRT names: outside the allow-list the path passed.
    """

    def __attrs_post_init__(self) -> None:
        if not self.dataset:
            self.dataset = self._ctx_stack.enter_context(
                rasterio.open(self.input, driver=REMOTE_RASTER_DRIVER)
            )
        super().__attrs_post_init__()

    @property
    def minzoom(self) -> int:
        """The lowest zoom a tile is served at: the scheme's lowest when the map is cheap to draw whole.

        rio-tiler puts it where a theoretical overview of one tile would be: a map of 226 x 226 pixels got
        ``minzoom = maxzoom = 14`` in its TileJSON, so a client honouring that showed nothing when zoomed
        out (web map review). When the map's coarsest level (its smallest overview, or the map itself) is at
        most ``SMALL_LEVEL`` pixels a side, a tile at any lower zoom reads no more than that level: every zoom
        of the scheme is real. A larger coarsest level keeps rio-tiler's zoom.
        """
        derived = int(self._minzoom)
        if self.dataset is None or not self.width or not self.height:
            return derived
        overviews = self.dataset.overviews(1)
        coarsest = max(int(self.width), int(self.height)) / (max(overviews) if overviews else 1)
        if coarsest <= SMALL_LEVEL:
            return min(derived, int(self.tms.minzoom))
        return derived


class AllowedSTACReader(STACReader):
    """``STACReader`` that refuses asset hrefs outside the allow-list and reports bad items clearly."""

    allow: ClassVar[AllowList]
    max_bytes: ClassVar[int] = MAX_JSON_BYTES
    """Largest item document read (``LULC_TILER_MAX_RESPONSE_BYTES``): rio-tiler's own fetch reads any."""
    signers: ClassVar[SignerCache]
    """The SAS signers of asset hrefs (``lulc.sas``), one per token service, kept across tiles."""

    def __attrs_post_init__(self) -> None:
        self.reader = GTiffReader  # every asset opened as GTiff, like a /cog/ URL
        try:
            if self.item is None and self.input is not None:
                self.item = pystac.Item.from_dict(self._fetch_item(self.input), self.input)
            super().__attrs_post_init__()
        except (
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            pystac.STACError,
            pystac.STACTypeError,
            OSError,
        ) as exc:
            raise NotARasterError(f"{self.input} is not a STAC item: {exc}") from exc

    def _fetch_item(self, location: str) -> dict[str, Any]:
        """The item document at ``location``, read within ``max_bytes`` (kept a minute: every tile asks).

        rio-tiler's own fetch reads any length: an endless item grew the tiler by 2.6 GB in 12 s (review).
        """
        key = _document_key(location, self.max_bytes)
        body = _ITEMS.get(key)
        if body is None:
            with document_errors(location, "STAC item"):
                body = read_document(location, 10.0, self.max_bytes, MAX_JSON_SECONDS)
            _ITEMS.put(key, body)
        data = json.loads(body)
        if not isinstance(data, dict):
            raise NotARasterError(f"{location} is not a STAC item: not a JSON object")
        return data

    def _get_asset_info(self, asset: AssetType) -> AssetInfo:
        with warnings.catch_warnings():
            # rio-tiler warns for every raster:bands entry without statistics, i.e. on every tile
            warnings.filterwarnings("ignore", message="Some statistics data in STAC are invalid")
            info = super()._get_asset_info(asset)
        # Checked, normalised and with its redirects resolved: GDAL opens exactly this. A remote item's
        # hrefs name no local file, allowed folder or not (HTTP review: an item served from an allowed
        # host read the tiler's own disk), as the service reads them (``AllowList.without_local``).
        allow = self.allow.without_local() if is_remote(str(self.input)) else self.allow
        info["url"] = allow.gdal_path(info["url"], f"asset {asset!r}")
        # a blob behind SAS tokens (the Planetary Computer's) is opened signed; errors are redacted
        signer = self.signers.signer(str(self.input or ""))
        if signer is not None:
            info["url"] = signer.sign(info["url"])
        # GDAL options from the item: only the header size rio-tiler passes, capped (review: 1.5e9 made
        # every open read 10 MiB)
        size = ingested_bytes_at_open((info.get("env") or {}).get("GDAL_INGESTED_BYTES_AT_OPEN"))
        if size is None:
            info.pop("env", None)
        else:
            info["env"] = {"GDAL_INGESTED_BYTES_AT_OPEN": size}
        return info


class _RecentDocuments:
    """Documents read in the last ``ttl`` seconds, ``max_bytes`` in all (the oldest dropped first).

    A tile of a ``/stac`` route opens its item again: rio-tiler's fetch kept every item it read, without
    bound; this keeps the recent ones for as long as a map is panned.
    """

    def __init__(self, ttl: float = 60.0, max_bytes: int = 64 * 2**20) -> None:
        self.ttl, self.max_bytes = ttl, max_bytes
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._size = 0

    def get(self, location: str) -> bytes | None:
        """The document read at ``location`` less than ``ttl`` seconds ago, or None."""
        with self._lock:
            kept = self._kept.get(location)
            if kept is None or time.monotonic() - kept[0] > self.ttl:
                return None
            return kept[1]

    def put(self, location: str, body: bytes) -> None:
        """Keep ``body`` for ``location`` (not if it alone is over ``max_bytes``)."""
        if len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._kept.pop(location, None)
            self._size -= len(old[1]) if old else 0
            self._kept[location] = (time.monotonic(), body)
            self._size += len(body)
            while self._size > self.max_bytes:
                _, (_, dropped) = self._kept.popitem(last=False)
                self._size -= len(dropped)


def _document_key(location: str, max_bytes: int) -> str:
    """What a kept document is found by: a local file's size and time too, so a rewritten item is read anew.

    A remote item is kept ``_RecentDocuments.ttl`` seconds (diff review: a local run rewritten in place was
    served its old item for a minute).
    """
    if is_remote(location):
        return f"{max_bytes} {location}"
    try:
        stat = os.stat(location)
    except OSError:
        return f"{max_bytes} {location}"  # read_document says what is wrong with it
    return f"{max_bytes} {stat.st_mtime_ns} {stat.st_size} {location}"


_ITEMS = _RecentDocuments()


class SignerCache:
    """The SAS signer of the items at each location (``lulc.sas.signer_for``), one per token service.

    Every tile opens its item anew: the signers, and the tokens they keep, outlive the readers.
    """

    def __init__(self, allow: AllowList, configured: str | None, hosts: Sequence[str] = BLOB_HOSTS) -> None:
        self.allow, self.configured, self.hosts = allow, configured, tuple(hosts)
        self._lock = threading.Lock()
        self._signers: dict[str, SasSigner] = {}

    def signer(self, item_location: str) -> SasSigner | None:
        """The signer for an item at ``item_location``, or None when its hrefs need none."""
        token_url = token_url_for(item_location, self.configured)
        if token_url is None:
            return None
        with self._lock:
            if token_url not in self._signers:
                self._signers[token_url] = SasSigner(CheckedHttp(self.allow), token_url, self.hosts)
            return self._signers[token_url]


def allowed_stac_reader(
    allow: AllowList, max_bytes: int = MAX_JSON_BYTES, signers: SignerCache | None = None
) -> type[AllowedSTACReader]:
    """A STAC reader class whose asset hrefs pass ``allow`` and whose items are read within ``max_bytes``.

    ``signers``: SAS signing of asset hrefs (default: the Planetary Computer's for items on its API).
    """
    attributes: dict[str, Any] = {
        "allow": allow,
        "max_bytes": max_bytes,
        "signers": signers if signers is not None else SignerCache(allow, None),
        "__doc__": AllowedSTACReader.__doc__,
    }
    return type("LulcSTACReader", (AllowedSTACReader,), attributes)
