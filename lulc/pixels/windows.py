"""Reading band 1 of a raster on one block of a grid: plain windows on the grid's lattice, else warped."""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from lulc.errors import InputError, ReadError, ReadUnavailableError
from lulc.gdal_env import REMOTE_RASTER_DRIVER, WARP_TOLERANCE, forget_cached_reads, gdal_env
from lulc.grid import Block, OutputGrid, normalize_crs
from lulc.raster_failures import failure_kind, may_pass, reason
from lulc.redaction import redact_signatures
from lulc.sas import HrefSigner
from lulc.stac_io import is_local_href


def gdal_path(href: str) -> str:
    """The GDAL path of an href: ``/vsicurl/`` for http(s), ``/vsis3/`` for s3, else the local path."""
    parsed = urlparse(href)
    if parsed.scheme in ("http", "https"):
        return f"/vsicurl/{href}"
    if parsed.scheme == "s3":
        return f"/vsis3/{parsed.netloc}{parsed.path}"
    if parsed.scheme == "file":
        return parsed.path
    return href


TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
"""The first 4 bytes of a TIFF or BigTIFF, little- and big-endian: every COG starts with one."""


GDAL_HTTP_CREDENTIALS = (
    "GDAL_HTTP_HEADERS",
    "GDAL_HTTP_HEADER_FILE",
    "GDAL_HTTP_AUTH",
    "GDAL_HTTP_USERPWD",
    "GDAL_HTTP_BEARER",
    "GDAL_HTTP_COOKIE",
    "GDAL_HTTP_COOKIEFILE",
)
"""GDAL options that add credentials to its requests: with any set, a look without them proves nothing."""


def not_a_tiff_answer(href: str, timeout: float = 10.0) -> bytes | None:
    """The first bytes an http(s) server answers for ``href`` if no TIFF starts so, else None.

    None: a TIFF's bytes, no answer, an error status, a redirect (not followed: the read is retried as
    before), not http, or GDAL given credentials by its environment (this GET sends none, so a login page
    would answer it where GDAL got the file); bytes: an HTML page, an XML error body. GDAL says "not
    recognized as being in a supported file format" both for such a body and for a TIFF cut off during
    the open; only the first is sure to fail again. One GET of 4 bytes of the href GDAL was given (the
    allow-list passed it).
    """
    if urlparse(href).scheme not in ("http", "https") or any(
        os.environ.get(k) for k in GDAL_HTTP_CREDENTIALS
    ):
        return None
    import requests
    import urllib3

    try:
        with requests.get(
            href, headers={"Range": "bytes=0-3"}, timeout=timeout, allow_redirects=False, stream=True
        ) as response:
            if response.status_code not in (200, 206):
                return None
            head = response.raw.read(4, decode_content=True)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):  # dropped, cut short, refused
        return None
    return bytes(head) if len(head) == 4 and head not in TIFF_SIGNATURES else None


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of a window read on I/O errors, on top of GDAL's own HTTP retries.

    ``signer``: signs each href just before GDAL opens it (``lulc.sas``: the Planetary Computer's SAS
    tokens); errors name the href unsigned, and a token in GDAL's own message is cut out.
    """

    attempts: int = 3
    delay: float = 0.5
    signer: HrefSigner | None = None

    def run_read(
        self, href: str, grid: OutputGrid, block: Block, nodata: float, resampling: Resampling
    ) -> npt.NDArray[np.float64]:
        """``read_window`` with retries; ReadError naming the href when every attempt fails.

        Only what may pass is retried (``lulc.raster_failures.may_pass``: a server failing, not a file or
        object that is not there, nor a server answering bytes no TIFF starts with: ``not_a_tiff_answer``),
        and only that ends as a ``ReadUnavailableError`` (``lulc`` exits 75: trying again later may succeed).
        """
        last: RasterioIOError | None = None
        remote = not is_local_href(href)
        opened = href
        for attempt in range(self.attempts):
            opened = self.signer.sign(href) if self.signer is not None else href  # a fresh token each try
            try:
                return read_window(opened, grid, block, nodata, resampling)
            except RasterioIOError as exc:  # HTTP failure, dropped connection, truncated body
                cause = exc if opened == href else None  # GDAL's own message names the signed URL
                if not may_pass(exc, remote):
                    raise ReadError(f"cannot read {href}: {_unsigned(reason(exc), opened, href)}") from cause
                if failure_kind(exc) == "not-a-raster" and (head := not_a_tiff_answer(opened)) is not None:
                    raise ReadError(  # an HTML page or an error body: no retry makes it a raster
                        f"cannot read {href}: the server answers with no TIFF (its first bytes: {head!r})"
                    ) from cause
                last = exc
                forget_cached_reads(opened)  # else GDAL answers the retry from its cache of the failure
                time.sleep(self.delay * (2**attempt))
            except RasterioError as exc:  # not a raster, corrupt file: retrying cannot help
                cause = exc if opened == href else None
                raise ReadError(f"cannot read {href}: {_unsigned(reason(exc), opened, href)}") from cause
        why = _unsigned(reason(last), opened, href) if last is not None else "no attempt"
        raise ReadUnavailableError(f"cannot read {href} after {self.attempts} attempts: {why}") from (
            last if opened == href else None
        )


def _unsigned(text: str, opened: str, href: str) -> str:
    """GDAL's ``text`` naming ``href`` where it names the signed ``opened``; any signature left is cut."""
    return redact_signatures(text.replace(opened, href))


