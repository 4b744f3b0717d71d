"""Request limits: image sizes, bands, histogram bins, tile indexes, tile buffers and part sizes.

``ParameterLimits`` is one app-wide dependency: whichever route declares a ``width``, ``height``,
``max_size`` or ``tilesize`` (in its query or path: tiles, previews, statistics, colormap pictures),
its value must be 1..``max_image_size``; a ``minzoom`` or ``maxzoom`` (TileJSON) must be 0..30; the
bands it reads or computes (``bidx``, ``assets``, ``expression``) at most ``max_bands``. It reads the
request itself, so it adds no parameter to the OpenAPI schema.
"""

import functools
import itertools
import math
import re
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import morecantile
from fastapi import Path, Query, Request
from pydantic import Field
from titiler.core.dependencies import HistogramParams, PartFeatureParams, StatisticsParams

from lulc.aoi import AoiTooComplexError, check_vertex_limit
from tiler.errors import BadParameterError

MAX_ZOOM = 30
MAX_BUFFER = 64.0
MAX_PADDING = 64
"""Pixels rio-tiler reads around a tile against resampling artefacts: a few; each is a row and a column
more on every side (HTTP review: padding 10,000 on a tile of a map in the tile grid's CRS took 1.6 GB)."""
DEFAULT_COVER_SCALE = 10
"""TiTiler's ``cover_scale`` when the request gives none."""
SIZE_PARAMETERS = ("width", "height", "max_size", "tilesize")
"""Parameters that set an image's size in pixels, in any route."""
RANGED_PARAMETERS = {"padding": (0, MAX_PADDING)}
"""Other whole-number parameters with a range, in any route."""
ZOOM_PARAMETERS = ("minzoom", "maxzoom")
"""Parameters that name a zoom level, in any route."""
BAND_PARAMETERS = ("bidx", "assets", "expression")
"""Parameters that name the bands a request reads or computes, in any route."""
BAND_REFERENCE = re.compile(r"\bb[0-9a-z]+\b", re.IGNORECASE)
"""A band in a rio-tiler expression (``b1``; rio-tiler's own pattern)."""
ASSET_BAND_OPTIONS = ("bidx", "bands")
"""Options of an ``assets`` entry (``name|bidx=1,2``) that list the asset's bands."""


def expression_bands(expression: str) -> int:
    """Bands an expression reads or computes: its distinct band references, or its outputs if more.

    rio-tiler reads each referenced band once, however often the expression names it.
    """
    outputs = len([block for block in expression.split(";") if block.strip()])
    return max(len({ref.lower() for ref in BAND_REFERENCE.findall(expression)}), outputs)


def asset_bands(value: str) -> int:
    """Bands one ``assets`` entry reads: what its ``|bidx=``, ``|bands=``, ``|expression=`` name, else one."""
    if "|" not in value:
        return 1
    named = 0
    for option in value.split("|")[1:]:
        key, _, listed = option.partition("=")
        if key in ASSET_BAND_OPTIONS:
            named += len(listed.split(","))
        elif key == "expression":
            named += expression_bands(listed)
    return max(1, named)


def request_bands(name: str, values: list[str]) -> int:
    """Bands the values of a band parameter (``BAND_PARAMETERS``) make a request read or compute."""
    if name == "assets":
        return sum(asset_bands(value) for value in values)
    if name == "expression":
        return sum(expression_bands(value) for value in values)
    return len(values)


class ParameterLimits:
    """An app-wide dependency refusing sizes outside 1..``max_image_size``, bad zooms, many bands (400).

    Bands: more than ``max_bands`` named by ``bidx``, ``assets`` or an ``expression`` (``request_bands``).
    """

    def __init__(self, max_image_size: int, max_bands: int, max_coverage_pixels: int = 2**29) -> None:
        self.ranges = {
            **dict.fromkeys(SIZE_PARAMETERS, (1, max_image_size)),
            **dict.fromkeys(ZOOM_PARAMETERS, (0, MAX_ZOOM)),
            **RANGED_PARAMETERS,
        }
        self.max_image_size = max_image_size
        self.max_bands = max_bands
        self.max_coverage_pixels = max_coverage_pixels
        self._declared: dict[int, set[str]] = {}

    async def __call__(self, request: Request) -> None:
        """Check the route's size and band parameters (``async``: no thread-pool hop for a few checks)."""
        route = request.scope.get("route")
        key = id(route)
        if key not in self._declared:
            dependant = getattr(route, "dependant", None)
            limited = {*self.ranges, *BAND_PARAMETERS, "cover_scale"}
            self._declared[key] = limited_parameters(dependant, limited) if dependant else set()
        for name in (n for n in BAND_PARAMETERS if n in self._declared[key]):
            bands = request_bands(name, request.query_params.getlist(name))
            if bands > self.max_bands:
                raise BadParameterError(
                    f"{name} asks for {bands} bands; this server reads at most {self.max_bands} per request "
                    "(max_bands)"
                )
        for name in (n for n in self.ranges if n in self._declared[key]):  # in a fixed order
            values = request.query_params.getlist(name)
            if name in request.path_params:
                values.append(str(request.path_params[name]))
            for text in values:
                value = whole_number(text)
                if value is None:
                    continue  # not a whole number: the route's own validation answers 400
                low, high = self.ranges[name]
                if not low <= value <= high:
                    raise BadParameterError(f"{name} {value} is outside {low}..{high}")
        if "cover_scale" in self._declared[key]:
            self._check_coverage(request)

    def _check_coverage(self, request: Request) -> None:
        """Refuse a coverage grid (the image's pixels times ``cover_scale`` squared) over the setting.

        rio-tiler rasterises each feature at ``cover_scale`` times the image's resolution, a byte per cell
        (HTTP review: ``cover_scale=200`` on a 256 px image took 2 GB). The image is at most ``max_size``
        pixels a side (the route's default: ``max_image_size``), or ``width`` x ``height`` when forced.
        """
        numbers: dict[str, int] = {}
        for name in ("cover_scale", "max_size", "width", "height"):
            value = whole_number(request.query_params.get(name))
            if value is not None:  # absent: the default; not a whole number: the route's validation's 400
                numbers[name] = value
        scale = numbers.get("cover_scale", DEFAULT_COVER_SCALE)
        if "width" in numbers or "height" in numbers:
            cells = numbers.get("width", self.max_image_size) * numbers.get("height", self.max_image_size)
        else:
            cells = numbers.get("max_size", self.max_image_size) ** 2
        if cells * scale * scale > self.max_coverage_pixels:
            raise BadParameterError(
                f"cover_scale {scale} on an image of up to {cells:,} pixels rasterises "
                f"{cells * scale * scale:,} cells, more than this server's {self.max_coverage_pixels:,} "
                "(max_coverage_pixels): give a smaller cover_scale or max_size"
            )


