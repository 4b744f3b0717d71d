"""Class areas inside a polygon: per-class pixel counts and hectares, each pixel with its true ground area."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import shapely
import shapely.errors
import shapely.geometry
from pydantic import BaseModel, Field
from rasterio import windows
from rasterio.errors import RasterioIOError
from rasterio.features import geometry_mask
from rasterio.warp import transform_bounds
from rio_tiler.constants import WGS84_CRS
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry

from lulc import applicability
from lulc.aoi import check_vertex_limit, parse_aoi
from lulc.classes import ClassTable
from lulc.errors import InputError
from lulc.gdal_env import REMOTE_RASTER_DRIVER, gdal_env
from lulc.grid import UNMAPPED, pixel_areas_m2, reproject_geometry
from tiler.colormaps import MAX_JSON_BYTES, MapClasses, read_json
from tiler.errors import BadParameterError

logger = logging.getLogger(__name__)


class ClassArea(BaseModel):
    """Pixels and area of one class inside the polygon."""

    value: int
    name: str
    color: str
    pixels: int = Field(description="Map pixels whose centre lies inside the polygon.")
    hectares: float
    percent: float = Field(description="Share of the valid (non-nodata) pixels inside the polygon.")


class AreaStatistics(BaseModel):
    """The answer of ``POST /statistics``."""

    url: str
    crs: str = Field(description="CRS of the map (the counting grid).")
    pixel_area_m2: float = Field(
        description="Mean true (geodesic) ground area of the classified pixels counted, in square metres (of "
        "the pixel at the window's centre when none is)."
    )
    pixels: int = Field(
        description="Map pixels whose centre lies inside the polygon (of a nodata pixel, also on the ground "
        "the run was asked for, where its item tells it)."
    )
    nodata_pixels: int = Field(
        description="Of those, pixels without a class (nodata), counted only on the ground the runs were "
        "asked for (an item's geometry and lulc:unmapped; for /statistics/series the union of its items'): "
        "gaps (cloud, no imagery), not ground off a polygon AOI. A map whose item does not tell it (no "
        "lulc:unmapped: a change map, an older run) counts every nodata pixel in the polygon."
    )
    hectares: float = Field(description="Area of the classified pixels inside the polygon.")
    classes: list[ClassArea]
    aoa_threshold: float | None = Field(
        default=None,
        description="The model's area-of-applicability threshold (DI units), if the run has one.",
    )
    aoa_fraction: float | None = Field(
        default=None,
        description="Share of the classified pixels in the polygon that lie in the area of applicability.",
    )


@dataclass(frozen=True)
class AoaLayer:
    """A run's ``aoa.tif`` (DI x 100, on the map's grid) and the model's threshold in DI units."""

    location: str
    threshold: float


def polygon_from_geojson(body: object, max_vertices: int) -> dict[str, Any]:
    """A valid (Multi)Polygon geometry (EPSG:4326) from a GeoJSON Feature, FeatureCollection or geometry.

    Parsed by the one AOI parser, ``lulc.aoi``, as the classifier service parses its AOIs.

    Raises:
        BadParameterError: Not GeoJSON, no polygon, an invalid (e.g. self-intersecting), unclosed, 3D
            or empty polygon, one crossing the antimeridian, or coordinates outside lon/lat ranges.
        AoiTooComplexError: more than ``max_vertices`` vertices (413).
    """
    check_vertex_limit(body, max_vertices)
    try:
        return dict(mapping(parse_aoi(body)))
    except InputError as exc:
        raise BadParameterError(str(exc)) from None


CELL = 64
"""Pixels of a cell (``CELL`` x ``CELL``) that count with one pixel area, their centre pixel's: a pixel's
true area changes smoothly (by parts per million across 64 pixels of 10 m)."""
STRIP_PIXELS = 4_000_000
"""Pixels read and counted at a time (rows of whole cells): memory stays a few tens of MiB whatever the
polygon, instead of about 50 bytes per pixel of its whole window."""


