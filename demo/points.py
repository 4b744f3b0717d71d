"""The demo world's AOI and labelled points: stratified training and simple random validation samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyogrio
import shapely
from pyogrio.raw import write as write_raw
from pyproj import Transformer
from scipy import ndimage

from demo.landscape import CLASS_TABLE
from lulc.cog import atomic_path
from lulc.errors import InputError

GPKG_TIMESTAMP = "2025-01-01T00:00:00.000Z"
"""``gpkg_contents.last_change`` of every demo GeoPackage (GDAL otherwise writes the current time)."""


def polygon_4326(epsg: int, corners: list[tuple[float, float]], steps: int = 16) -> dict[str, Any]:
    """A polygon given by its corners in ``epsg`` as a densified GeoJSON polygon in EPSG:4326."""
    xs: list[float] = []
    ys: list[float] = []
    for (x0, y0), (x1, y1) in zip(corners, [*corners[1:], corners[0]], strict=True):
        t = np.linspace(0.0, 1.0, steps, endpoint=False)
        xs.extend((x0 + (x1 - x0) * t).tolist())
        ys.extend((y0 + (y1 - y0) * t).tolist())
    lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(xs, ys)
    ring = [[round(float(x), 7), round(float(y), 7)] for x, y in zip(lon, lat, strict=True)]
    ring.append(ring[0])
    if not shapely.Polygon(ring).exterior.is_ccw:  # RFC 7946: the exterior ring counter-clockwise
        ring.reverse()
    return {"type": "Polygon", "coordinates": [ring]}


def footprint(epsg: int, bounds: tuple[float, float, float, float]) -> dict[str, Any]:
    """A UTM rectangle ``(left, bottom, right, top)`` as a densified GeoJSON polygon in EPSG:4326."""
    left, bottom, right, top = bounds
    return polygon_4326(epsg, [(left, top), (right, top), (right, bottom), (left, bottom)])


def geometry_bbox(geometry: dict[str, Any]) -> list[float]:
    """``[west, south, east, north]`` of a GeoJSON polygon."""
    coords = np.asarray(geometry["coordinates"][0])
    return [
        float(coords[:, 0].min()),
        float(coords[:, 1].min()),
        float(coords[:, 0].max()),
        float(coords[:, 1].max()),
    ]


def write_aoi(path: Path, geometry: dict[str, Any]) -> Path:
    """Write the AOI as a GeoJSON FeatureCollection with one polygon."""
    collection = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {"name": "lulc-stac demo AOI"}, "geometry": geometry}],
    }
    with atomic_path(path, suffix=".geojson") as tmp:
        tmp.write_text(json.dumps(collection, indent=2) + "\n")
    return path


def stratified_sample(
    rng: np.random.Generator, classes: npt.NDArray[np.uint8], inside: npt.NDArray[np.bool_], per_class: int
) -> npt.NDArray[np.int64]:
    """Flat pixel indices: ``per_class`` random pixels of each class inside the AOI (fewer if rarer)."""
    picks = []
    for value in CLASS_TABLE.values:
        candidates = np.flatnonzero((classes == value) & inside)
        if candidates.size == 0:
            raise InputError(f"demo world has no {CLASS_TABLE.by_value(value).name} pixel inside the AOI")
        picks.append(rng.choice(candidates, size=min(per_class, candidates.size), replace=False))
    return np.sort(np.concatenate(picks))


def random_sample(
    rng: np.random.Generator, inside: npt.NDArray[np.bool_], count: int
) -> npt.NDArray[np.int64]:
    """Flat pixel indices of a simple random sample (without replacement) of the AOI's pixels."""
    candidates = np.flatnonzero(inside)
    return np.sort(rng.choice(candidates, size=min(count, candidates.size), replace=False))


def near(pixels: npt.NDArray[np.int64], shape: tuple[int, ...], distance: float) -> npt.NDArray[np.bool_]:
    """Pixels within ``distance`` (Euclidean, in pixels) of any of the given flat pixel indices."""
    free = np.ones(shape, dtype=bool)
    free.flat[pixels] = False
    return np.asarray(ndimage.distance_transform_edt(free) <= distance)


def write_points(
    path: Path,
    rng: np.random.Generator,
    pixels: npt.NDArray[np.int64],
    classes: npt.NDArray[np.uint8],
    epsg: int,
    origin: tuple[float, float],
    layer: str,
) -> Path:
    """Write pixels as jittered EPSG:4326 points with their class in ``label`` to a GeoPackage."""
    size = classes.shape[1]
    rows, cols = np.divmod(pixels, size)
    jitter = rng.uniform(-0.3, 0.3, (2, pixels.size))
    xs = origin[0] + (cols + 0.5 + jitter[0]) * 10.0
    ys = origin[1] - (rows + 0.5 + jitter[1]) * 10.0
    lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(xs, ys)
    labels = classes.flat[pixels].astype(np.int32)
    names = np.array([CLASS_TABLE.by_value(int(v)).name for v in labels], dtype=object)
    geometry = shapely.to_wkb(shapely.points(np.round(lon, 8), np.round(lat, 8)))
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_TIMESTAMP})
    try:
        with atomic_path(path, suffix=".gpkg") as tmp:
            tmp.unlink()
            write_raw(
                str(tmp),
                geometry,
                field_data=[np.arange(1, labels.size + 1, dtype=np.int32), labels, names],
                fields=["id", "label", "class_name"],
                crs="EPSG:4326",
                driver="GPKG",
                geometry_type="Point",
                layer=layer,
            )
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})
    return path
