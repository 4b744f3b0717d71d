"""Blocks of a local multi-band GeoTIFF: windows on its own lattice (else warped), scaled, nodata as NaN."""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from lulc.errors import InputError, ReadError
from lulc.gdal_env import LOCAL_FILE_OPTIONS, WARP_TOLERANCE, gdal_env
from lulc.grid import Block, OutputGrid
from lulc.pixels.types import REFLECTANCE_RESAMPLING, Array, BlockPixels, SourceRef, Status, to_reflectance
from lulc.pixels.windows import aligned_offset
from lulc.sentinel2 import band_name, is_short_code

Raw = np.ma.MaskedArray[Any, Any] | npt.NDArray[Any]
"""A block as read: masked where the read is boundless or warped."""


@dataclass(frozen=True)
class ImageBlockReader:
    """Reads blocks of bands ``indexes`` of a local image, scaled with ``scale``/``offset``, nodata as NaN."""

    path: Path
    grid: OutputGrid
    indexes: tuple[int, ...]
    scale: float
    offset: float
    aligned: tuple[int, int] | None
    """Pixel offset of the grid in the image when they share CRS and lattice (plain windows), else None."""
    _opened: threading.local = field(default_factory=threading.local, init=False, repr=False, compare=False)
    """Each thread's open dataset, closed when the reader goes, never pickled. Opening the image anew for
    every block cost 0.2 of the 1.3 CPU seconds reading a 26 Mpx image took (``bench.cpu_split``'s ``read``,
    1.32-1.38 against 1.11-1.13 s, runs taking turns on 2026-12-01)."""

    def __getstate__(self) -> dict[str, object]:
        """The reader without its threads' open datasets (for Dask)."""
        return {k: v for k, v in self.__dict__.items() if k != "_opened"}

    def __setstate__(self, state: dict[str, object]) -> None:
        """A reader with no dataset open yet."""
        self.__dict__.update(state, _opened=threading.local())

    def sources(self) -> list[SourceRef]:
        """The image."""
        return [SourceRef(self.path.stem, str(self.path.resolve()), None)]

    def _source(self) -> rasterio.io.DatasetReader:
        """This thread's open dataset of the image."""
        src: rasterio.io.DatasetReader | None = getattr(self._opened, "src", None)
        if src is None:
            with gdal_env(LOCAL_FILE_OPTIONS):
                src = open_image(self.path)
            self._opened.src = src
        return src

    def read(self, block: Block) -> Array:
        """Reflectance of ``block``."""
        return self.read_pixels(block).reflectance

    def read_pixels(self, block: Block) -> BlockPixels:
        """Reflectance of ``block`` (warped with nearest if the grid is not the image's own) and status.

        Raises:
            ReadError: the image's bytes there cannot be read (a corrupt or truncated file).
        """
        try:
            raw, nodata = self._raw(block)
        except RasterioError as exc:
            cause = exc.__cause__ or exc  # rasterio's own message only points at GDAL's
            rows = f"rows {block.row}-{block.row + block.height - 1}"
            columns = f"columns {block.col}-{block.col + block.width - 1}"
            raise ReadError(f"cannot read image {self.path} ({rows}, {columns} of the map): {cause}") from exc
        data = np.ma.getdata(raw).astype(np.float32, copy=False)
        invalid = np.ma.getmaskarray(raw) | ~np.isfinite(data)
        if nodata is not None and np.isfinite(nodata):
            invalid |= data == np.float32(nodata)
        bad = invalid.any(axis=0)
        reflectance = to_reflectance(data, self.scale, self.offset)
        if bad.any():
            np.copyto(reflectance, np.float32(np.nan), where=bad)
        status = np.where(bad, Status.NODATA, Status.OK).astype(np.uint8)
        return BlockPixels(reflectance, status)

    def _raw(self, block: Block) -> tuple[Raw, float | None]:
        """The bands' stored values on ``block`` (masked if boundless or warped) and their nodata."""
        with gdal_env():
            src = self._source()
            nodata = src.nodata
            if self.aligned is not None:
                col, row = self.aligned
                window = Window(block.col + col, block.row + row, block.width, block.height)
                fill = nodata if nodata is not None else 0
                if _plain(src, window, self.indexes):  # inside, masked by nodata only: no mask to read
                    raw = src.read(list(self.indexes), window=window)
                else:
                    raw = src.read(
                        list(self.indexes), window=window, boundless=True, fill_value=fill, masked=True
                    )
            else:
                with WarpedVRT(
                    src,
                    crs=self.grid.rasterio_crs,
                    transform=self.grid.block_transform(block),
                    width=block.width,
                    height=block.height,
                    resampling=REFLECTANCE_RESAMPLING,
                    tolerance=WARP_TOLERANCE,
                ) as vrt:
                    raw = vrt.read(list(self.indexes), masked=True)
        return raw, nodata


