"""Imagery a model is trained on: a grid, band names, and block reads of surface reflectance with a status."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from lulc.contract import Radiometry
from lulc.gdal_env import gdal_env
from training.errors import ImageryError


class Status(IntEnum):
    """Why a pixel can or cannot give a training sample."""

    OK = 0
    OUTSIDE = 1
    NODATA = 2
    CLOUD = 3


REASONS = {Status.OUTSIDE: "outside imagery", Status.NODATA: "nodata", Status.CLOUD: "cloud"}
"""Readable reason of each non-OK status, as reported for dropped points."""


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid cut into blocks that are read whole."""

    crs: CRS
    transform: Affine
    width: int
    height: int
    block_height: int
    block_width: int

    @property
    def resolution(self) -> float:
        """Pixel size in CRS units (x)."""
        return float(abs(self.transform.a))

    @property
    def block_rows(self) -> int:
        """Number of block rows."""
        return -(-self.height // self.block_height)

    @property
    def block_cols(self) -> int:
        """Number of block columns."""
        return -(-self.width // self.block_width)

    def rowcol(
        self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Pixel row and column holding each coordinate (may be outside the grid)."""
        t = self.transform  # north-up: no rotation terms
        cols = (np.asarray(x, dtype=np.float64) - t.c) / t.a
        rows = (np.asarray(y, dtype=np.float64) - t.f) / t.e
        return np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)

    def window(self, block_row: int, block_col: int) -> Window:
        """The pixel window of one block, clipped to the grid."""
        r0, c0 = block_row * self.block_height, block_col * self.block_width
        return Window(
            c0, r0, min(self.block_width, self.width - c0), min(self.block_height, self.height - r0)
        )

    def bbox_4326(self) -> list[float]:
        """The grid's bounds in EPSG:4326, rounded to 6 decimals."""
        t = self.transform
        left, top = t.c, t.f
        right, bottom = t.c + t.a * self.width, t.f + t.e * self.height
        bounds = transform_bounds(
            self.crs, "EPSG:4326", min(left, right), min(top, bottom), max(left, right), max(top, bottom)
        )
        return [round(float(v), 6) for v in bounds]


Block = tuple[int, int]


class Imagery(Protocol):
    """Reflectance on a grid, read block by block."""

    grid: Grid
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

    def read_blocks(
        self, blocks: Sequence[Block]
    ) -> Iterator[tuple[Block, npt.NDArray[np.float32], npt.NDArray[np.uint8]]]:
        """Yield each block's reflectance ``(bands, h, w)`` and ``Status`` codes ``(h, w)``."""
        ...


@dataclass
class LocalImagery:
    """A local multi-band raster (the tutorial's workflow) with named bands."""

    path: Path
    grid: Grid
    bands: list[str]
    band_indexes: list[int]
    radiometry: Radiometry
    notes: list[str] = field(default_factory=list)
    mask_scl: None = None

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
        """Unknown for a plain raster."""
        return None

    def read_blocks(
        self, blocks: Sequence[Block]
    ) -> Iterator[tuple[Block, npt.NDArray[np.float32], npt.NDArray[np.uint8]]]:
        """Read each block once from one open dataset."""
        scale, offset = self.radiometry.scale, self.radiometry.offset
        with gdal_env(), rasterio.open(self.path) as src:
            for block in blocks:
                window = self.grid.window(*block)
                raw = src.read(self.band_indexes, window=window)
                masks = src.read_masks(self.band_indexes, window=window)
                valid = np.all(masks > 0, axis=0) & np.all(np.isfinite(raw), axis=0)
                refl = raw.astype(np.float32)
                if scale != 1.0 or offset != 0.0:
                    refl = (refl * np.float32(scale) + np.float32(offset)).astype(np.float32)
                status = np.where(valid, Status.OK, Status.NODATA).astype(np.uint8)
                yield block, refl, status


def open_local_imagery(
    path: str | Path,
    bands: list[str],
    image_bands: list[str] | None,
    scale: float | None,
    offset: float | None,
) -> LocalImagery:
    """Open a multi-band GeoTIFF whose band names are ``image_bands`` (default: ``bands``, in order).

    A float raster is taken as surface reflectance (scale 1, offset 0) unless told otherwise; an
    integer raster uses ``scale``/``offset``, else the raster's own scale/offset metadata, else the
    Sentinel-2 L2A convention DN / 10000.
    """
    path = Path(path)
    if not path.exists():
        raise ImageryError(f"image {path} does not exist")
    try:
        with gdal_env(), rasterio.open(path) as src:
            count, dtype, crs = src.count, src.dtypes[0], src.crs
            transform, width, height = src.transform, src.width, src.height
            block_h, block_w = src.block_shapes[0]
            scales, offsets = src.scales, src.offsets
    except rasterio.errors.RasterioIOError as exc:
        raise ImageryError(f"cannot open image {path}: {exc}") from exc
    if crs is None:
        raise ImageryError(f"image {path} has no CRS")
    if transform.b != 0 or transform.d != 0 or transform.e >= 0:
        raise ImageryError(f"image {path} is not north-up; warp it first (gdalwarp)")
    names = image_bands or bands
    if len(names) != count:
        raise ImageryError(
            f"image {path} has {count} band(s) but {len(names)} band name(s) were given ({names}); "
            "name every band in order with --image-bands (or --bands)"
        )
    missing = [b for b in bands if b not in names]
    if missing:
        raise ImageryError(f"image {path} has no band(s) {missing}; its bands are {names}")
    indexes = [names.index(b) + 1 for b in bands]
    notes: list[str] = []
    if scale is not None or offset is not None:
        radiometry = Radiometry(scale=1.0 if scale is None else scale, offset=offset or 0.0)
    elif np.dtype(dtype).kind == "f":
        radiometry = Radiometry()
        notes.append(f"{path.name}: float raster taken as surface reflectance (scale 1, offset 0)")
    elif any(s != 1.0 for s in scales) or any(o != 0.0 for o in offsets):
        used = {(float(scales[i - 1]), float(offsets[i - 1])) for i in indexes}
        if len(used) > 1:
            # the contract carries one scale and offset for plain rasters: never apply band 1's to all
            raise ImageryError(
                f"image {path}'s bands {bands} have different scale/offset metadata {sorted(used)}; "
                "give --scale/--offset explicitly or rescale the bands to one scale first"
            )
        (only,) = used
        radiometry = Radiometry(scale=only[0], offset=only[1])
        notes.append(f"{path.name}: scale/offset from the raster's metadata")
    else:
        radiometry = Radiometry(scale=1e-4, offset=0.0)
        notes.append(f"{path.name}: integer raster without scale metadata taken as DN / 10000")
    grid = Grid(CRS.from_user_input(crs), transform, width, height, block_h, block_w)
    return LocalImagery(path, grid, list(bands), indexes, radiometry, notes)
