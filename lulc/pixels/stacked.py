"""Several composites of the same blocks side by side: a seasonal model's seasons, one reader each."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from lulc.grid import Block
from lulc.pixels.types import Array, BlockPixels, PixelReader, SourceRef, Status


@dataclass(frozen=True)
class StackedBlockReader:
    """The readers' reflectance stacked band-wise, in order; a pixel is valid only where every one is.

    A pixel invalid in any composite is NaN in all of them (a seasonal model needs every season); its status
    is CLOUD if a cloud hid it in one composite, else NODATA.
    """

    readers: tuple[PixelReader, ...]

    def sources(self) -> list[SourceRef]:
        """Every reader's inputs, each once, in reader order."""
        seen: dict[str, SourceRef] = {}
        for reader in self.readers:
            for source in reader.sources():
                seen.setdefault(source.id, source)
        return list(seen.values())

    def coverage(self) -> BaseGeometry | None:
        """Where every reader has imagery (grid CRS): a pixel is valid only there; None if one cannot tell."""
        shapes = [getattr(reader, "coverage", lambda: None)() for reader in self.readers]
        if not shapes or any(shape is None for shape in shapes):
            return None
        return shapely.intersection_all(shapes)

    def read(self, block: Block) -> Array:
        """Stacked reflectance of ``block``."""
        return self.read_pixels(block).reflectance

    def read_pixels(self, block: Block) -> BlockPixels:
        """Stacked reflectance and each pixel's status over all composites."""
        parts = [reader.read_pixels(block) for reader in self.readers]
        reflectance = np.concatenate([part.reflectance for part in parts])
        statuses = np.stack([part.status for part in parts])
        ok = np.all(statuses == Status.OK, axis=0)
        cloud = np.any(statuses == Status.CLOUD, axis=0)
        status = np.where(ok, Status.OK, np.where(cloud, Status.CLOUD, Status.NODATA)).astype(np.uint8)
        reflectance[:, ~ok] = np.nan
        return BlockPixels(reflectance, status)