def _plain(src: rasterio.io.DatasetReader, window: Window, indexes: Sequence[int]) -> bool:
    """Whether ``window`` lies inside the image and its bands are masked by their nodata value alone.

    Then a plain read gives the pixels and the nodata comparison the mask: what a boundless masked read
    gives, without its warped-VRT fallback and mask-band reads.
    """
    inside = (
        window.col_off >= 0
        and window.row_off >= 0
        and window.col_off + window.width <= src.width
        and window.row_off + window.height <= src.height
    )
    plain_masks = {MaskFlags.nodata}, {MaskFlags.all_valid}
    return inside and all(set(src.mask_flag_enums[i - 1]) in plain_masks for i in indexes)


def image_band_indexes(
    path: Path | str,
    descriptions: Sequence[str | None],
    wanted: Sequence[str],
    image_bands: Sequence[str] | None = None,
) -> tuple[int, ...]:
    """The 1-based indexes of bands ``wanted`` in an image whose bands carry ``descriptions``.

    Bands are named by ``image_bands`` (``--image-bands``: every band, in order) when given, else by the
    image's band descriptions; a name is a band's canonical name in any case (``red``, ``Red``) or its
    Sentinel-2 id (``B04``; ``B4`` as Earth Engine exports name them, but only from ``image_bands``: in an
    image's descriptions a one-digit code may be Landsat's, so it is refused with the flag to give). Only
    an image none of whose bands carries a name or a band code (no descriptions, or ``Band_1``...) is read
    in the wanted order, and only when it has exactly as many bands: one that names its bands otherwise
    (``red, green, blue, x``, or codes of no Sentinel-2 band such as ``SR_B5``) was read by position and
    gave a map of swapped bands without a word.
    """
    count = len(descriptions)
    if image_bands is not None and len(image_bands) != count:
        raise InputError(
            f"--image-bands names {len(image_bands)} bands but image {path} has {count}: "
            "name every band, in order"
        )
    given = list(image_bands) if image_bands is not None else [d or "" for d in descriptions]
    names = [band_name(n) or n for n in given]
    targets = [band_name(b) or b for b in wanted]
    if all(b in names for b in targets):
        indexes = tuple(names.index(b) + 1 for b in targets)
        short = [given[i - 1] for i in indexes if is_short_code(given[i - 1])]
        if image_bands is None and short:
            suggestion = ",".join(band_name(g) or g or f"band{i}" for i, g in enumerate(given, 1))
            raise InputError(
                f"image {path} names its bands {given}: one-digit codes ({', '.join(short)}) are "
                "Sentinel-2's in Earth Engine's exports but another sensor's elsewhere (Landsat 5/7's B2 is "
                f"green); if it is Sentinel-2, say so with --image-bands {suggestion}"
            )
        return indexes
    named = any(band_name(n) or _BAND_CODE.match(n.strip()) for n in given)
    if image_bands is None and count == len(wanted) and not named:  # unnamed: taken in the wanted order
        return tuple(range(1, count + 1))
    missing = [b for b, t in zip(wanted, targets, strict=True) if t not in names]
    described = f"its bands are {given}" if any(given) else "its bands have no names"
    if image_bands is not None or all(band_name(n) and not is_short_code(n) for n in given):
        # every band is named (by the user, or as bands lulc-stac knows): naming them again is no advice
        # (notebook review: --image-bands given in full, and told to give it)
        raise InputError(f"image {path} lacks band(s) {missing} of {list(wanted)}: {described}")
    # "has no band(s) ['blue', ...] of ['blue', ...]" when none matched (README review)
    lacking = (
        f"none of the bands {missing}"
        if len(missing) == len(wanted)
        else f"no band(s) {missing} of {list(wanted)}"
    )
    raise InputError(
        f"image {path} has {lacking}: it has {count} and {described}; "
        "name all its bands in order with --image-bands"
    )


@dataclass(frozen=True)
class ImageScaling:
    """How an image's values become surface reflectance: ``reflectance = value * scale + offset``."""

    scale: float
    offset: float
    how: str
    """``float`` (taken as reflectance), ``metadata`` (the raster's own scale/offset) or ``dn`` (an integer
    raster without metadata, taken as Sentinel-2 L2A's DN / 10000)."""

    @property
    def note(self) -> str:
        """What was assumed, for the user."""
        return {
            "float": "float raster taken as surface reflectance (scale 1, offset 0)",
            "metadata": "scale/offset from the raster's metadata",
            "dn": "integer raster without scale metadata taken as DN / 10000",
        }[self.how]


