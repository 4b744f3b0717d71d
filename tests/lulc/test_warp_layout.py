"""A pixel warped from another CRS (almost never) depends on the block it is read in.

Training reads blocks from its imagery's origin, classification from the AOI's corner: an item in the next
UTM zone should give both the same source pixel for the same grid pixel. GDAL's approximate transformer
makes that a matter of its error threshold (``lulc.gdal_env.WARP_TOLERANCE``): at its default, 1 % of the
pixels differed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin

from lulc.grid import OutputGrid
from lulc.pixels.windows import read_warped


def test_a_cross_zone_read_is_the_same_in_any_block_layout(tmp_path: Path) -> None:
    path = tmp_path / "zone55.tif"
    values = np.random.default_rng(0).integers(1, 10_000, (2048, 2048)).astype("uint16")
    profile = {"driver": "GTiff", "width": 2048, "height": 2048, "count": 1, "dtype": "uint16"}
    with rasterio.open(
        path,
        "w",
        **profile,
        crs="EPSG:32655",
        transform=from_origin(199_980, 4_000_020, 10, 10),
        tiled=True,
        blockxsize=512,
        blockysize=512,
    ) as dst:
        dst.write(values, 1)
    # a zone-54 grid over the raster's middle, on a 10 m lattice
    transform = from_origin(745_010, 3_994_010, 10, 10)
    maps = []
    with rasterio.open(path) as src:
        for block_size in (1024, 512, 256):
            grid = OutputGrid("EPSG:32654", transform, 1024, 1024, block_size)
            out = np.zeros((1024, 1024))
            for block in grid.blocks():
                out[block.row : block.row + block.height, block.col : block.col + block.width] = read_warped(
                    src, grid, block, 0, Resampling.nearest
                )
            maps.append(out)
    assert np.count_nonzero(maps[0]) > 0.9 * maps[0].size  # the grid lies over the raster
    for other in maps[1:]:
        assert np.count_nonzero(maps[0] != other) <= 10  # of 1,048,576 (2 measured; about 10,000 before)
