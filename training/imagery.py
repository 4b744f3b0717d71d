"""Imagery a model is trained on: a grid (``lulc.grid``), band names, and a block reader (``lulc.pixels``).

Training reads its samples through the very readers the classifier reads its blocks with, so the pixels
under a training point are the pixels the classifier sees there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.transform import array_bounds

from lulc.contract import Radiometry
from lulc.datetimes import acquisition_window, format_datetime
from lulc.errors import InputError
from lulc.gdal_env import gdal_env
from lulc.grid import Block, OutputGrid, check_on_earth, normalize_crs
from lulc.pixels import (
    MAX_REFLECTANCE_MEDIAN,
    REASONS,
    SCALE_ADVICE,
    BlockPixels,
    ImageBlockReader,
    PixelReader,
    Status,
    given_scaling,
    image_band_indexes,
    image_datetime,
    image_scaling,
    open_image,
    open_image_reader,
)
from lulc.urls import missing_file
from training.errors import ImageryError

__all__ = [
    "REASONS",
    "Imagery",
    "LocalImagery",
    "Status",
    "open_local_imagery",
    "read_blocks",
]

READ_THREADS = 4
"""Blocks read at once while sampling (each read is a handful of window reads, mostly waiting on I/O)."""

DEFAULT_BLOCK = 512
"""Block size of a local image whose internal tiles are not square multiples of 16 (strips, odd tiles)."""


class Imagery(Protocol):
    """Reflectance on a grid, read block by block."""

    grid: OutputGrid
    bands: list[str]
    radiometry: Radiometry

    @property
    def description(self) -> str:
        """Where the imagery comes from, for reports (may name paths or URLs)."""
        ...

    @property
    def identity(self) -> str:
        """What the imagery is, independent of where it is served from (file name, item ids)."""
        ...

    @property
    def time_window(self) -> str | None:
        """The acquisition window ``start/end`` if known."""
        ...

    @property
    def mask_scl(self) -> list[int] | None:
        """SCL classes masked before compositing (None: the imagery has no SCL)."""
        ...

    @property
    def notes(self) -> list[str]:
        """Assumptions made while opening the imagery, worth telling the user."""
        ...

    @property
    def composites(self) -> int:
        """How many composites a block's reflectance stacks band-wise (one per season; else 1)."""
        ...

    @property
    def extent(self) -> Extent:
        """How messages name the area samples are read in, and what to do for samples beyond it."""
        ...

    def read_blocks(self, blocks: Sequence[Block]) -> Iterator[tuple[Block, BlockPixels]]:
        """Yield each block with its reflectance ``(bands, h, w)`` and ``Status`` codes ``(h, w)``."""
        ...


@dataclass(frozen=True)
class Extent:
    """The area an imagery's samples are read in, as messages name it, and the remedy for samples beyond."""

    name: str
    remedy: str


IMAGE_EXTENT = Extent("the imagery", "use imagery that covers them")
"""A local image's: its own extent."""
AOI_EXTENT = Extent(
    "the AOI's bounding box",
    "give an AOI (--aoi) that covers them: STAC imagery is read only in the AOI's bounding box",
)
"""STAC imagery's: it is read on the AOI's grid, so a point past the AOI was said to lie "outside the
imagery" even where items cover it (notes)."""


def read_blocks(
    reader: PixelReader, blocks: Sequence[Block], threads: int = READ_THREADS
) -> Iterator[tuple[Block, BlockPixels]]:
    """Each block and its pixels, in the order given, ``threads`` blocks read at a time."""
    if threads <= 1 or len(blocks) <= 1:
        for block in blocks:
            yield block, reader.read_pixels(block)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="lulc-sample") as pool:
        yield from zip(blocks, pool.map(reader.read_pixels, blocks), strict=True)


@dataclass
class LocalImagery:
    """A local multi-band raster (the tutorial's workflow) with named bands."""

    path: Path
    grid: OutputGrid
    bands: list[str]
    reader: ImageBlockReader
    radiometry: Radiometry
    notes: list[str] = field(default_factory=list)
    composites: int = 1
    """A local image is one composite."""
    mask_scl: None = None
    acquisition: str | None = None
    """The acquisition the image records, else ``start/end`` (RFC 3339, UTC) of the recipe's ``datetime``
    (``lulc.datetimes.acquisition_window``, as ``lulc classify``), else None; read once at the open."""

    @property
    def description(self) -> str:
        """The raster's path."""
        return str(self.path)

    @property
    def identity(self) -> str:
        """The raster's file name."""
        return self.path.name

    @property
    def time_window(self) -> str | None:
        """The acquisition the image records, else the recipe's ``datetime``, else unknown.

        Recorded: ``ACQUISITIONDATETIME`` or TIFF ``DateTime``; the recipe's: both ends in UTC (a date is
        its day). It goes into the contract's provenance and dates the model's MLM item (else the image's
        mtime).
        """
        return self.acquisition

    @property
    def extent(self) -> Extent:
        """The image's own extent."""
        return IMAGE_EXTENT

    def read_blocks(self, blocks: Sequence[Block]) -> Iterator[tuple[Block, BlockPixels]]:
        """Each block's pixels, through the classifier's image reader."""
        return read_blocks(self.reader, blocks)


