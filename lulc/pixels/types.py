"""What a block read gives (reflectance, a status per pixel), the reader protocol, the one DN scaling."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from rasterio.enums import Resampling

from lulc.grid import Block

Array = npt.NDArray[np.float32]

# Nearest neighbour for reflectance as well as SCL: models are trained on unresampled pixel values, nearest
# keeps every value a real measurement instead of a blend across a field edge (a mixed pixel the classifier
# never saw), and on a grid snapped to Sentinel-2's, 10 m bands are copied exactly. Only the 20 m bands are
# duplicated 2x2.
REFLECTANCE_RESAMPLING = Resampling.nearest
SCL_RESAMPLING = Resampling.nearest


class Status(IntEnum):
    """Why a pixel has, or has not, a valid reflectance."""

    OK = 0
    OUTSIDE = 1
    NODATA = 2
    CLOUD = 3


REASONS = {Status.OUTSIDE: "outside imagery", Status.NODATA: "nodata", Status.CLOUD: "cloud"}
"""Readable reason of each non-OK status, as reported for dropped training points."""


@dataclass(frozen=True)
class BlockPixels:
    """One block's reflectance ``(n_bands, height, width)`` float32 (NaN unless OK) and ``Status`` codes."""

    reflectance: Array
    status: npt.NDArray[np.uint8]


@dataclass(frozen=True)
class SourceRef:
    """One input of a reader, for provenance (``derived_from`` links, item datetimes)."""

    id: str
    href: str | None
    datetime: datetime | None = None


@runtime_checkable
class BlockReader(Protocol):
    """Reads the surface reflectance of one block of a grid (what the classifier needs of a reader).

    ``read`` returns float32 ``(n_bands, height, width)`` in the reader's band order, NaN wherever a pixel
    has no valid observation (nodata, masked cloud/shadow, outside every footprint). Readers are safe to
    call from several threads and pickle (for Dask).
    """

    def read(self, block: Block) -> Array:
        """Reflectance of ``block``."""
        ...

    def sources(self) -> list[SourceRef]:
        """The inputs this reader draws from."""
        ...


@runtime_checkable
class PixelReader(BlockReader, Protocol):
    """A block reader that also tells why each invalid pixel is invalid (what training samples through)."""

    def read_pixels(self, block: Block) -> BlockPixels:
        """The reflectance ``read`` gives, with each pixel's ``Status``."""
        ...


def to_reflectance(values: npt.NDArray[np.float32], scale: float, offset: float) -> Array:
    """``values * scale + offset`` in float32 arithmetic (the one scaling of every reader).

    Left as they are when the scaling is the identity. float32 throughout (not float64 rounded at the end):
    training samples and classified pixels must agree bit for bit, and this is how models were trained.
    """
    if scale == 1.0 and offset == 0.0:
        return values
    scaled: Array = values * np.float32(scale) + np.float32(offset)
    return scaled
