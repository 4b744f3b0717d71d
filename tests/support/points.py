"""Labelled points at pixel centres of a test grid, written as a GeoPackage (pyogrio, no geopandas)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyogrio
import shapely


def write_pixel_points(
    path: Path,
    rows: npt.NDArray[np.integer],
    cols: npt.NDArray[np.integer],
    labels: npt.NDArray[np.integer],
    origin: tuple[float, float] = (500_000.0, 5_000_000.0),
    resolution: float = 10.0,
    crs: str = "EPSG:32633",
) -> Path:
    """Points at the centres of pixels ``(rows, cols)`` of a north-up grid, field ``label`` = ``labels``."""
    x = origin[0] + (np.asarray(cols) + 0.5) * resolution
    y = origin[1] - (np.asarray(rows) + 0.5) * resolution
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb(shapely.points(x, y)),
        [np.asarray(labels).astype(np.int32)],
        ["label"],
        driver="GPKG",
        geometry_type="Point",
        crs=crs,
    )
    return path
