"""Cloud-Optimised GeoTIFFs through GDAL's COG driver, written atomically: never half a file in place.

A map written block by block can have its overviews built as the blocks arrive (``OverviewLevels``: each
block halved level by level with ``halve``, written into one staging GeoTIFF per level); the COG driver then
only copies them (``translate_to_cog(..., overviews=...)``) instead of computing them after the last block.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.windows import Window

from lulc.gdal_env import LOCAL_FILE_OPTIONS, gdal_env

Resampling = Literal["nearest", "mode", "average", "max", "bilinear"]

GDAL_RESAMPLING = {"max": "NEAREST"}
"""GDAL's name of a resampling where it differs: its overview builder has no MAX, so ``max`` levels are always
``halve``'s (``OverviewLevels``) and GDAL, should it ever build one itself, is told NEAREST."""


@dataclass(frozen=True)
class CogOptions:
    """Creation options of a COG: 512 internal tiles, lossless compression, overviews."""

    blocksize: int = 512
    compress: Literal["deflate", "zstd", "lzw"] = "deflate"
    overview_resampling: Resampling = "nearest"
    predictor: Literal[1, 2] = 1
    level: int = 6
    extra: Mapping[str, str] = field(default_factory=dict)

    def creation_options(self) -> dict[str, str]:
        """GDAL COG-driver creation options."""
        options = {
            "BLOCKSIZE": str(self.blocksize),
            "COMPRESS": self.compress.upper(),
            "LEVEL": str(self.level),
            "PREDICTOR": "YES" if self.predictor == 2 else "NO",  # the COG driver's spelling
            "OVERVIEWS": "IGNORE_EXISTING",
            "OVERVIEW_RESAMPLING": GDAL_RESAMPLING.get(
                self.overview_resampling, self.overview_resampling.upper()
            ),
            # compress tiles on every core: GDAL still writes them in order, so the bytes are those of one
            # thread (tests/lulc/test_cog.py), and the translation after the last block, which nothing
            # overlaps, takes half the wall time on 2 cores
            "NUM_THREADS": "ALL_CPUS",
            "BIGTIFF": "IF_SAFER",
        }
        options.update(self.extra)
        return options


@contextlib.contextmanager
def atomic_path(final: str | Path, suffix: str = ".tif") -> Iterator[Path]:
    """A temporary path beside ``final``, renamed onto it only if the block completes.

    On any exception the temporary file is removed and ``final`` is left untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".partial{suffix}", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be served and shared
        os.replace(tmp, final)
    finally:
        for leftover in (tmp, Path(f"{tmp}.aux.xml")):
            leftover.unlink(missing_ok=True)


def translate_to_cog(
    src: str | Path,
    dst: str | Path,
    options: CogOptions | None = None,
    overviews: Sequence[str | Path] = (),
) -> Path:
    """Copy any GDAL-readable raster to a COG at ``dst`` (atomically).

    ``overviews``: rasters holding ``src``'s overview levels (factor 2, 4, ... as ``overview_factors``
    gives them, e.g. from ``OverviewLevels``); they are copied as they are instead of being computed.
    """
    opts = options or CogOptions()
    dst = Path(dst)
    with gdal_env(LOCAL_FILE_OPTIONS), atomic_path(dst) as tmp:
        if overviews:
            vrt = tmp.with_name(f"{tmp.name}.vrt")
            try:
                with_overviews(src, overviews, vrt)
                forced = replace(opts, extra={**opts.extra, "OVERVIEWS": "FORCE_USE_EXISTING"})
                rasterio.shutil.copy(str(vrt), str(tmp), driver="COG", **forced.creation_options())
            finally:
                vrt.unlink(missing_ok=True)
        else:
            rasterio.shutil.copy(str(src), str(tmp), driver="COG", **opts.creation_options())
    return dst


def with_overviews(src: str | Path, overviews: Sequence[str | Path], vrt: Path) -> Path:
    """A VRT at ``vrt`` of ``src`` (every band, its metadata and colours) with ``overviews`` as its levels."""
    rasterio.shutil.copy(str(src), str(vrt), driver="VRT")
    tree = ET.parse(vrt)
    for band in tree.getroot().iter("VRTRasterBand"):
        for level in overviews:
            element = ET.SubElement(band, "Overview")
            ET.SubElement(element, "SourceFilename", relativeToVRT="0").text = str(Path(level).resolve())
            ET.SubElement(element, "SourceBand").text = band.get("band", "1")
    tree.write(vrt, encoding="UTF-8")
    return vrt


def overview_factors(width: int, height: int, blocksize: int = 512) -> list[int]:
    """The overview factors GDAL's COG driver makes for a ``width`` x ``height`` raster.

    It halves the raster (rounding up) until both sides fit in one tile.
    """
    factors: list[int] = []
    while width > blocksize or height > blocksize:
        width, height = math.ceil(width / 2), math.ceil(height / 2)
        factors.append(2 ** (len(factors) + 1))
    return factors


HALVING: tuple[Resampling, ...] = ("nearest", "mode", "average", "max")
"""The resamplings ``halve`` does."""


def halve(data: npt.NDArray[np.uint8], resampling: Resampling, nodata: int) -> npt.NDArray[np.uint8]:
    """Bands ``(n, h, w)`` at half resolution ``(n, ceil(h/2), ceil(w/2))``, each pixel from the 2 x 2 below.

    ``mode``: the most frequent value of the four that are not nodata (a tie goes to the first in the
    order top left, top right, bottom left, bottom right); with several bands, the most frequent *pixel*
    (all its bands equal), so a level never pairs one pixel's band with another's: a class set's count with
    another set's bitmask, say. ``average``: the mean rounded half up, band by band; ``max``: the largest,
    band by band (a dissimilarity index: a pixel outside the area of applicability stays outside at every
    level); ``nearest``: the first of them in that order. Nodata only where all four are nodata (or outside
    the raster). Integer arithmetic only, so the result never depends on the platform.

    It runs once per overview level of every map a run writes, while the blocks arrive, so it works on the
    four quarter views without stacking them, and ``mode`` decides from the six pairwise equalities.
    """
    n, h, w = data.shape
    if h % 2 or w % 2:
        padded = np.full((n, h + h % 2, w + w % 2), nodata, dtype=data.dtype)
        padded[:, :h, :w] = data
        data = padded
    quads = _quarters(data)
    if resampling == "nearest":
        return _first_valid(quads, nodata)
    if resampling == "average":
        return _mean(quads, nodata)
    if resampling == "max":
        return _max(quads, nodata)
    if resampling == "mode":
        return _mode(quads, nodata) if n == 1 else _mode_of_pixels(quads, nodata)
    raise ValueError(f"halve does no {resampling!r} resampling (only {', '.join(HALVING)})")


Quads = tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]
Keys = tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]
"""Four quarters of any unsigned integer type: a band's values, or pixels packed by ``_mode_of_pixels``."""


