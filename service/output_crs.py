"""The output grid a request may ask for (projected, in metres, holding the AOI, bounded); the checks' order.

An order's checks needing no AOI geometry come first (``check_before_aoi``), then the AOI's (``check_aoi``).

Models have a resolution in metres, so a geographic CRS (``EPSG:4326``: degrees) or one of another
body (``IAU_2015:30100``, the Moon) is refused up front, not after the imagery has been read; so is a
CRS the AOI's points do not come back from (Swiss ``EPSG:2056`` for an AOI in Japan: its projection gives
finite numbers there, which mean nothing).
"""

from __future__ import annotations

import math
from typing import Any

from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import CRSError, ProjError
from shapely.geometry.base import BaseGeometry

from lulc.aoi import check_vertex_limit, parse_aoi
from lulc.contract import ModelContract
from lulc.errors import InputError
from lulc.grid import grid_for_aoi, requested_crs, utm_crs
from service.settings import ServiceSettings
from service.workflow import AoiTooLargeError, Order, aoi_km2, check_model_window, stac_location

ROUND_TRIP_FRACTION = 0.1
"""A point of the AOI must come back from the output CRS within this fraction of a pixel (1 m at 10 m)."""

_GEOD = Geod(ellps="WGS84")


def check_before_aoi(order: Order, settings: ServiceSettings, contract: ModelContract) -> None:
    """Every check of an order that needs no AOI geometry (cheap): time window, output CRS, item source.

    Run before ``check_aoi``: a request these refuse costs no AOI parsing, however large its AOI.

    Raises:
        InputError: invalid datetime, a window the model cannot classify, an unusable CRS.
        HostNotAllowedError: the item source is not on the allow-list.
    """
    from lulc.datetimes import parse_datetime_interval

    parse_datetime_interval(order.datetime)
    check_model_window(order, contract)  # a job that would fail only after starting, refused now
    check_output_crs(order.crs, None, contract.inputs.resolution)
    stac_location(order, settings)


def check_aoi(order: Order, settings: ServiceSettings, resolution: float) -> float:
    """The checks of an order's AOI, the costly ones: vertex count, geometry and area, output grid; its km².

    Raises:
        AoiTooComplexError: more than ``max_aoi_vertices`` vertices (counted before any geometry is built).
        InputError: not a valid (multi)polygon in lon/lat; an output CRS that cannot hold it.
        AoiTooLargeError: over ``max_aoi_km2``, or an output grid over ``max_grid_pixels``.
    """
    check_vertex_limit(order.aoi, settings.max_aoi_vertices)
    shape = parse_aoi(order.aoi)  # once: a 100,000-vertex AOI takes about half a second
    area = aoi_km2(shape, settings)
    check_output_grid(order.crs, shape, resolution, settings.max_grid_pixels)
    return area


def check_output_grid(
    crs: str | None,
    aoi: dict[str, Any] | BaseGeometry,
    resolution: float,
    max_pixels: int,
    limit: str = "this service's limit of {mpx} Mpx",
    advice: str = "classify its parts apart",
) -> None:
    """Refuse an output CRS the model's ``resolution`` cannot be laid out in, or a grid over ``max_pixels``.

    The grid is the AOI's bounding box in the output CRS (the AOI's UTM zone without one), which the area
    limit does not bound: two small squares far apart make a grid as large as the box around both.
    ``limit`` and ``advice`` word the refusal (``{mpx}``: the limit in Mpx) for who set the limit: the
    service's settings, or ``lulc classify``'s ``--max-mpx``.

    Raises:
        InputError: unknown, not projected, not in metres, or the AOI's lon/lat do not go there and back.
        AoiTooLargeError: the grid has more than ``max_pixels`` pixels.
    """
    shape = aoi if isinstance(aoi, BaseGeometry) else parse_aoi(aoi)
    canonical = _check_crs(crs, shape, resolution)
    grid = grid_for_aoi(shape, resolution, canonical if canonical is not None else utm_crs(shape))
    pixels = grid.width * grid.height
    if pixels > max_pixels:
        raise AoiTooLargeError(
            f"the AOI's bounding box makes a {grid.width:,} x {grid.height:,} px grid at {resolution:g} m "
            f"({pixels / 1e6:,.1f} Mpx), over {limit.format(mpx=f'{max_pixels / 1e6:,.1f}')}; {advice}"
        )


def check_output_crs(crs: str | None, aoi: dict[str, Any] | None, resolution: float) -> None:
    """Refuse an output CRS the model's ``resolution`` (metres) cannot be laid out in over ``aoi``.

    Without an AOI (an ``--image`` run over the whole image) only the CRS itself is checked.

    Raises:
        InputError: unknown, not projected, not in metres, or the AOI's lon/lat do not go there and back.
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
    _check_round_trip(crs, parsed, shape, resolution)
    return canonical


def _check_round_trip(crs: str, parsed: CRS, shape: BaseGeometry, resolution: float) -> None:
    """Refuse a CRS the AOI's bounding box corners, edge midpoints and centre do not come back from.

    Finite projected numbers are not enough: outside its area of use a projection may give finite
    coordinates that its inverse takes elsewhere (EPSG:2056 sends Tokyo 85 degrees west), and the run
    would read all imagery before finding no valid pixel.
    """
    west, south, east, north = shape.bounds
    lons = [west, (west + east) / 2, east] * 3
    lats = [south] * 3 + [(south + north) / 2] * 3 + [north] * 3
    try:
        to_crs = Transformer.from_crs("EPSG:4326", parsed, always_xy=True)
        from_crs = Transformer.from_crs(parsed, "EPSG:4326", always_xy=True)
        xs, ys = to_crs.transform(lons, lats, errcheck=True)
        if not all(math.isfinite(v) for v in (*xs, *ys)):
            raise InputError(f"the AOI lies outside where the output CRS {crs[:100]!r} is defined")
        back_lons, back_lats = from_crs.transform(xs, ys, errcheck=True)
    except ProjError as exc:
        raise InputError(f"the AOI cannot be transformed to the output CRS {crs[:100]!r}: {exc}") from exc
    tolerance = ROUND_TRIP_FRACTION * resolution
    for lon, lat, back_lon, back_lat in zip(lons, lats, back_lons, back_lats, strict=True):
        if math.isfinite(back_lon) and math.isfinite(back_lat):
            _, _, off = _GEOD.inv(lon, lat, back_lon, back_lat)
            if math.isfinite(off) and off <= tolerance:
                continue
            where = f"comes back as ({back_lon:.6g}, {back_lat:.6g}), {off / 1000:,.4g} km away"
        else:
            where = "does not come back"
        raise InputError(
            f"the output CRS {crs[:100]!r} cannot represent the AOI: its point ({lon:.6g}, {lat:.6g}) "
            f"projected to {crs[:100]} and back {where}; choose a CRS whose area of use covers the AOI, e.g. "
            f"its UTM zone {utm_crs(shape)}, or omit `crs`"
        )
