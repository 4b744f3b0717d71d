"""True ground areas of a map's pixels where they vary across it (Web Mercator, lon/lat, wide UTM grids).

A map's mean pixel area (``OutputGrid.pixel_area_m2``) gives its total area exactly, but not each class's
where pixel areas vary: in EPSG:3857 a pixel at 62 N covers 7 % less ground than one at 57.5 N, so a
class in the north was overstated by as much. ``area_cells`` measures one pixel's area in each cell of
``CELL`` x ``CELL`` pixels (areas vary smoothly), and ``AreaCells.sum_by_value`` sums them by pixel value.
Grids whose pixel area varies by less than ``UNIFORM`` keep the mean (no per-pixel work).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rasterio.transform import Affine

from lulc.grid import AREA_CELL as CELL
from lulc.grid import cell_areas_m2, cell_edges, pixel_areas_m2

UNIFORM = 5e-3
"""Relative spread of pixel areas under which a map's mean pixel area serves every class: a class's area is
then off by at most half of it (0.25 %). UTM grids stay under it (a 110 km tile at the edge of its zone
spreads 0.2 %), so their runs skip the per-pixel sums (about 3 ms a 512 px block)."""
SAMPLES = 5
"""Pixels a side of the lattice the spread is measured on."""


@dataclass(frozen=True)
class AreaCells:
    """One pixel's true area (m²) in each ``CELL`` x ``CELL`` cell of a grid."""

    areas: npt.NDArray[np.float64]
    """(cell rows, cell columns)."""

    def sum_by_value(
        self, values: npt.NDArray[np.integer], row: int, col: int, length: int = 256
    ) -> npt.NDArray[np.float64]:
        """The ground area (m²) of the pixels of each value 0..``length``-1 in ``values``.

        ``values`` is a window of the grid starting at pixel (``row``, ``col``); its pixels take their
        cell's area. Each cell's pixels are counted by value and the counts weighted by the cell's area
        (a third of the time of one weighted count over every pixel, whose areas must be spread out first:
        1.0 vs 2.7 ms a 512 px block, about 0.8 CPU s of a 10,980 px tile in Web Mercator), unless
        ``length`` is so large (patch numbers) that counts per cell outgrow the pixels.
        """
        height, width = values.shape
        r0, c0 = row // CELL, col // CELL
        rows = np.clip(np.arange(r0, (row + height - 1) // CELL + 2) * CELL - row, 0, height)
        cols = np.clip(np.arange(c0, (col + width - 1) // CELL + 2) * CELL - col, 0, width)
        if (rows.size - 1) * (cols.size - 1) * length > values.size:
            return self._spread_sum(values, row, col, length)
        summed = np.zeros(length, dtype=np.float64)
        for i in range(rows.size - 1):
            strip = values[rows[i] : rows[i + 1]]
            for j in range(cols.size - 1):
                counts = np.bincount(strip[:, cols[j] : cols[j + 1]].ravel(), minlength=length)
                summed += self.areas[r0 + i, c0 + j] * counts[:length]
        return summed

    def _spread_sum(
        self, values: npt.NDArray[np.integer], row: int, col: int, length: int
    ) -> npt.NDArray[np.float64]:
        """``sum_by_value`` as one count over every pixel weighted by its cell's area."""
        height, width = values.shape
        r0, c0 = row // CELL, col // CELL
        local = self.areas[r0 : (row + height - 1) // CELL + 1, c0 : (col + width - 1) // CELL + 1]
        spread = np.repeat(np.repeat(local, CELL, axis=0), CELL, axis=1)
        top, left = row - r0 * CELL, col - c0 * CELL
        pixel_areas = spread[top : top + height, left : left + width]
        summed = np.bincount(values.ravel(), weights=pixel_areas.ravel(), minlength=length)
        return np.asarray(summed[:length], dtype=np.float64)


def area_cells(crs: str, transform: Affine, width: int, height: int) -> AreaCells | None:
    """The grid's ``AreaCells``, or None where its pixel areas vary by less than ``UNIFORM``."""
    rows = np.linspace(0, height - 1, SAMPLES).round()
    cols = np.linspace(0, width - 1, SAMPLES).round()
    r, c = np.meshgrid(rows, cols, indexing="ij")
    sample = pixel_areas_m2(crs, transform, r, c)
    if float(sample.max() - sample.min()) <= UNIFORM * float(sample.mean()):
        return None
    areas = cell_areas_m2(crs, transform, width, height, CELL)  # each cell's area, shared by its pixels
    rows, cols = np.diff(cell_edges(height, CELL)), np.diff(cell_edges(width, CELL))
    return AreaCells(areas / (rows[:, None] * cols[None, :]))
