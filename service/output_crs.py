"""The output grid a request may ask for: projected, in metres, reachable from the AOI's lon/lat, bounded.

Models have a resolution in metres, so a geographic CRS (``EPSG:4326``: degrees) or one of another
body (``IAU_2015:30100``, the Moon) is refused up front, not after the imagery has been read.
"""

from __future__ import annotations

import math
from typing import Any

from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError
from shapely.geometry.base import BaseGeometry

from lulc.aoi import parse_aoi
from lulc.errors import InputError
from lulc.grid import grid_for_aoi, requested_crs, utm_crs
from service.workflow import AoiTooLargeError


def check_output_grid(crs: str | None, aoi: dict[str, Any], resolution: float, max_pixels: int) -> None:
    """Refuse an output CRS the model's ``resolution`` cannot be laid out in, or a grid over ``max_pixels``.

    The grid is the AOI's bounding box in the output CRS (the AOI's UTM zone without one), which the area
    limit does not bound: two small squares far apart make a grid as large as the box around both.

    Raises:
        InputError: unknown, not projected, not in metres, or no transformation from the AOI's lon/lat.
        AoiTooLargeError: the grid has more than ``max_pixels`` pixels.
    """
    shape = parse_aoi(aoi)
    canonical = _check_crs(crs, shape, resolution)
    grid = grid_for_aoi(shape, resolution, canonical if canonical is not None else utm_crs(shape))
    pixels = grid.width * grid.height
    if pixels > max_pixels:
        raise AoiTooLargeError(
            f"the AOI's bounding box makes a {grid.width:,} x {grid.height:,} px grid at {resolution:g} m "
            f"({pixels / 1e6:,.1f} Mpx), over this service's limit of {max_pixels / 1e6:,.1f} Mpx; classify "
            "its parts apart"
        )


def check_output_crs(crs: str | None, aoi: dict[str, Any] | None, resolution: float) -> None:
    """Refuse an output CRS the model's ``resolution`` (metres) cannot be laid out in over ``aoi``.

    Without an AOI (an ``--image`` run over the whole image) only the CRS itself is checked.

    Raises:
        InputError: unknown, not projected, not in metres, or no transformation from the AOI's lon/lat.
    """
    _check_crs(crs, parse_aoi(aoi) if aoi is not None else None, resolution)


def _check_crs(crs: str | None, shape: BaseGeometry | None, resolution: float) -> str | None:
    """``check_output_crs`` on a parsed AOI (``shape``); the CRS as ``requested_crs`` words it."""
    if crs is None:
        return None
    canonical = requested_crs(crs)
    try:
        parsed = CRS.from_user_input(crs)
    except CRSError as exc:
        raise InputError(f"unknown CRS {crs[:100]!r}: {exc}") from exc
    units = {axis.unit_name for axis in parsed.axis_info}
    if not parsed.is_projected or units != {"metre"}:
        raise InputError(
            f"the output CRS {crs[:100]!r} is not a projected CRS in metres (units: "
            f"{', '.join(sorted(units))}); the model's resolution is {resolution:g} m: choose one such as "
            "a UTM zone (EPSG:326nn), or omit `crs` for the AOI's UTM zone"
        )
    if shape is None:
        return canonical
    west, south, east, north = shape.bounds
    try:
        to_crs = Transformer.from_crs("EPSG:4326", parsed, always_xy=True)
        xs, ys = to_crs.transform([west, east, west, east], [south, south, north, north], errcheck=True)
    except ProjError as exc:
        raise InputError(f"the AOI cannot be transformed to the output CRS {crs[:100]!r}: {exc}") from exc
    if not all(math.isfinite(v) for v in (*xs, *ys)):
        raise InputError(f"the AOI lies outside where the output CRS {crs[:100]!r} is defined")
    return canonical
