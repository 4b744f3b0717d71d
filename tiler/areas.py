"""Class areas inside a polygon: per-class pixel counts and hectares via rio-tiler categorical statistics."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import shapely
from pydantic import BaseModel, Field
from pyproj import Geod
from rasterio import windows
from rasterio.crs import CRS
from rasterio.features import geometry_mask
from rasterio.warp import transform_geom
from rio_tiler import reader
from rio_tiler.constants import WGS84_CRS
from rio_tiler.io import Reader
from shapely.geometry import mapping, shape

from lulc.aoi import check_vertex_limit, parse_aoi
from lulc.classes import ClassTable
from lulc.errors import InputError
from lulc.gdal_env import gdal_env
from tiler.colormaps import MapClasses, read_json
from tiler.errors import BadParameterError


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
    pixel_area_m2: float
    pixels: int = Field(description="Map pixels whose centre lies inside the polygon.")
    nodata_pixels: int = Field(description="Of those, pixels without a class (nodata).")
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


def _pixel_area_m2(crs: CRS, transform: Any, lonlat: tuple[float, float]) -> float:
    """Area of one pixel: exact for metric projected CRSs, geodesic at ``lonlat`` otherwise."""
    if crs.is_projected and (crs.linear_units or "").lower() in ("metre", "meter", "m"):
        return abs(transform.a * transform.e - transform.b * transform.d)
    dx, dy = abs(transform.a), abs(transform.e)
    lon, lat = lonlat
    area, _ = Geod(ellps="WGS84").polygon_area_perimeter(
        [lon, lon + dx, lon + dx, lon], [lat, lat, lat + dy, lat + dy]
    )
    return abs(area)


def class_areas(
    location: str,
    geometry: Mapping[str, Any],
    table: ClassTable,
    max_pixels: int,
    aoa: AoaLayer | None = None,
) -> AreaStatistics:
    """Count the map's pixels per class inside ``geometry`` (EPSG:4326) on the map's own grid.

    A pixel counts when its centre lies inside the polygon. The window is read at full resolution
    (never from overviews) and counted with rio-tiler's categorical statistics.
    """
    values = table.values
    with gdal_env(), Reader(location) as src:
        dataset = src.dataset
        native = transform_geom(WGS84_CRS, dataset.crs, geometry)
        left, bottom, right, top = shapely.bounds(shape(native)).tolist()
        window = windows.from_bounds(left, bottom, right, top, transform=dataset.transform)
        col0, row0 = math.floor(window.col_off), math.floor(window.row_off)
        col1 = math.ceil(window.col_off + window.width)
        row1 = math.ceil(window.row_off + window.height)
        window = windows.Window(col0, row0, col1 - col0, row1 - row0)
        full = windows.Window(0, 0, dataset.width, dataset.height)
        try:
            window = window.intersection(full)
        except windows.WindowError:
            window = None
        centroid = shape(geometry).centroid
        pixel_area = _pixel_area_m2(dataset.crs, dataset.transform, (centroid.x, centroid.y))
        crs_text = dataset.crs.to_string()
        counts = np.zeros(len(values), dtype=np.int64)
        inside = masked_nodata = aoa_inside = 0
        if window is not None and window.width >= 1 and window.height >= 1:
            if window.width * window.height > max_pixels:
                raise BadParameterError(
                    f"the polygon covers {int(window.width * window.height)} map pixels; the limit is "
                    f"{max_pixels}"
                )
            image = reader.read(dataset, indexes=1, window=window)
            window_transform = windows.transform(window, dataset.transform)
            outside = geometry_mask(
                [native], out_shape=(image.height, image.width), transform=window_transform
            )
            inside = int((~outside).sum())
            data_mask = np.ma.getmaskarray(image.array)[0]
            masked_nodata = int((~outside & data_mask).sum())
            image.array.mask = np.logical_or(np.ma.getmaskarray(image.array), outside[np.newaxis])
            stats = image.statistics(categorical=True, categories=[float(v) for v in values])
            histogram = next(iter(stats.values())).histogram
            by_value = {int(k): int(c) for c, k in zip(histogram[0], histogram[1], strict=True)}
            counts = np.array([by_value.get(v, 0) for v in values], dtype=np.int64)
            if aoa is not None:
                classified = ~np.ma.getmaskarray(image.array)[0]
                aoa_inside = _aoa_inside(aoa, window, classified)
    valid = int(counts.sum())
    rows = [
        ClassArea(
            value=c.value,
            name=c.name,
            color=c.color,
            pixels=int(n),
            hectares=round(float(n) * pixel_area / 10_000, 6),
            percent=round(100.0 * float(n) / valid, 4) if valid else 0.0,
        )
        for c, n in zip(table.classes, counts, strict=True)
    ]
    return AreaStatistics(
        url=location,
        crs=crs_text,
        pixel_area_m2=pixel_area,
        pixels=inside,
        nodata_pixels=masked_nodata,
        hectares=round(valid * pixel_area / 10_000, 6),
        classes=rows,
        aoa_threshold=aoa.threshold if aoa is not None else None,
        aoa_fraction=round(aoa_inside / valid, 6) if aoa is not None and valid else None,
    )


def _aoa_inside(aoa: AoaLayer, window: windows.Window, classified: npt.NDArray[np.bool_]) -> int:
    """Classified pixels of ``window`` whose DI (``aoa.tif``, DI x 100 rounded) is within the threshold."""
    with rasterio.open(aoa.location) as src:
        di = src.read(1, window=window)
    limit = int(np.rint(aoa.threshold * 100))
    return int(np.count_nonzero(classified & (di != 255) & (di <= limit)))


def aoa_layer(found: MapClasses, checked: Callable[[str, str], str]) -> AoaLayer | None:
    """The run's ``aoa`` asset and threshold, from the STAC item its classes came from (None without one).

    ``checked`` is the allow-list check GDAL paths pass (``aoa.tif`` is read like any dataset).
    """
    if found.source != "stac":
        return None
    item = read_json(found.origin)
    if item is None:
        return None
    threshold = item.get("properties", {}).get("lulc:aoa_threshold")
    href = item.get("assets", {}).get("aoa", {}).get("href")
    if not isinstance(threshold, int | float) or not isinstance(href, str):
        return None
    base = found.origin.rsplit("/", 1)[0] if "/" in found.origin else "."
    location = href if "://" in href or href.startswith("/") else f"{base}/{href.removeprefix('./')}"
    return AoaLayer(checked(location, "area of applicability"), float(threshold))