def read_window(
    href: str, grid: OutputGrid, block: Block, nodata: float, resampling: Resampling
) -> npt.NDArray[np.float64]:
    """Band 1 of ``href`` on ``block`` of ``grid`` (only the source tiles it needs are read).

    Pixels outside the source or equal to its nodata come back as ``nodata``. A source on the grid's own
    pixel lattice (same CRS and resolution, whole-pixel offset: a 10 m band on a snapped grid) is read
    with a plain window, which gives the same pixels as warping with nearest at a fraction of the cost;
    any other source is warped.
    """
    with gdal_env(), rasterio.open(gdal_path(href), driver=REMOTE_RASTER_DRIVER) as src:
        offset = aligned_offset(src, grid)
        if offset is not None:
            return read_aligned(src, block, offset, nodata)
        return read_warped(src, grid, block, nodata, resampling)


def read_warped(
    src: rasterio.io.DatasetReader, grid: OutputGrid, block: Block, nodata: float, resampling: Resampling
) -> npt.NDArray[np.float64]:
    """Band 1 of ``src`` warped onto ``block`` of ``grid``; ``nodata`` outside the source."""
    with WarpedVRT(
        src,
        crs=grid.rasterio_crs,
        transform=grid.block_transform(block),
        width=block.width,
        height=block.height,
        resampling=resampling,
        src_nodata=nodata,
        nodata=nodata,
        tolerance=WARP_TOLERANCE,
    ) as vrt:
        return np.asarray(vrt.read(1), dtype=np.float64)


def read_aligned(
    src: rasterio.io.DatasetReader, block: Block, offset: tuple[int, int], nodata: float
) -> npt.NDArray[np.float64]:
    """Band 1 of ``src`` under ``block`` (at pixel ``offset`` of the grid in ``src``), ``nodata`` outside."""
    out = np.full((block.height, block.width), nodata, dtype=np.float64)
    col0, row0 = block.col + offset[0], block.row + offset[1]
    left, top = max(col0, 0), max(row0, 0)
    right, bottom = min(col0 + block.width, src.width), min(row0 + block.height, src.height)
    if right > left and bottom > top:
        data = src.read(1, window=Window(left, top, right - left, bottom - top))
        out[top - row0 : bottom - row0, left - col0 : right - col0] = data
    return out


@functools.lru_cache(maxsize=64)
def _same_crs(source: str, grid: str) -> bool:
    try:
        return normalize_crs(source) == normalize_crs(grid)
    except InputError:
        return False


def aligned_offset(src: rasterio.io.DatasetReader, grid: OutputGrid) -> tuple[int, int] | None:
    """Pixel offset ``(col, row)`` of the grid in ``src`` when both share CRS and pixel lattice, else None."""
    if src.crs is None or not _same_crs(src.crs.to_string(), grid.crs):
        return None
    t, g = src.transform, grid.transform
    if not (
        np.isclose(t.a, g.a) and np.isclose(t.e, g.e) and t.b == 0 and t.d == 0 and g.b == 0 and g.d == 0
    ):
        return None
    col = (g.c - t.c) / t.a
    row = (g.f - t.f) / t.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(col), round(row)