def open_local_imagery(
    path: str | Path,
    bands: list[str],
    image_bands: list[str] | None,
    scale: float | None,
    offset: float | None,
    *,
    datetime: str | None = None,
) -> LocalImagery:
    """Open a multi-band GeoTIFF and find ``bands`` in it (``lulc.pixels.image_band_indexes``).

    A float raster is taken as surface reflectance (scale 1, offset 0) unless told otherwise; an
    integer raster uses ``scale``/``offset``, else the raster's own scale/offset metadata, else the
    Sentinel-2 L2A convention DN / 10000.
    """
    path = Path(path)
    if not path.exists():
        raise ImageryError(missing_file("image", path))
    try:
        with gdal_env(), open_image(path) as src:
            dtype, crs = src.dtypes[0], src.crs
            transform, width, height = src.transform, src.width, src.height
            block_h, block_w = src.block_shapes[0]
            scales, offsets, descriptions = src.scales, src.offsets, src.descriptions
    except rasterio.errors.RasterioIOError as exc:
        raise ImageryError(f"cannot open image {path}: {exc}") from exc
    if crs is None:
        raise ImageryError(f"image {path} has no CRS")
    if transform.b != 0 or transform.d != 0 or transform.e >= 0:
        raise ImageryError(f"image {path} is not north-up; warp it first (gdalwarp)")
    try:
        check_on_earth(array_bounds(height, width, transform), crs.to_string(), f"image {path}")
    except InputError as exc:  # the recipe's imagery, as every other problem of the image
        raise ImageryError(str(exc)) from exc
    indexes = image_band_indexes(path, descriptions, bands, image_bands)
    notes: list[str] = []
    given = given_scaling(scale, offset)
    if given is not None:
        radiometry = Radiometry(scale=given[0], offset=given[1])
    else:
        try:
            scaling = image_scaling(path, dtype, scales, offsets, indexes)
        except InputError as exc:  # the recipe's imagery, as every other problem of the image
            raise ImageryError(str(exc)) from exc
        radiometry = Radiometry(scale=scaling.scale, offset=scaling.offset)
        notes.append(f"{path.name}: {scaling.note}")
    grid = OutputGrid(normalize_crs(crs.to_string()), transform, width, height, _block_size(block_h, block_w))
    reader = open_image_reader(path, grid, indexes, radiometry.scale, radiometry.offset)
    recorded = image_datetime(str(path))
    acquisition = recorded.strftime("%Y-%m-%dT%H:%M:%SZ") if recorded is not None else None
    try:
        format_datetime(datetime)  # a bad one is refused even where the image's own date wins
        if datetime is not None and acquisition is None:
            acquisition = "/".join(acquisition_window(datetime, f"image {path.name}"))
    except InputError as exc:
        raise ImageryError(str(exc)) from exc
    if acquisition is None:
        notes.append(
            f"{path.name} records no acquisition date: model.json is dated by the file's modification time "
            "(give --datetime with the acquisition date, e.g. --datetime 2024-06-01)"
        )
    return LocalImagery(path, grid, list(bands), reader, radiometry, notes, acquisition=acquisition)


def check_reflectance(reflectance: npt.NDArray[np.float32], imagery: Imagery, scale_given: bool) -> None:
    """Refuse a local image whose sampled values, as read, cannot be surface reflectance.

    A float raster is taken as reflectance and an integer one as its metadata or DN / 10000 say; a float
    raster of digital numbers trained a model whose contract says reflectance, and every pixel of real
    reflectance was then mapped as the darkest class (review). An explicit ``--scale`` or ``--offset`` is
    the user's word and is not second-guessed.

    Raises:
        ImageryError: the median sampled value is above ``MAX_REFLECTANCE_MEDIAN``.
    """
    if scale_given or not isinstance(imagery, LocalImagery):
        return
    values = reflectance[np.isfinite(reflectance)]
    if values.size == 0:
        return
    median = float(np.median(values))
    if median <= MAX_REFLECTANCE_MEDIAN:
        return
    radiometry = imagery.radiometry
    raise ImageryError(
        f"image {imagery.path}'s sampled values, read with scale {radiometry.scale:g} and offset "
        f"{radiometry.offset:g}, have a median of {median:,.6g}: surface "
        f"reflectance is 0 to about 1. {SCALE_ADVICE}; to train on the values as they are, give --scale 1"
    )


def _block_size(block_h: int, block_w: int) -> int:
    """The image's own tile size when square and a multiple of 16, else ``DEFAULT_BLOCK``."""
    if block_h == block_w and block_w >= 16 and block_w % 16 == 0:
        return block_w
    return DEFAULT_BLOCK
