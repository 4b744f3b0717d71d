"""Every GDAL configuration option lulc-stac sets, in one place, each with the reason for it."""

from __future__ import annotations

from collections.abc import Mapping

import rasterio

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
    # A bounded raster block cache (MiB; rasterio wants an int here): memory stays flat however large the AOI.
    "GDAL_CACHEMAX": 256,
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