def whole_number(text: str | None) -> int | None:
    """The whole number ``text`` stands for as a route's validation reads it (``10000.0`` and ``1e4`` too).

    ``int(text)`` refused ``10000.0``, which pydantic reads as 10000: the limits were skipped and the value
    used (review: ``padding=10000.0``). None for anything else (no number, a fraction, not finite).
    """
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value.is_integer() else None


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


def bounded_histogram_params(max_bins: int) -> type[HistogramParams]:
    """TiTiler's histogram options, refused (400) unless numpy can honour them within ``max_bins`` bins.

    ``histogram_bins`` is a count (1..``max_bins``) or at most ``max_bins`` + 1 finite, increasing edges;
    ``histogram_range`` two finite numbers, the first not above the second. Checked as the route's
    parameters are parsed: before any read (numpy would only fail after it, with a 500).
    """

    @dataclass
    class BoundedHistogramParams(HistogramParams):
        def __post_init__(self) -> None:
            super().__post_init__()
            bins: int | list[float] = self.bins  # type: ignore[assignment]  # parsed by the parent
            if isinstance(bins, int):
                if not 1 <= bins <= max_bins:
                    raise BadParameterError(
                        f"histogram_bins asks for {bins} bins; this server counts 1..{max_bins} "
                        "(max_histogram_bins)"
                    )
            else:
                if len(bins) - 1 > max_bins:
                    raise BadParameterError(
                        f"histogram_bins has {len(bins)} bin edges: at most {max_bins + 1} "
                        "(max_histogram_bins + 1)"
                    )
                if not all(math.isfinite(edge) for edge in bins):
                    raise BadParameterError("histogram_bins: every bin edge must be a finite number")
                if any(low > high for low, high in itertools.pairwise(bins)):
                    raise BadParameterError("histogram_bins: bin edges must increase monotonically")
            if self.range is not None:
                bounds: list[float] = self.range  # type: ignore[assignment]  # parsed by the parent: two floats
                low, high = bounds
                if not (math.isfinite(low) and math.isfinite(high)):
                    raise BadParameterError(f"histogram_range {low:g},{high:g}: both must be finite numbers")
                if low > high:
                    raise BadParameterError(
                        f"histogram_range {low:g},{high:g}: the first (minimum) is above the second (maximum)"
                    )

    return BoundedHistogramParams


def bounded_statistics_params(max_values: int) -> type[StatisticsParams]:
    """TiTiler's statistics options, refused (400) beyond ``max_values`` categories or percentiles.

    Each category (``c``) is one more count over every pixel read (100,000 of them on a 2048 px image is
    a pass of 4 million pixels each); percentiles (``p``) must also lie in 0..100 (numpy would fail after the
    read, with a 500).
    """

    @dataclass
    class BoundedStatisticsParams(StatisticsParams):
        def __post_init__(self) -> None:
            super().__post_init__()
            categories = self.categories or []
            if len(categories) > max_values:
                raise BadParameterError(
                    f"c names {len(categories)} categories; this server counts at most {max_values} "
                    "(max_histogram_bins)"
                )
            percentiles = self.percentiles or []
            if len(percentiles) > max_values:
                raise BadParameterError(
                    f"p names {len(percentiles)} percentiles; at most {max_values} (max_histogram_bins)"
                )
            if any(not 0 <= value <= 100 for value in percentiles):
                raise BadParameterError(f"p {percentiles}: percentiles lie in 0..100")

    return BoundedStatisticsParams
