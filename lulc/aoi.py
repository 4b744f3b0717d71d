"""The one AOI parser: a GeoJSON geometry, Feature or FeatureCollection in lon/lat, checked; its true area.

Strict about what RFC 7946 requires and what would otherwise be measured wrongly: rings must be
closed, positions are ``[lon, lat]`` pairs of finite numbers (no altitude), and no edge may cross the
antimeridian (an AOI crossing it must be split at ±180°, RFC 7946 §3.1.9): shapely would take such a
ring the long way round the globe.
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import shapely
import shapely.geometry
import shapely.ops
from pyproj import Geod
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from lulc.errors import InputError, LimitError
from lulc.local_files import read_text
from lulc.urls import missing_file
from lulc.vector_layers import geometry_layer

_GEOD = Geod(ellps="WGS84")


class AoiTooComplexError(LimitError):
    """The AOI has more vertices than the configured limit."""


def check_vertex_limit(aoi: object, limit: int) -> int:
    """The number of positions in a GeoJSON AOI's polygons, refused when over ``limit``.

    Cheap (no geometry is built), so a huge AOI is refused before any costly parsing; anything
    malformed is left to ``parse_aoi``.

    Raises:
        AoiTooComplexError: more than ``limit`` vertices.
    """
    count = 0
    for ring in _rings_of(aoi):
        count += len(ring)
        if count > limit:
            raise AoiTooComplexError(
                f"the AOI has more than {limit:,} vertices, this server's limit; simplify it"
            )
    return count


def parse_bbox(value: str) -> list[float] | None:
    """``w,s,e,n`` (four comma-separated numbers, as ``--aoi`` takes them) as a list, else None."""
    numbers = comma_numbers(value)
    return numbers if numbers is not None and len(numbers) == 4 else None


def comma_numbers(value: str) -> list[float] | None:
    """The comma-separated numbers ``value`` is (one or more), else None."""
    try:
        return [float(part) for part in value.split(",")]
    except ValueError:
        return None


def bbox_polygon(bbox: list[float]) -> dict[str, Any]:
    """A ``[w, s, e, n]`` box in EPSG:4326 as a GeoJSON Polygon for ``parse_aoi`` (which checks the rest).

    A box whose west is east of its east and which spans less than half the world that way crosses the
    antimeridian (RFC 7946 5.2, STAC's bbox): it becomes a MultiPolygon of its two parts, split at ±180
    (AOI review: it was refused). Any other west-of-east is a box turned round, refused.

    Raises:
        InputError: not four numbers, west not below east (but across the antimeridian), or south not below
            north.
    """
    if len(bbox) != 4:
        raise InputError(f"an AOI box is [w, s, e, n], got {bbox}")
    west, south, east, north = bbox
    across = -180 <= east < west <= 180 and (180 - west) + (east + 180) < 180
    if not ((west < east or across) and south < north):
        raise InputError(
            f"AOI box {bbox}: w,s,e,n in degrees (EPSG:4326) with w < e and s < n (w > e only for a box "
            "across the antimeridian, under 180 degrees wide)"
        )

    def ring(w: float, e: float) -> list[list[float]]:
        return [[w, south], [e, south], [e, north], [w, north], [w, south]]

    if west < east:
        return {"type": "Polygon", "coordinates": [ring(west, east)]}
    return {"type": "MultiPolygon", "coordinates": [[ring(west, 180.0)], [ring(-180.0, east)]]}


def aoi_argument(value: str) -> dict[str, Any]:
    """``--aoi`` as GeoJSON for ``parse_aoi``: ``w,s,e,n`` (``bbox_polygon``), else a file's AOI."""
    numbers = comma_numbers(value)
    if numbers is not None and len(numbers) == 4:
        return bbox_polygon(numbers)
    if numbers is not None and len(numbers) > 1 and not Path(value).exists():
        raise InputError(
            f"AOI {value}: a box is four numbers w,s,e,n in degrees, got {len(numbers)} (and no file has "
            "that name)"
        )
    return read_aoi_file(value)


def _is_number(value: object) -> bool:
    """A real number, numpy's too (a frame's ``total_bounds``), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def geojson_aoi(aoi: object) -> dict[str, Any] | None:
    """The AOI as GeoJSON for the one parser (``parse_aoi``), from what a user has: every API takes these.

    A GeoJSON mapping, a geometry (``__geo_interface__``) in lon/lat, a GeoDataFrame or GeoSeries (made
    lon/lat from its CRS), a vector file's path, ``"w,s,e,n"`` or a sequence of those four numbers; heights
    dropped. ``training.api.train`` took a box but no geometry and ``service.api.classify`` a geometry but
    no box (notebook review): one function now serves both.

    Raises:
        InputError: none of these forms.
    """
    if aoi is None:
        return None
    if isinstance(aoi, dict):  # heights dropped, as a file's are (a notebook's shapely mapping keeps them)
        return without_heights(aoi)
    if isinstance(aoi, os.PathLike):
        return read_aoi_file(Path(aoi))
    if isinstance(aoi, str):
        return aoi_argument(aoi)
    if isinstance(aoi, list | tuple) and len(aoi) == 4 and all(_is_number(v) for v in aoi):
        return bbox_polygon([float(v) for v in aoi])
    to_crs = getattr(aoi, "to_crs", None)
    if callable(to_crs):  # a GeoDataFrame or GeoSeries: lon/lat from its CRS, as a file's
        if getattr(aoi, "crs", None) is None:
            raise InputError("the AOI GeoDataFrame has no CRS: set the one its coordinates are in (set_crs)")
        aoi = to_crs("EPSG:4326")
    mapping = getattr(aoi, "__geo_interface__", None)
    if isinstance(mapping, dict):
        return without_heights(mapping)
    raise InputError(
        'the AOI must be GeoJSON, a geometry, a GeoDataFrame, a file\'s path, "w,s,e,n" or [w, s, e, n] in '
        f"degrees, got {type(aoi).__name__}"
    )


JSON_SUFFIXES = (".json", ".geojson")


def read_aoi_file(path: str | Path) -> dict[str, Any]:
    """The AOI in a file, as GeoJSON for ``parse_aoi`` (``lulc classify --aoi``, recipes, notebooks alike).

    Any vector file OGR reads (GeoJSON, a Shapefile, a GeoPackage of one layer): its features in lon/lat,
    reprojected from the file's CRS (a GeoJSON without one is lon/lat, RFC 7946), heights dropped, features
    without a geometry skipped; ``parse_aoi`` then checks them as strictly as a request's AOI. The AOI a GIS
    hands over (the tutorial's is a PolygonZ Shapefile in World Mercator) maps as it trains: classification
    took GeoJSON only, training any file.

    Raises:
        InputError: the file is missing, unreadable (not JSON, for a .json/.geojson), holds several layers or
            no features, or declares no CRS.
    """
    if not str(path).strip():
        raise InputError("the AOI file's name is empty: give a GeoJSON, Shapefile or GeoPackage")
    path = Path(path)
    if not path.exists():
        raise InputError(missing_file("AOI file", path))
    if not path.is_file() and not path.is_dir():  # a FIFO or device: reading it never ends (CLI review: hung)
        raise InputError(f"AOI file {path} is not a regular file")
    if path.suffix.lower() in JSON_SUFFIXES:
        text = read_text(path, "AOI file")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"AOI file {path} is not valid GeoJSON: {exc}") from exc
        if not isinstance(data, dict):
            raise InputError(f"AOI file {path} is not a GeoJSON object")
        for ring in _rings_of(data):  # OGR would close it with a warning, or fail with GEOS's words
            if ring and isinstance(ring[0], list) and isinstance(ring[-1], list):
                _check_closed(ring)
        if "crs" not in data:  # lon/lat already: no OGR (geopandas' import alone was 0.45 s of a run)
            return without_heights(data)
    return _vector_aoi(path)


def without_heights(data: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON object's features without a geometry dropped and its positions cut to ``[lon, lat]``.

    Lists or tuples (a mapping made in Python), given back as lists.
    """

    def flat(value: Any) -> Any:
        if isinstance(value, list | tuple) and value and all(isinstance(v, int | float) for v in value):
            return list(value[:2])  # a position
        return [flat(v) for v in value] if isinstance(value, list | tuple) else value

    def geometry(item: Any) -> Any:
        if isinstance(item, dict) and "coordinates" in item:
            return {**item, "coordinates": flat(item["coordinates"])}
        return item

    if data.get("type") == "FeatureCollection" and isinstance(data.get("features"), list):
        features = [f for f in data["features"] if not (isinstance(f, dict) and f.get("geometry") is None)]
        return {
            **data,
            "features": [
                {**f, "geometry": geometry(f.get("geometry"))} if isinstance(f, dict) else f for f in features
            ],
        }
    if data.get("type") == "Feature":
        return {**data, "geometry": geometry(data.get("geometry"))}
    return geometry(data)


def _vector_aoi(path: Path) -> dict[str, Any]:
    import geopandas as gpd  # heavy: only for AOI files

    layer = geometry_layer(path, "AOI file", "the AOI's")
    try:
        with warnings.catch_warnings():  # one error line, not pyogrio's warnings, for whatever goes wrong
            warnings.simplefilter("ignore")
            frame = gpd.read_file(path, layer=layer) if layer is not None else gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable data
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"AOI file {path} is not a vector file GDAL reads: {first}") from exc
    if len(frame) == 0:
        raise InputError(f"AOI file {path} holds no features")
    if frame.crs is None:
        raise InputError(f"AOI file {path} declares no CRS: save it with one (a .prj beside a Shapefile)")
    geometries = [g for g in frame.to_crs("EPSG:4326").geometry if g is not None and not g.is_empty]
    if not geometries:
        raise InputError(f"AOI file {path} has only empty geometries")
    features = [
        {"type": "Feature", "properties": {}, "geometry": json.loads(shapely.to_geojson(shapely.force_2d(g)))}
        for g in geometries
    ]
    return {"type": "FeatureCollection", "features": features}


def parse_aoi(aoi: object) -> BaseGeometry:
    """The AOI polygon(s) of a GeoJSON geometry, Feature or FeatureCollection in EPSG:4326.

    A position's height (RFC 7946 allows one) is dropped, and so is a FeatureCollection's feature without a
    geometry (``null``: RFC 7946's unlocated feature), as ``read_aoi_file`` drops them: a request refused
    what the command line took (AOI review).

    Raises:
        InputError: Not GeoJSON, no polygon, an unclosed ring, non-numeric positions or more than three
            numbers, an edge crossing the antimeridian, coordinates outside lon/lat range, or an invalid
            polygon (self-intersection, ...), with shapely's explanation of where.
    """
    if not isinstance(aoi, dict):
        raise InputError(f"the AOI must be a GeoJSON object, got {type(aoi).__name__}")
    kind = aoi.get("type")
    if kind == "FeatureCollection":
        features = aoi.get("features")
        if not isinstance(features, list) or not features:
            raise InputError("the AOI FeatureCollection has no features")
        located = [f for f in features if not (isinstance(f, dict) and f.get("geometry", 0) is None)]
        if not located:
            raise InputError("the AOI FeatureCollection has no feature with a geometry (all are null)")
        geometries = [_feature_geometry(f) for f in located]
    elif kind == "Feature":
        geometries = [_feature_geometry(aoi)]
    else:
        geometries = [_geometry(aoi)]
    for geometry in geometries:
        if not geometry.is_valid:
            raise InputError(f"the AOI polygon is invalid: {explain_validity(geometry)}")
    merged = geometries[0] if len(geometries) == 1 else shapely.ops.unary_union(geometries)
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
        raise InputError(f"the AOI must be a Polygon or MultiPolygon, got {str(data['type'])[:40]!r}")
    for ring in _rings_of(data):
        _check_ring(ring)
    try:
        geometry = shapely.force_2d(shapely.geometry.shape(data))
    except Exception as exc:  # shapely raises several types (ValueError, TypeError, GEOSException)
        raise InputError(f"the AOI is not valid GeoJSON: {exc}") from exc
    if geometry.is_empty:
        raise InputError("the AOI polygon is empty")
    return geometry


def _rings_of(data: object) -> Iterator[list[Any]]:
    """The rings of a GeoJSON geometry, Feature or FeatureCollection; malformed parts skipped.

    Lists or tuples: a mapping made in Python (shapely's ``mapping``, a ``__geo_interface__``) has tuples,
    and skipping them skipped every check of its positions (diff review: metres passed as lon/lat).
    """
    if not isinstance(data, dict):
        return
    kind = data.get("type")
    if kind == "FeatureCollection" and isinstance(data.get("features"), list):
        for feature in data["features"]:
            yield from _rings_of(feature)
    elif kind == "Feature":
        yield from _rings_of(data.get("geometry"))
    elif kind in ("Polygon", "MultiPolygon"):
        coordinates = data.get("coordinates")
        polygons = [coordinates] if kind == "Polygon" else coordinates
        if isinstance(polygons, list | tuple):
            for polygon in polygons:
                if isinstance(polygon, list | tuple):
                    yield from (list(ring) for ring in polygon if isinstance(ring, list | tuple))


def _finite(value: float) -> bool:
    """Whether a JSON number is finite; an integer too large for a float (``10**400``) is not."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _check_closed(ring: list[Any]) -> None:
    """Refuse a ring whose last position is not its first (as ``[lon, lat]``: a height does not count)."""
    if list(ring[0])[:2] != list(ring[-1])[:2]:
        raise InputError(
            f"the AOI has a ring that is not closed: it starts at {list(ring[0])} and ends at "
            f"{list(ring[-1])} (GeoJSON rings repeat their first position last)"
        )


def _check_ring(ring: list[Any]) -> None:
    """Refuse a ring that is not closed, has positions that are not ``[lon, lat]`` in range, or crosses ±180°.

    The range first: a polygon in projected metres would otherwise be told it crosses the antimeridian. An
    edge from exactly -180 to 180 runs along the world's full width (a world box), not across it.
    """
    for position in ring:
        if not isinstance(position, list | tuple) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and _finite(v) for v in position
        ):
            raise InputError(
                f"the AOI has a position that is not a pair of finite numbers: {str(position)[:80]}"
            )
        if len(position) not in (2, 3):
            raise InputError(
                f"the AOI's positions must be [longitude, latitude] (and optionally a height); got "
                f"{len(position)} values ({str(position)[:80]})"
            )
    if len(ring) < 4:
        raise InputError(f"the AOI has a ring of {len(ring)} positions; a closed ring needs at least 4")
    _check_closed(ring)
    ring = [list(position)[:2] for position in ring]
    for lon, lat in ring:
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise InputError(
                f"the AOI has a position that is not longitude/latitude (EPSG:4326) in range: "
                f"[{lon:g}, {lat:g}] (GeoJSON positions are [longitude, latitude] in degrees)"
            )
    for (lon0, _), (lon1, _) in itertools.pairwise(ring):
        if abs(lon1 - lon0) > 180 and {lon0, lon1} != {-180, 180}:  # -180 to 180: the world's full width
            raise InputError(
                f"the AOI crosses the antimeridian (an edge from longitude {lon0:g} to {lon1:g}); "
                "split it at ±180° into a MultiPolygon (RFC 7946 §3.1.9)"
            )


_AREA_PIECES = [
    shapely.geometry.box(x, y, x + 90, y + 45) for x in range(-180, 180, 90) for y in range(-90, 90, 45)
]
"""Cells of 90° x 45°: a polygon is measured piece by piece, each far smaller than a hemisphere."""


def aoi_area_m2(geometry: BaseGeometry | dict[str, Any]) -> float:
    """Geodesic area (WGS84 ellipsoid) of a lon/lat polygon or GeoJSON AOI, in square metres.

    Measured in pieces of at most 90° x 45°: a geodesic ring enclosing more than half the Earth (a band
    from -85° to 85°, the world box) has an area known only up to the Earth's, and would come out as the
    complement's (2 million km² for the band instead of 508 million).
    """
    shape = geometry if isinstance(geometry, BaseGeometry) else parse_aoi(geometry)
    pieces = [shape] if _inside_one_piece(shape) else [shape.intersection(cell) for cell in _AREA_PIECES]
    total = 0.0
    for piece in pieces:
        if not piece.is_empty and piece.area > 0:
            area, _ = _GEOD.geometry_area_perimeter(shapely.segmentize(piece, 0.01))
            total += abs(float(area))
    return total


def _inside_one_piece(shape: BaseGeometry) -> bool:
    west, south, east, north = shape.bounds
    return east - west <= 90 and north - south <= 45