MAX_REFLECTANCE_MEDIAN = 1.5
"""Surface reflectance is 0 to about 1 (snow and glint a little above): values whose median is above this are
not reflectance, but digital numbers (0 to 10,000 for Sentinel-2) or another quantity. Training and
classifying judge a float image by it."""

SCALE_ADVICE = (
    "Digital numbers need --scale (Sentinel-2 L2A: --scale 0.0001, and --offset -0.1 from processing "
    "baseline 04.00)"
)
"""What a user whose float image holds digital numbers gives (``lulc train`` and ``lulc classify``)."""


def given_scaling(scale: float | None, offset: float | None) -> tuple[float, float] | None:
    """The user's ``--scale``/``--offset`` (either given: the other is 1, or 0); None when neither is."""
    if scale is None and offset is None:
        return None
    return 1.0 if scale is None else scale, offset or 0.0


def image_scaling(
    path: Path | str, dtype: str, scales: Sequence[float], offsets: Sequence[float], indexes: Sequence[int]
) -> ImageScaling:
    """How bands ``indexes`` of an image of ``dtype`` with band ``scales``/``offsets`` become reflectance.

    A float raster is reflectance; an integer raster uses its own scale/offset metadata, else the
    Sentinel-2 L2A convention DN / 10000. Training and classifying read an image by this one rule.

    Raises:
        InputError: the bands carry different scale/offset metadata (one scale serves all bands).
    """
    if np.dtype(dtype).kind == "f":
        return ImageScaling(1.0, 0.0, "float")
    if any(scales[i - 1] != 1.0 or offsets[i - 1] != 0.0 for i in indexes):  # the bands read only
        used = {(float(scales[i - 1]), float(offsets[i - 1])) for i in indexes}
        if len(used) > 1:
            # one scale and offset for plain rasters: never apply band 1's to all
            raise InputError(
                f"image {path}'s bands have different scale/offset metadata {sorted(used)}; "
                "give --scale/--offset explicitly or rescale the bands to one scale first"
            )
        ((scale, offset),) = used
        return ImageScaling(scale, offset, "metadata")
    return ImageScaling(1e-4, 0.0, "dn")


_BAND_CODE = re.compile(r"^(\w+_)?[Bb]\d{1,2}[Aa]?$")
"""A band code of some sensor (``B4``, ``B13``, Landsat's ``SR_B5``): a name, read only if Sentinel-2's."""


def open_image_reader(
    path: Path,
    grid: OutputGrid,
    indexes: Sequence[int],
    scale: float,
    offset: float,
) -> ImageBlockReader:
    """A reader of ``grid``'s blocks from bands ``indexes`` (1-based) of the image at ``path``.

    Raises:
        InputError: a band of complex numbers (a radar product, say: it was classified by its real part,
            with NumPy's warnings on stderr).
    """
    with gdal_env(), open_image(path) as src:
        aligned = aligned_offset(src, grid)
        complex_bands = [i for i in indexes if np.dtype(src.dtypes[i - 1]).kind == "c"]
        if complex_bands:
            raise InputError(
                f"image {path} has complex-valued bands ({src.dtypes[complex_bands[0] - 1]}): reflectance is "
                "real; give the bands as real numbers"
            )
    return ImageBlockReader(path, grid, tuple(indexes), scale, offset, aligned)


def open_image(path: str | Path) -> rasterio.io.DatasetReader:
    """``rasterio.open`` of a local image, without rasterio's ``NotGeoreferencedWarning``.

    Callers refuse an image without a CRS or geotransform in one line of their own; the warning, printed
    before it, made that line three (diff review).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path)


def image_datetime(href: str | None) -> datetime | None:
    """The acquisition time a local GeoTIFF records, if any (for training's provenance and a map's item).

    GDAL's ``IMAGERY`` ``ACQUISITIONDATETIME``, else the TIFF ``DateTime`` tag (``YYYY:MM:DD HH:MM:SS``,
    taken as UTC); None for anything else.
    """
    if href is None or "://" in href or Path(href).suffix.lower() not in (".tif", ".tiff"):
        return None
    try:
        with open_image(href) as src:
            imagery = src.tags(ns="IMAGERY").get("ACQUISITIONDATETIME")
            stamp = imagery or src.tags().get("TIFFTAG_DATETIME")
    except rasterio.errors.RasterioError:
        return None
    if not stamp:
        return None
    for layout in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ", "%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(stamp.strip(), layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None