def _quarters(data: npt.NDArray[np.uint8]) -> Quads:
    """The top-left, top-right, bottom-left and bottom-right pixel of every 2 x 2, as contiguous arrays.

    Each row's pixel pairs are read as little-endian 16-bit words (low byte the left pixel), so splitting
    them is two contiguous casts per row of 2 x 2s: numpy would copy byte-strided views into buffers again
    for every operation on them.
    """
    out: list[npt.NDArray[np.uint8]] = []
    for rows in (data[:, 0::2, :], data[:, 1::2, :]):
        pairs = np.ascontiguousarray(rows).view("<u2")
        out += [pairs.astype(np.uint8), (pairs >> 8).astype(np.uint8)]
    return out[0], out[1], out[2], out[3]


def _first_valid(quads: Keys, nodata: int | np.unsignedinteger[Any]) -> npt.NDArray[Any]:
    """Per 2 x 2: the first of the four (reading order) that is not nodata; nodata if none is."""
    out = quads[3]
    for q in quads[2::-1]:
        out = np.where(q != nodata, q, out)  # a select, not a masked copy: no branch per pixel
    return out


def _mean(quads: Quads, nodata: int) -> npt.NDArray[np.uint8]:
    """Per 2 x 2: the mean of the values that are not nodata, rounded half up; nodata if none is."""
    total = quads[0].astype(np.uint16)
    for q in quads[1:]:
        total += q
    if not any((q == nodata).any() for q in quads):
        return ((total + 2) // 4).astype(np.uint8)  # (2 total + 4) // 8: the general formula, count 4
    count = np.zeros(total.shape, dtype=np.uint16)
    for q in quads:
        invalid = q == nodata
        total -= np.where(invalid, np.uint16(nodata), np.uint16(0))
        count += ~invalid
    mean = (2 * total + count) // np.maximum(2 * count, 1)
    return np.where(count > 0, mean, nodata).astype(np.uint8)


def _max(quads: Quads, nodata: int) -> npt.NDArray[np.uint8]:
    """Per 2 x 2: the largest value that is not nodata; nodata if none is."""
    valid = [q != nodata for q in quads]
    out = np.where(valid[0], quads[0], 0)
    for q, ok in zip(quads[1:], valid[1:], strict=True):
        out = np.maximum(out, np.where(ok, q, 0))
    return np.where(valid[0] | valid[1] | valid[2] | valid[3], out, nodata).astype(np.uint8)


def _mode(quads: Keys, nodata: int | np.unsignedinteger[Any]) -> npt.NDArray[Any]:
    """Per 2 x 2: the most frequent value that is not nodata, a tie to the first in reading order.

    With four values: the first (q0) wins when it is valid and another equals it (two votes at least,
    and no other value can have more); else q1 when it is valid and q2 or q3 equals it; else q2 when q3
    equals it; else all valid values are single votes and the first valid one wins.
    """
    q0, q1, q2, q3 = quads
    out = _first_valid(quads, nodata)
    valid1 = q1 != nodata
    out = np.where((q2 == q3) & (q2 != nodata), q2, out)
    out = np.where(((q1 == q2) | (q1 == q3)) & valid1, q1, out)
    return np.where(((q0 == q1) | (q0 == q2) | (q0 == q3)) & (q0 != nodata), q0, out)


def _mode_of_pixels(quads: Quads, nodata: int) -> npt.NDArray[np.uint8]:
    """``_mode`` of whole pixels: each pixel's bands packed into one unsigned integer (at most 8 bands)."""
    n = quads[0].shape[0]
    width = next((w for w in (2, 4, 8) if w >= n), 0)
    if not width:
        raise ValueError(f"a mode of whole pixels packs at most 8 bands, not {n}")

    dtype = np.dtype(f"<u{width}")

    def packed(bands: npt.NDArray[np.uint8]) -> npt.NDArray[Any]:
        key = bands[0].astype(dtype)
        for b in range(1, width):
            key |= (bands[b] if b < n else np.uint8(nodata)).astype(dtype) << dtype.type(8 * b)
        return key

    keys = tuple(packed(q) for q in quads)
    nodata_key = packed(np.full((n, 1), nodata, dtype=np.uint8))[0]
    chosen = _mode((keys[0], keys[1], keys[2], keys[3]), nodata_key)
    return np.stack([(chosen >> dtype.type(8 * b)).astype(np.uint8) for b in range(n)])


class OverviewLevels:
    """The overview levels of a uint8 map written block by block, as staging GeoTIFFs filled as blocks arrive.

    Every block is halved level by level (``halve``) and written at its place in each level, so the levels
    are done when the last block is, and the COG driver only copies them. The result depends only on the
    pixels, never on the block size, provided every block starts at a multiple of the largest factor
    (``aligned``); other blocks must be given as strips that do.
    """

    def __init__(
        self, base: Path, profile: Mapping[str, Any], factors: Sequence[int], resampling: Resampling
    ) -> None:
        self.factors = list(factors)
        self.resampling = resampling
        self.nodata = int(profile["nodata"])
        self.paths = [base.with_name(f"{base.stem}.ovr{f}{base.suffix}") for f in self.factors]
        self._datasets: list[Any] = []
        try:
            for factor, path in zip(self.factors, self.paths, strict=True):
                level = {
                    **profile,
                    "width": math.ceil(int(profile["width"]) / factor),
                    "height": math.ceil(int(profile["height"]) / factor),
                    "transform": profile["transform"] @ Affine.scale(factor),
                    # uncompressed: a block fills only part of a level's tiles (a 512 block is a quarter of
                    # a level-1 tile), and GDAL recompresses a compressed tile at every partial write (4x
                    # the CPU of writing the full-resolution map); the levels are a third of the map's size
                    "compress": "none",
                }
                self._datasets.append(rasterio.open(path, "w", **level))
        except BaseException:
            self.close()
            raise

    def aligned(self, row: int, col: int) -> bool:
        """Whether a block at ``(row, col)`` can be halved on its own (both multiples of the top factor)."""
        step = self.factors[-1] if self.factors else 1
        return row % step == 0 and col % step == 0

    def add(self, row: int, col: int, data: npt.NDArray[np.uint8]) -> None:
        """Halve a block ``(n, h, w)`` whose top-left pixel is ``(row, col)`` into every level."""
        if not self.aligned(row, col):
            raise ValueError(f"a block at ({row}, {col}) is not aligned on the factor {self.factors[-1]}")
        for factor, dataset in zip(self.factors, self._datasets, strict=True):
            data = halve(data, self.resampling, self.nodata)
            window = Window(col // factor, row // factor, data.shape[2], data.shape[1])
            dataset.write(data, window=window)

    def close(self) -> None:
        """Flush and close the level files."""
        for dataset in self._datasets:
            dataset.close()


def write_cog(
    dst: str | Path,
    data: npt.NDArray[Any],
    *,
    crs: CRS | str,
    transform: Affine,
    nodata: float | None,
    options: CogOptions | None = None,
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
    band_descriptions: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Path:
    """Write an in-memory array ``(bands, rows, cols)`` (or ``(rows, cols)``) as a COG at ``dst``."""
    array = data[np.newaxis] if data.ndim == 2 else data
    count, height, width = array.shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": array.dtype.name,
        "crs": CRS.from_user_input(crs),
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
    }
    with gdal_env(), rasterio.MemoryFile() as mem:
        with mem.open(**profile) as tmp:
            tmp.write(array)
            if colormap is not None:
                tmp.write_colormap(1, dict(colormap))
            if band_descriptions is not None:
                for i, desc in enumerate(band_descriptions, start=1):
                    tmp.set_band_description(i, desc)
            if tags:
                tmp.update_tags(**tags)
        return translate_to_cog(mem.name, dst, options)
