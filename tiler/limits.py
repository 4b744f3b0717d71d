"""Request limits: tile indexes, tile sizes and part sizes that keep every request small and bounded."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Path, Query
from pydantic import Field
from titiler.core.dependencies import PartFeatureParams

from tiler.errors import BadParameterError

MAX_ZOOM = 30
MAX_TILESIZE = 1024
MAX_BUFFER = 64.0
MAX_PART_SIZE = 2048


async def tile_limits(
    z: Annotated[int, Path(description="Zoom level.")],
    x: Annotated[int, Path(description="Tile column.")],
    y: Annotated[int, Path(description="Tile row.")],
    tilesize: Annotated[
        int | None, Query(description=f"Tile size in pixels (at most {MAX_TILESIZE}).")
    ] = None,
    buffer: Annotated[
        float | None, Query(description=f"Tile buffer in pixels (at most {MAX_BUFFER:g}).")
    ] = None,
) -> None:
    """Refuse tile requests that cannot be answered or would allocate without bound (400).

    ``async`` because it only compares numbers: FastAPI then calls it in the event loop instead of
    sending it to the thread pool (a hop per tile request).
    """
    if not 0 <= z <= MAX_ZOOM:
        raise BadParameterError(f"zoom {z} is outside 0..{MAX_ZOOM}")
    if x < 0 or y < 0 or x >= 2**z or y >= 2**z:
        raise BadParameterError(f"tile {z}/{x}/{y} does not exist at zoom {z}")
    if tilesize is not None and tilesize > MAX_TILESIZE:
        raise BadParameterError(f"tilesize {tilesize} is larger than {MAX_TILESIZE}")
    if buffer is not None and buffer > MAX_BUFFER:
        raise BadParameterError(f"buffer {buffer:g} is larger than {MAX_BUFFER:g}")


@dataclass
class BoundedPartParams(PartFeatureParams):
    """TiTiler's part/feature sizes, read at most ``MAX_PART_SIZE`` pixels wide (POST /cog/statistics)."""

    max_size: Annotated[
        int | None, Field(description="Maximum image size to read onto.", le=MAX_PART_SIZE)
    ] = MAX_PART_SIZE
    height: Annotated[int | None, Field(description="Force output image height.", le=MAX_PART_SIZE)] = None
    width: Annotated[int | None, Field(description="Force output image width.", le=MAX_PART_SIZE)] = None

    def __post_init__(self) -> None:
        """Forced sizes replace ``max_size``; without any, ``max_size`` bounds the read."""
        if self.width or self.height:
            self.max_size = None
        elif self.max_size is None:
            self.max_size = MAX_PART_SIZE
