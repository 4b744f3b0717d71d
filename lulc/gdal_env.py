"""Every GDAL configuration option lulc-stac sets, in one place, each with the reason for it.

Also what GDAL may open (``gdal_href``: allow-listed, redirects checked, since GDAL follows them on its
own) and how to make a retry really re-send (``forget_cached_reads``).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import rasterio

from lulc.allowlist import AllowList
from lulc.urls import HostNotAllowedError, parse_location, redirect_url

GDAL_OPTIONS: dict[str, str | int] = {
    # Do not list the COG's "directory" looking for sidecars: cuts a COG open over HTTP from
    # about 13 requests to 3.
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    # Only .tif/.tiff URLs are files: no probing for .aux.xml, .ovr or .msk next to them.
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF",
    # Read the first 64 KiB at open: the header and tile index of a 10k x 10k COG in one request.
    "GDAL_INGESTED_BYTES_AT_OPEN": "65536",
    # Adjacent tiles of one window are fetched with one ranged GET instead of one per tile.
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    # Reuse one connection for several ranges where the server speaks HTTP/2.
    "GDAL_HTTP_MULTIPLEX": "YES",
    # Transient failures (429, 5xx, dropped connections) are retried with back-off, not fatal.
    "GDAL_HTTP_MAX_RETRY": "5",
    "GDAL_HTTP_RETRY_DELAY": "0.2",
    # A stalled server fails the read in bounded time instead of hanging a worker forever.
    "GDAL_HTTP_TIMEOUT": "60",
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    # Keep fetched byte ranges per file handle, so overlapping windows are not fetched twice.
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": "67108864",
    # The raster block cache, in BYTES: rasterio takes an int as bytes (this line once said MiB; it was
    # bytes all along). So small that GDAL keeps only the blocks in use: memory stays flat however large
    # the AOI. Measured 2026-12-01 against 256 MiB, runs taking turns: the same CPU time on the 25 Mpx
    # STAC bench scene over HTTP, on the 26 Mpx 512-tiled pixel-interleaved image and on a 1024-tiled
    # band-interleaved copy of it, and 40-70 MiB less peak RSS.
    "GDAL_CACHEMAX": 256,
}


WARP_TOLERANCE = 1e-4
"""Error threshold (source pixels) of every ``WarpedVRT``: GDAL's approximate transformer interpolates the
source coordinates along each output line within this error. At GDAL's default (0.125 px) the source pixel
a target pixel takes depended on where the target pixel fell inside its block, so training (blocks from
the imagery's origin) and classification (blocks from the AOI's corner), or two block sizes, read 0.1-1 %
of the pixels of an item in another UTM zone from a neighbouring source pixel. Measured 2026-12-01 (a
zone-55 raster read on a 1024 px zone-54 grid in blocks of 1024, 512 and 256, ``tests/lulc/
test_warp_layout.py``): 9,963 and 12,427 pixels differed at 0.125, 2 and 2 at 1e-4, none at 1e-5; on the
demo world with one item moved to the next zone, training's and classification's blocks read 591 of
591,015 pixels differently at 0.125, 21 at 1e-4, 2 at 1e-5. A 512 px warp took 1.5x the default's time at
1e-4, 6x at 1e-5 and 15x with the exact transformer (rasterio refuses 0; 1e-6 amounts to it), which alone
makes a difference impossible: reads from another CRS only pay for it, and only they can differ."""

REMOTE_RASTER_DRIVER = "GTiff"
"""The one GDAL driver a raster named by a request, a STAC item or a tiler URL is opened with (COGs are
GTiff). Without it GDAL picks the driver from the file's content, and a VRT served as ``map.tif`` from an
allowed host reads whatever local file or URL it names (a ``VRTRawRasterBand``, a ``/vsicurl/`` source),
outside the allow-list. Local images a user names on the command line may be any format GDAL reads."""


LOCAL_FILE_OPTIONS: dict[str, str | int] = {
    # A local file is read through the operating system's page cache: the per-file cache above, kept for
    # reads over HTTP, would only hold copies. Measured 2026-12-01: a COG translation (one read of the
    # local staging map and its overview levels, ``translate_to_cog`` in one process) of a 10,000 x 10,000
    # px one-band map added 70 MiB to its peak RSS with it (two bands: 140), 0 without, in the same time;
    # whole runs no longer climb 300 -> 488 MiB at their end. A local image kept open by each reader thread
    # (``lulc.pixels.image``) grew a 26 Mpx run from 270 to 400 MiB with it.
    "VSI_CACHE": "FALSE",
}
"""Overrides of ``GDAL_OPTIONS`` for opening local files (COG translation, local images' readers)."""


def answering_options(timeout_seconds: int) -> dict[str, str | int]:
    """Overrides of ``GDAL_OPTIONS`` for a process that answers people while they wait (the tiler).

    ``GDAL_OPTIONS`` suit a batch run: 60 s a request and 5 retries, and GDAL retries a request that timed
    out too, so one read of an allowed host that accepts and never answers held a tiler thread for over
    6 minutes (HTTP review), and a few dozen such tiles fill the thread pool every route shares. Here a
    request gets ``timeout_seconds`` (connecting: 10 s at most) and one retry: a stalled host costs a read
    about twice ``timeout_seconds``, then an error (502).
    """
    return {
        "GDAL_HTTP_TIMEOUT": str(timeout_seconds),
        "GDAL_HTTP_CONNECTTIMEOUT": str(min(10, timeout_seconds)),
        "GDAL_HTTP_MAX_RETRY": "1",
    }


def gdal_options(overrides: Mapping[str, str | int] | None = None) -> dict[str, str | int]:
    """The options above with ``overrides`` applied on top."""
    options = dict(GDAL_OPTIONS)
    if overrides:
        options.update(overrides)
    return options


def gdal_env(overrides: Mapping[str, str | int] | None = None) -> rasterio.Env:
    """A ``rasterio.Env`` carrying lulc-stac's GDAL options (plus ``overrides``)."""
    return rasterio.Env(**gdal_options(overrides))


# ---------------------------------------------------------------------------------------------
# What GDAL may open, and forgetting what it cached


_REDIRECT_TTL = 600.0
"""Seconds a URL's redirect check stays valid."""
MAX_INGESTED_BYTES_AT_OPEN = 1 << 20
"""The most an item's ``file:header_size`` may raise ``GDAL_INGESTED_BYTES_AT_OPEN`` to (rio-tiler passes it
on): a COG's header and tile index fit (about 200 KiB for a 10,980 px tile with its overviews); a STAC item
asking for more would make every open read up to GDAL's own 10 MiB cap."""


def ingested_bytes_at_open(header_size: object) -> str | None:
    """``GDAL_INGESTED_BYTES_AT_OPEN`` for an item's ``file:header_size``, capped; None: not a size."""
    try:
        size = int(float(str(header_size)))
    except (ValueError, OverflowError):
        return None
    return str(min(size, MAX_INGESTED_BYTES_AT_OPEN)) if size > 0 else None


_checked_redirects: dict[tuple[AllowList, str], tuple[float, str]] = {}
_checked_lock = threading.Lock()


def gdal_href(href: str, allow: AllowList, what: str = "raster", *, timeout: float = 10.0) -> str:
    """The path or URL GDAL may open for ``href``: normalised, allow-listed, its redirects checked.

    GDAL follows HTTP redirects by itself and cannot be told not to: GDAL 3.10's ``cpl_http.cpp`` sets
    ``CURLOPT_FOLLOWLOCATION`` unconditionally (up to 10 hops), and neither a ``GDAL_HTTP_*`` nor a
    ``CPL_VSIL_CURL_*`` option turns it off. So before GDAL sees an http(s) URL we ask the server
    ourselves (a HEAD and a one-byte ranged GET, as GDAL sends, redirects not followed): a redirect is
    followed only if its target passes ``allow`` too; the final URL is returned. The service and the
    tiler still hand GDAL the href, whose redirects it follows again (their ``Location`` read alike:
    ``lulc.urls.redirect_url``), so a signed redirect stays fresh. The answer is remembered for 10
    minutes per URL. A server that answers us directly but redirects GDAL moments later
    is not caught: allow-list hosts you trust to that extent (object stores, your own servers).

    Raises:
        HostNotAllowedError: ``href``, or a redirect it leads to, is not allowed.
    """
    location = allow.location(href, what)
    if location.scheme not in ("http", "https"):
        return location.href
    key = (allow, location.href)
    now = time.monotonic()
    with _checked_lock:
        cached = _checked_redirects.get(key)
    if cached is not None and now - cached[0] < _REDIRECT_TTL:
        return cached[1]
    final = _follow_checked(location.href, allow, what, timeout)
    with _checked_lock:
        if len(_checked_redirects) > 4096:
            _checked_redirects.clear()
        _checked_redirects[key] = (now, final)
    return final


class GdalAllowList(AllowList):
    """An ``AllowList`` whose ``check`` is ``gdal_href``: for hrefs about to be handed to GDAL.

    A reader that checks each asset href with it before opening refuses assets whose server
    redirects off the list, although GDAL itself would follow the redirect.
    """

    def check(self, url: str, what: str = "URL") -> str:
        """``gdal_href(url, self, what)``: normalised, allowed, redirects resolved and checked."""
        return gdal_href(url, self, what)


MAX_REDIRECTS = 5
"""Redirects followed from one href; a longer chain (or a loop) is refused, not handed to GDAL unfinished."""


def _follow_checked(href: str, allow: AllowList, what: str, timeout: float, hops: int = MAX_REDIRECTS) -> str:
    current = href
    for _ in range(hops + 1):
        with ThreadPoolExecutor(max_workers=len(PROBES)) as pool:  # at once: one round trip, not two
            answers = list(
                pool.map(_redirect_target, [current] * len(PROBES), PROBES, [timeout] * len(PROBES))
            )
        targets = {
            method: redirect_url(current, target)
            for method, target in zip(PROBES, answers, strict=True)
            if target
        }
        if not targets:
            return current  # no redirect (or unreachable now: GDAL will say so, and retry, itself)
        # each target against the list itself (AllowList.check), not a GdalAllowList's check, which would
        # follow that hop's redirects again: a loop recursed until the stack ran out. Both must be allowed
        # (GDAL sends both); the GET's is followed (a signed redirect differs from request to request).
        checked = {m: AllowList.check(allow, t, f"redirect from {current} to") for m, t in targets.items()}
        current = checked.get("GET", checked.get("HEAD", current))
    raise HostNotAllowedError(f"{what} {href} redirects more than {hops} times; not followed")


PROBES = ("HEAD", "GET")
"""The requests GDAL sends a URL, each asked before it: a HEAD for the size, then ranged GETs. A server
redirecting only one of them would otherwise lead GDAL off the list."""


def _redirect_target(url: str, method: str, timeout: float) -> str | None:
    """Where ``url`` redirects ``method`` (a one-byte range for GET), or None.

    Any 3xx with a ``Location`` counts: libcurl, told to follow, follows every one (300 and 305 too), not
    only the five statuses that mean a redirect.
    """
    import requests

    headers = {"Range": "bytes=0-0"} if method == "GET" else {}
    try:
        with requests.request(
            method, url, headers=headers, allow_redirects=False, timeout=timeout, stream=True
        ) as response:
            location = response.headers.get("location")
            redirected = 300 <= response.status_code < 400 and bool(location)
    except requests.RequestException:
        return None
    return str(location) if redirected else None


def forget_cached_reads(href: str) -> None:
    """Drop what GDAL's ``/vsicurl/`` cached for ``href`` (sizes, chunks, a failed open).

    After an open fails (a 404, or 503s beyond ``GDAL_HTTP_MAX_RETRY``) GDAL remembers the failure, and
    a retry in the same process fails again without sending a request. Call this before retrying a
    read. It calls ``VSICurlPartialClearCache`` of the GDAL library rasterio loaded (rasterio does not
    expose it); a no-op when that library cannot be found. ``CPL_VSIL_CURL_NON_CACHED`` would avoid
    the stale failure too, but for every open of the listed prefixes, losing the cached header and
    tile index that keep a COG open at three requests.
    """
    function = _partial_clear_cache()
    if function is None:
        return
    try:
        location = parse_location(href)
    except HostNotAllowedError:
        return
    if location.scheme in ("http", "https"):
        prefix = f"/vsicurl/{location.href}"
    elif location.scheme == "s3":
        prefix = f"/vsis3/{location.href[len('s3://') :]}"
    else:
        return
    function(prefix.encode())


@functools.cache
def _partial_clear_cache() -> Any:
    """``VSICurlPartialClearCache`` from rasterio's GDAL, or None."""
    import ctypes
    import ctypes.util
    from pathlib import Path

    import rasterio._base

    candidates = sorted(Path(rasterio.__file__).resolve().parent.parent.glob("rasterio.libs/libgdal*"))
    names = [str(p) for p in candidates] + [ctypes.util.find_library("gdal") or ""]
    for name in names:
        if not name:
            continue
        try:
            library = ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
            function = library.VSICurlPartialClearCache
        except (OSError, AttributeError):
            continue
        function.argtypes = [ctypes.c_char_p]
        function.restype = None
        return function
    return None