def _clip_to_map(geometry: Mapping[str, Any], crs: str, bounds: tuple[float, ...]) -> BaseGeometry:
    """The lon/lat polygon cut to the map's lon/lat bounding box (a little wider), then in the map's CRS.

    A polygon far larger than the map (a continent, a pole-to-pole strip) cannot be reprojected whole into
    a UTM zone; the part near the map can, with its edges densified so they follow the projection.
    """
    west, south, east, north = transform_bounds(crs, WGS84_CRS, *bounds, densify_pts=21)
    pad_x = 0.01 * ((east - west) % 360.0 or 360.0) + 1e-6
    pad_y = 0.01 * (north - south) + 1e-6
    south, north = max(-90.0, south - pad_y), min(90.0, north + pad_y)
    if west <= east:
        frame: BaseGeometry = box(max(-180.0, west - pad_x), south, min(180.0, east + pad_x), north)
    else:  # the map crosses the antimeridian: its box is two
        frame = shapely.union(box(west - pad_x, south, 180.0, north), box(-180.0, south, east + pad_x, north))
    near = shape(geometry).intersection(frame)
    if near.is_empty:
        return near
    return reproject_geometry(near, "EPSG:4326", crs)


@dataclass
class _Tally:
    """Per class (table order) pixels and square metres, and the polygon's pixels, nodata and inside AOA."""

    pixels: npt.NDArray[np.int64]
    area_m2: npt.NDArray[np.float64]
    inside: int = 0
    nodata: int = 0
    aoa_inside: int = 0


