"""The one grid type's block and pixel lookups, its snapping options, and its coarser versions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import shapely.geometry
from rasterio.transform import Affine, from_origin

from lulc.errors import InputError
from lulc.grid import Block, OutputGrid, grid_for_aoi, reproject_geometry

UTM = "EPSG:32654"


def test_block_at_and_pixel_index_agree_with_the_block_cut() -> None:
    grid = OutputGrid(UTM, Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 4_000_000.0), 100, 70, 32)
    assert (grid.block_rows, grid.block_cols) == (3, 4)
    assert list(grid.blocks()) == [grid.block_at(r, c) for r in range(3) for c in range(4)]
    assert grid.block_at(2, 3) == Block(11, 64, 96, 6, 4)  # the corner block is cut to the grid
    with pytest.raises(IndexError):
        grid.block_at(3, 0)
    # pixel centres, edges (a pixel holds its top-left edge) and points off the grid
    rows, cols = grid.pixel_index([500_005.0, 500_010.0, 499_999.0], [3_999_995.0, 3_999_990.0, 4_000_001.0])
    assert rows.tolist() == [0, 1, -1]
    assert cols.tolist() == [0, 1, -1]


def test_grid_for_aoi_snaps_to_the_resolution_or_to_an_anchor() -> None:
    aoi = reproject_geometry(
        shapely.geometry.box(410_548.8, 3_980_313.5, 419_681.9, 3_989_446.7), UTM, "EPSG:4326"
    )
    plain = grid_for_aoi(aoi, 10.0, UTM, 512)
    left, top = plain.transform.c, plain.transform.f
    assert left % 10 == 0
    assert top % 10 == 0
    assert left <= 410_548.8 < left + 10
    assert top - 10 < 3_989_446.7 <= top
    # Anchored to a tile origin with 512-pixel steps: the corner moves out to the tiling, the far
    # edges stay on whole pixels of the same lattice.
    tiled = grid_for_aoi(aoi, 10.0, UTM, 512, anchor=(410_000.0, 3_990_000.0), step=5120.0)
    assert (tiled.transform.c, tiled.transform.f) == (410_000.0, 3_990_000.0)
    assert tiled.bounds[2] == pytest.approx(plain.bounds[2])
    assert tiled.bounds[1] == pytest.approx(plain.bounds[1])
    assert tiled.width > plain.width
    with pytest.raises(InputError, match="multiple of 16"):
        grid_for_aoi(aoi, 10.0, UTM, 100)


def test_at_resolution_keeps_the_extent() -> None:
    grid = OutputGrid(UTM, Affine(10.0, 0.0, 410_000.0, 0.0, -10.0, 3_990_000.0), 1024, 1024)
    coarse = grid.at_resolution(20.0)
    assert (coarse.width, coarse.height) == (512, 512)
    assert coarse.bounds == grid.bounds
    assert coarse.epsg == 32654
    assert np.allclose(grid.bounds_wgs84(), coarse.bounds_wgs84())


def test_coordinates_no_projection_gives_are_outside_without_a_warning() -> None:
    """CLI review: points in another CRS (inf after projecting) printed NumPy's cast warning from grid.py."""
    grid = OutputGrid("EPSG:32633", from_origin(500_000, 4_000_000, 10, 10), 100, 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows, cols = grid.pixel_index(
            [np.inf, np.nan, 1e300, 500_015.0], [4_000_000.0, -np.inf, 1e300, 3_999_985.0]
        )
    assert rows.tolist() == [0, -1, -1, 1]
    assert cols.tolist() == [-1, -1, 2**40, 1]
