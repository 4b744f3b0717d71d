"""What a GDAL failure to read a raster means: nothing there, not a raster, its server failing, or bad bytes.

One reading of GDAL's messages for both uses: the classifier's reads (retry, and exit 75, only for a server
failing) and the tiler's statuses (404, 400, 502).
"""

from __future__ import annotations

import re
from typing import Literal

from rasterio.errors import RasterioError, RasterioIOError

FailureKind = Literal["missing", "not-a-raster", "upstream", "unreadable"]
"""``missing``: no file or object there (``No such file``, HTTP 404); ``not-a-raster``: bytes GDAL reads as no
raster format; ``upstream``: the server failed (any other HTTP or curl error: 5xx, a refused or dropped
connection, a timeout); ``unreadable``: anything else (a corrupt or truncated file)."""

_NOT_FOUND = re.compile(r"No such file|does not exist|HTTP response code: 404|\b404\b", re.IGNORECASE)
_NOT_RASTER = re.compile(r"not recognized as (being in )?a supported file format|not a (valid )?TIFF", re.I)
_REMOTE = re.compile(r"HTTP|curl", re.IGNORECASE)


def failure_kind(exc: RasterioError) -> FailureKind:
    """The kind of ``exc``, from GDAL's message (GDAL gives no error code that tells these apart)."""
    text = str(exc)
    if _NOT_FOUND.search(text):
        return "missing"
    if _NOT_RASTER.search(text):
        return "not-a-raster"
    if isinstance(exc, RasterioIOError) and _REMOTE.search(text):
        return "upstream"
    return "unreadable"


def reason(exc: BaseException) -> str:
    """GDAL's own words for a failure, on one line.

    rasterio's "Read failed. See previous exception for details." says only that GDAL reported an error
    before; that error is its cause (``IReadBlock failed at X offset 1, Y offset 0: TIFFReadEncodedTile()
    failed``), which the message then names (CLI review: a cut-short COG's error hid it).
    """
    cause = exc.__cause__
    text = str(cause) if cause is not None and "See previous exception" in str(exc) else str(exc)
    return " ".join(text.split())


def may_pass(exc: RasterioError, remote: bool) -> bool:
    """Whether reading again, later, may succeed: never for a file or object that is not there.

    A remote raster's server failing may pass, and so may any other failure to read it: GDAL reports a
    body cut off during the open as "not recognized as being in a supported file format", the words it
    has for a file that is no raster (``tests/lulc/test_http_reads.py``). A local file's failure stays.
    """
    kind = failure_kind(exc)
    return kind == "upstream" or (remote and kind != "missing")