def class_areas(
    location: str,
    geometry: Mapping[str, Any],
    table: ClassTable,
    max_pixels: int,
    aoa: AoaLayer | None = None,
    mapped: Mapping[str, Any] | None = None,
    gdal_overrides: Mapping[str, str | int] | None = None,
) -> AreaStatistics:
    """Count the map's pixels per class inside ``geometry`` (EPSG:4326) on the map's own grid.

    A pixel counts when its centre lies inside the polygon. ``mapped`` (EPSG:4326): the area the map is
    of (``mapped_area``: a run's AOI, a series' union of them); a nodata pixel outside it is ground the run
    was not asked to map, not a gap, and counts in neither ``pixels`` nor ``nodata_pixels`` (the web map's "No
    data" row counted a polygon AOI's whole bounding box). The window is read at full resolution (never
    from overviews), in strips. Each pixel counts with its true ground area (``lulc.grid.pixel_areas_m2``,
    one value per 64 x 64 cell), so hectares are right in any CRS: metres, feet, degrees, Web Mercator.
    """
    values = table.values
    lookup = np.full(256, -1, dtype=np.int64)
    lookup[np.asarray(values, dtype=np.int64)] = np.arange(len(values))
    tally = _Tally(np.zeros(len(values), dtype=np.int64), np.zeros(len(values), dtype=np.float64))
    with gdal_env(gdal_overrides), rasterio.open(location, driver=REMOTE_RASTER_DRIVER) as dataset:
        dtype = np.dtype(dataset.dtypes[0])
        if dtype.kind not in "iuf":
            raise BadParameterError(
                f"{location} is not a class map: its pixels are {dtype.name}, not numbers of classes"
            )
        crs_text = dataset.crs.to_string()
        native = _clip_to_map(geometry, crs_text, tuple(dataset.bounds))
        covered = _clip_to_map(mapped, crs_text, tuple(dataset.bounds)) if mapped is not None else None
        window = None if native.is_empty else _window(native, dataset)
        if window is not None:
            if window.width * window.height > max_pixels:
                raise BadParameterError(
                    f"the polygon covers {int(window.width * window.height)} map pixels; the limit is "
                    f"{max_pixels}"
                )
            di_source = _open_aoa(aoa)
            try:
                rows = max(CELL, STRIP_PIXELS // max(1, int(window.width)) // CELL * CELL)
                for top in range(int(window.row_off), int(window.row_off + window.height), rows):
                    height = min(rows, int(window.row_off + window.height) - top)
                    strip = windows.Window(int(window.col_off), top, int(window.width), height)
                    _count_strip(dataset, crs_text, di_source, aoa, strip, (native, covered), lookup, tally)
            finally:
                if di_source is not None:
                    di_source.close()
            if di_source is None:
                aoa = None
        valid = int(tally.pixels.sum())
        total_m2 = float(tally.area_m2.sum())
        if valid:
            mean_area = total_m2 / valid
        else:  # nothing counted: the area of the pixel at the window's (or the map's) centre
            row = int(window.row_off + window.height // 2) if window is not None else dataset.height // 2
            col = int(window.col_off + window.width // 2) if window is not None else dataset.width // 2
            mean_area = float(pixel_areas_m2(crs_text, dataset.transform, [row], [col])[0])
    rows_out = [
        ClassArea(
            value=c.value,
            name=c.name,
            color=c.color,
            pixels=int(n),
            hectares=round(float(m2) / 10_000, 6),
            percent=round(100.0 * float(n) / valid, 4) if valid else 0.0,
        )
        for c, n, m2 in zip(table.classes, tally.pixels, tally.area_m2, strict=True)
    ]
    return AreaStatistics(
        url=location,
        crs=crs_text,
        pixel_area_m2=mean_area,
        pixels=tally.inside,
        nodata_pixels=tally.nodata,
        hectares=round(total_m2 / 10_000, 6),
        classes=rows_out,
        aoa_threshold=aoa.threshold if aoa is not None else None,
        aoa_fraction=round(tally.aoa_inside / valid, 6) if aoa is not None and valid else None,
    )


def _window(native: BaseGeometry, dataset: Any) -> windows.Window | None:
    """The map's pixels under the polygon's bounds (whole pixels), or None when it misses the map."""
    left, bottom, right, top = shapely.bounds(native).tolist()
    window = windows.from_bounds(left, bottom, right, top, transform=dataset.transform)
    col0, row0 = math.floor(window.col_off), math.floor(window.row_off)
    col1 = math.ceil(window.col_off + window.width)
    row1 = math.ceil(window.row_off + window.height)
    try:
        found = windows.Window(col0, row0, col1 - col0, row1 - row0).intersection(
            windows.Window(0, 0, dataset.width, dataset.height)
        )
    except windows.WindowError:
        return None
    return found if found.width >= 1 and found.height >= 1 else None


def _open_aoa(aoa: AoaLayer | None) -> Any:
    """The run's ``aoa.tif`` opened, or None without one or when it is gone (a copied or partial run)."""
    if aoa is None:
        return None
    try:
        return rasterio.open(aoa.location, driver=REMOTE_RASTER_DRIVER)
    except RasterioIOError:
        return None


def _count_strip(
    dataset: Any,
    crs: str,
    di_source: Any,
    aoa: AoaLayer | None,
    strip: windows.Window,
    shapes: tuple[BaseGeometry, BaseGeometry | None],
    lookup: npt.NDArray[np.int64],
    tally: _Tally,
) -> None:
    """Add one strip's pixels inside the polygon to ``tally``, each class's by 64 x 64 cell and its area.

    ``shapes``: the polygon, and the mapped area (None: all of the map) outside which nodata is not a gap.
    """
    native, covered = shapes
    data = dataset.read(1, window=strip, masked=True)
    transform = windows.transform(strip, dataset.transform)
    inside = ~geometry_mask([native], out_shape=data.shape, transform=transform)
    invalid = np.ma.getmaskarray(data)
    if covered is not None:  # nodata off the mapped area is not the map's: left out
        off_map = (
            geometry_mask([covered], out_shape=data.shape, transform=transform)
            if not covered.is_empty
            else True
        )
        inside &= ~(invalid & off_map)
    tally.inside += int(inside.sum())
    tally.nodata += int((inside & invalid).sum())
    column = _columns(np.asarray(data.data), lookup)
    counted = inside & ~invalid & (column >= 0)
    if di_source is not None and aoa is not None:
        di = di_source.read(1, window=strip)
        applicable = (di != applicability.NODATA) & ~applicability.outside(di, aoa.threshold)
        tally.aoa_inside += int(np.count_nonzero(counted & applicable))
    n_classes = tally.pixels.size
    cell_rows = -(-strip.height // CELL)
    cell_cols = -(-strip.width // CELL)
    rr, cc = np.nonzero(counted)
    key = ((rr // CELL) * cell_cols + cc // CELL) * n_classes + column[rr, cc]
    per_cell = np.bincount(key, minlength=cell_rows * cell_cols * n_classes).reshape(-1, n_classes)
    occupied = np.flatnonzero(per_cell.any(axis=1))
    if occupied.size == 0:
        return
    centre_rows = strip.row_off + np.minimum((occupied // cell_cols) * CELL + CELL // 2, strip.height - 1)
    centre_cols = strip.col_off + np.minimum((occupied % cell_cols) * CELL + CELL // 2, strip.width - 1)
    areas = pixel_areas_m2(crs, dataset.transform, centre_rows, centre_cols)
    tally.pixels += per_cell[occupied].sum(axis=0)
    tally.area_m2 += (per_cell[occupied] * areas[:, None]).sum(axis=0)


def _columns(values: npt.NDArray[Any], lookup: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Each pixel's column in the table (``lookup`` by value), -1 for a value of no class.

    A byte map indexes ``lookup`` directly; wider integers (UInt16, Int16, ...) can hold values outside it,
    which are no class (a negative one would otherwise index from its end); a float map (R's FLT4S, Earth
    Engine exports) holds classes as whole numbers, and any other value (NaN, 2.5) is no class.
    """
    if values.dtype == np.uint8:
        return lookup[values]
    column = np.full(values.shape, -1, dtype=np.int64)
    known = (values >= 0) & (values < lookup.size)
    if values.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            known &= np.isfinite(values) & (values == np.floor(values))
    column[known] = lookup[values[known].astype(np.int64)]
    return column


def run_item(found: MapClasses, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any] | None:
    """The STAC item a map's classes came from (None: they came from its colour table or a class table)."""
    if found.source != "stac":
        return None
    return read_json(found.origin, max_bytes=max_bytes)


def mapped_area(items: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The ground the maps were asked for: the union of each item's geometry and its ``lulc:unmapped``.

    None (count all of each map) if an item has no valid polygon. An item without ``lulc:unmapped`` (from
    before runs recorded it) counts its geometry alone, where it had imagery. A series takes one area for
    every period, so a period whose imagery missed part of the AOI counts that part as a gap and every
    period's total is the same.
    """
    shapes = []
    for item in items:
        properties = item.get("properties")
        unmapped = properties.get(UNMAPPED) if isinstance(properties, dict) else None
        for geometry in (item.get("geometry"), *([unmapped] if unmapped is not None else [])):
            shape = _polygon(geometry)
            if shape is None:
                return None
            shapes.append(shape)
    return shapely.geometry.mapping(shapely.union_all(shapes)) if shapes else None


def run_mapped_area(item: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ground one run was asked for (``mapped_area``), or None for an item that cannot tell it.

    An item without ``lulc:unmapped`` (a change map, a run from before it was recorded) has as geometry the
    AOI cut to where its imagery was: counting nodata only there would leave out the AOI's ground without
    imagery, so all of its map counts.
    """
    properties = item.get("properties")
    if not isinstance(properties, dict) or UNMAPPED not in properties:
        return None
    return mapped_area([item])


def _polygon(geometry: Any) -> BaseGeometry | None:
    """A valid (Multi)Polygon from a GeoJSON geometry, or None."""
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        return None
    try:
        shape = shapely.geometry.shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.GEOSException):
        return None
    return shape if shape.is_valid else None


def item_aoa_layer(
    item: Mapping[str, Any], origin: str, checked: Callable[[str, str], str]
) -> AoaLayer | None:
    """The ``aoa`` asset and threshold of the STAC item at ``origin`` (None without one).

    A malformed one (an asset that is no object, no ``href`` string, no numeric ``lulc:aoa_threshold``) is
    ignored with a warning: the class areas are counted without it.
    """
    assets = item.get("assets")
    asset = assets.get("aoa") if isinstance(assets, dict) else None
    if asset is None:
        return None
    properties = item.get("properties")
    threshold = properties.get("lulc:aoa_threshold") if isinstance(properties, dict) else None
    href = asset.get("href") if isinstance(asset, dict) else None
    if not isinstance(href, str) or not href:
        logger.warning("ignoring the aoa asset of %s: it has no href string", origin)
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
        logger.warning("ignoring the aoa asset of %s: lulc:aoa_threshold is not a number", origin)
        return None
    base = origin.rsplit("/", 1)[0] if "/" in origin else "."
    location = href if "://" in href or href.startswith("/") else f"{base}/{href.removeprefix('./')}"
    return AoaLayer(checked(location, "area of applicability"), float(threshold))
