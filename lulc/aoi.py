"""The one AOI parser: a GeoJSON geometry, Feature or FeatureCollection in lon/lat, checked; its true area."""

from __future__ import annotations

from typing import Any

import shapely
import shapely.geometry
import shapely.ops
from pyproj import Geod
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from lulc.errors import InputError

_GEOD = Geod(ellps="WGS84")


def parse_aoi(aoi: dict[str, Any] | None) -> BaseGeometry:
    """The AOI polygon(s) of a GeoJSON geometry, Feature or FeatureCollection in EPSG:4326.

    Raises:
        InputError: Not GeoJSON, no polygon, coordinates outside lon/lat range, or an invalid polygon
            (self-intersection, ...), with shapely's explanation of where.
    """
    if not isinstance(aoi, dict):
        raise InputError(f"the AOI must be a GeoJSON object, got {type(aoi).__name__}")
    kind = aoi.get("type")
    if kind == "FeatureCollection":
        features = aoi.get("features")
        if not isinstance(features, list) or not features:
            raise InputError("the AOI FeatureCollection has no features")
        geometries = [_feature_geometry(f) for f in features]
    elif kind == "Feature":
        geometries = [_feature_geometry(aoi)]
    else:
        geometries = [_geometry(aoi)]
    for geometry in geometries:
        if not geometry.is_valid:
            raise InputError(f"the AOI polygon is invalid: {explain_validity(geometry)}")
    merged = geometries[0] if len(geometries) == 1 else shapely.ops.unary_union(geometries)
    west, south, east, north = merged.bounds
    if west < -180 or east > 180 or south < -90 or north > 90:
        raise InputError(
            f"the AOI's coordinates {merged.bounds} are not longitude/latitude (EPSG:4326) in range"
        )
    if merged.is_empty or merged.area == 0:
        raise InputError("the AOI has no area")
    return merged


def _feature_geometry(feature: object) -> BaseGeometry:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise InputError("the AOI FeatureCollection contains something that is not a GeoJSON Feature")
    return _geometry(feature.get("geometry"))


def _geometry(data: object) -> BaseGeometry:
    if not isinstance(data, dict) or "type" not in data:
        raise InputError("the AOI is not a GeoJSON geometry, Feature or FeatureCollection")
    if data["type"] not in ("Polygon", "MultiPolygon"):
        raise InputError(f"the AOI must be a Polygon or MultiPolygon, got {data['type']!r}")
    try:
        geometry = shapely.geometry.shape(data)
    except Exception as exc:  # shapely raises several types (ValueError, TypeError, GEOSException)
        raise InputError(f"the AOI is not valid GeoJSON: {exc}") from exc
    if geometry.is_empty:
        raise InputError("the AOI polygon is empty")
    return geometry


def aoi_area_m2(geometry: BaseGeometry | dict[str, Any]) -> float:
    """Geodesic area (WGS84 ellipsoid) of a lon/lat polygon or GeoJSON AOI, in square metres."""
    shape = geometry if isinstance(geometry, BaseGeometry) else parse_aoi(geometry)
    area, _ = _GEOD.geometry_area_perimeter(shapely.segmentize(shape, 0.01))
    return abs(float(area))
