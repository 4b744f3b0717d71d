"""Request limits: image sizes, tile indexes, tile buffers and part sizes that keep every request bounded.

``ParameterLimits`` is one app-wide dependency: whichever route declares a ``width``, ``height``,
``max_size`` or ``tilesize`` (in its query or path: tiles, previews, statistics, colormap pictures),
its value must be 1..``max_image_size``; a ``minzoom`` or ``maxzoom`` (TileJSON) must be 0..30. It
reads the request itself, so it adds no parameter to the OpenAPI schema.
"""

import functools
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import morecantile
from fastapi import Path, Query, Request
from pydantic import Field
from titiler.core.dependencies import PartFeatureParams

from lulc.aoi import AoiTooComplexError, check_vertex_limit
from tiler.errors import BadParameterError

MAX_ZOOM = 30
MAX_BUFFER = 64.0
SIZE_PARAMETERS = ("width", "height", "max_size", "tilesize")
"""Parameters that set an image's size in pixels, in any route."""
ZOOM_PARAMETERS = ("minzoom", "maxzoom")
"""Parameters that name a zoom level, in any route."""


class ParameterLimits:
    """An app-wide dependency refusing image sizes outside 1..``max_image_size`` and bad zooms (400)."""

    def __init__(self, max_image_size: int) -> None:
        self.ranges = {
            **dict.fromkeys(SIZE_PARAMETERS, (1, max_image_size)),
            **dict.fromkeys(ZOOM_PARAMETERS, (0, MAX_ZOOM)),
        }
        self._declared: dict[int, set[str]] = {}

    async def __call__(self, request: Request) -> None:
        """Check the route's size parameters (``async``: no thread-pool hop for a few comparisons)."""
        route = request.scope.get("route")
        key = id(route)
        if key not in self._declared:
            dependant = getattr(route, "dependant", None)
            self._declared[key] = limited_parameters(dependant, set(self.ranges)) if dependant else set()
        for name in (n for n in self.ranges if n in self._declared[key]):  # in a fixed order
            values = request.query_params.getlist(name)
            if name in request.path_params:
                values.append(str(request.path_params[name]))
            for text in values:
                try:
                    value = int(text)
                except ValueError:
                    continue  # not a number: the route's own validation answers 400
                low, high = self.ranges[name]
                if not low <= value <= high:
                    raise BadParameterError(f"{name} {value} is outside {low}..{high}")


def limited_parameters(dependant: Any, limited: set[str]) -> set[str]:
    """Which of ``limited`` a FastAPI route (its dependant and sub-dependencies) declares."""
    fields = [*dependant.query_params, *dependant.path_params]
    names = {field.alias for field in fields} & limited
    for sub in dependant.dependencies:
        names |= limited_parameters(sub, limited)
    return names


@functools.lru_cache(maxsize=1024)
def matrix_size(tile_matrix_set: str, z: int) -> tuple[int, int] | None:
    """Columns and rows of a tile matrix set's level ``z`` (None for a set morecantile does not know).

    Not ``2**z`` squares: WorldCRS84Quad has twice as many columns as rows, other sets other shapes.
    """
    if tile_matrix_set not in morecantile.tms.list():
        return None
    with warnings.catch_warnings():  # levels beyond the set's own are extrapolated from its scale
        warnings.simplefilter("ignore", UserWarning)
        matrix = morecantile.tms.get(tile_matrix_set).matrix(z)
    return int(matrix.matrixWidth), int(matrix.matrixHeight)


async def tile_limits(
    request: Request,
    z: Annotated[int, Path(description="Zoom level.")],
    x: Annotated[int, Path(description="Tile column.")],
    y: Annotated[int, Path(description="Tile row.")],
    buffer: Annotated[
        float | None, Query(description=f"Tile buffer in pixels (at most {MAX_BUFFER:g}).")
    ] = None,
) -> None:
    """Refuse tile requests that cannot be answered or would allocate without bound (400).

    The tile must exist in the requested tile matrix set (``WebMercatorQuad`` for routes naming none).
    ``async`` because it only compares numbers: FastAPI then calls it in the event loop instead of
    sending it to the thread pool (a hop per tile request).
    """
    if not 0 <= z <= MAX_ZOOM:
        raise BadParameterError(f"zoom {z} is outside 0..{MAX_ZOOM}")
    size = matrix_size(str(request.path_params.get("tileMatrixSetId", "WebMercatorQuad")), z)
    if x < 0 or y < 0 or (size is not None and (x >= size[0] or y >= size[1])):  # unknown set: the route's
        shape = f" ({size[0]} x {size[1]} tiles)" if size is not None else ""
        raise BadParameterError(f"tile {z}/{x}/{y} does not exist at zoom {z}{shape}")
    if buffer is not None and not 0 <= buffer <= MAX_BUFFER:
        raise BadParameterError(f"buffer {buffer:g} is outside 0..{MAX_BUFFER:g}")


def bounded_part_params(limit: int) -> type[PartFeatureParams]:
    """TiTiler's part/feature sizes, read at most ``limit`` pixels wide by default (POST /cog/statistics)."""

    @dataclass
    class BoundedPartParams(PartFeatureParams):
        max_size: Annotated[int | None, Field(description="Maximum image size to read onto.")] = limit
        height: Annotated[int | None, Field(description="Force output image height.")] = None
        width: Annotated[int | None, Field(description="Force output image width.")] = None

        def __post_init__(self) -> None:
            """Forced sizes replace ``max_size``; without any, ``max_size`` bounds the read."""
            if self.width or self.height:
                self.max_size = None
            elif self.max_size is None:
                self.max_size = limit

    return BoundedPartParams


def feature_limits(max_features: int, max_vertices: int) -> Callable[[Request], Awaitable[None]]:
    """A dependency refusing (413) a POST body of more than ``max_features`` features or ``max_vertices``.

    For TiTiler's ``POST /cog/statistics`` and ``/stac/statistics``, which read one image per feature: the
    body size alone bounds neither (a 4 MB body holds about 18,000 small features). The body is the one
    FastAPI has already read (Starlette keeps it); anything that is not JSON is left to the route.
    """

    async def check(request: Request) -> None:
        try:
            body = await request.json()
        except ValueError:
            return
        features = body.get("features") if isinstance(body, dict) else None
        if isinstance(features, list) and len(features) > max_features:
            raise AoiTooComplexError(
                f"the FeatureCollection has {len(features):,} features, more than this server's limit of "
                f"{max_features:,}; send fewer at a time"
            )
        check_vertex_limit(body, max_vertices)

    return check
