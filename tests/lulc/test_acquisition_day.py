"""The tiles of one pass are one date of a median, even where the pass crosses midnight UTC."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyproj import Transformer
from rasterio.transform import Affine

from lulc.cog import write_cog
from lulc.grid import Block, OutputGrid
from lulc.pixels import StacBlockReader, item_assets
from lulc.sources import open_source

X0, Y0, N = 410_000.0, 3_990_000.0, 32  # EPSG:32654, about 141 E: a pass there is near 00:30 UTC
TO_LONLAT = Transformer.from_crs("EPSG:32654", "EPSG:4326", always_xy=True)


def _item(root: Path, name: str, when: str, red: int, c0: int, c1: int) -> dict[str, Any]:
    """A 32 px item whose data covers columns ``c0:c1`` (red ``red`` DN, clear SCL)."""
    bands = {"red": np.zeros((N, N), np.uint16), "nir": np.zeros((N, N), np.uint16)}
    bands["red"][:, c0:c1] = red
    bands["nir"][:, c0:c1] = 3000
    scl = np.zeros((N // 2, N // 2), np.uint8)
    scl[:, c0 // 2 : (c1 + 1) // 2] = 4  # vegetation: clear
    assets = {}
    for key, data, res in (("red", bands["red"], 10), ("nir", bands["nir"], 10), ("scl", scl, 20)):
        path = write_cog(
            root / f"{name}_{key}.tif",
            data,
            crs="EPSG:32654",
            transform=Affine(res, 0, X0, 0, -res, Y0),
            nodata=0,
        )
        assets[key] = {"href": str(path), "raster:bands": [{"nodata": 0, "scale": 0.0001, "offset": 0.0}]}
    xs, ys = (X0 + c0 * 10, X0 + c1 * 10), (Y0 - N * 10, Y0)
    corners = [(xs[0], ys[0]), (xs[1], ys[0]), (xs[1], ys[1]), (xs[0], ys[1]), (xs[0], ys[0])]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": name,
        "collection": "sentinel-2-l2a",
        "properties": {
            "datetime": when,
            "proj:epsg": 32654,
            "s2:processing_baseline": "03.01",
            "eo:cloud_cover": 1,
        },
        "geometry": {
            "type": "Polygon",
            "coordinates": [[list(TO_LONLAT.transform(x, y)) for x, y in corners]],
        },
        "links": [],
        "assets": assets,
    }


@pytest.mark.parametrize("second_tile", ["2024-06-01T23:59:59Z", "2024-06-02T00:00:03Z"])
def test_two_tiles_of_a_pass_across_midnight_utc_are_one_date(tmp_path: Path, second_tile: str) -> None:
    """Two overlapping tiles of one pass (DN 2000), seconds apart, and two later passes (1000, 1200).

    The median is 1200 everywhere the first pass saw; counting the tiles as two dates made it 1600 where
    they overlap once the second tile's UTC day was the next.
    """
    features = [
        _item(tmp_path, "T1_pass1", "2024-06-01T23:59:58Z", 2000, 0, 20),
        _item(tmp_path, "T2_pass1", second_tile, 2000, 12, 32),
        _item(tmp_path, "T1_pass2", "2024-06-06T23:59:58Z", 1000, 0, 32),
        _item(tmp_path, "T1_pass3", "2024-06-11T23:59:58Z", 1200, 0, 32),
    ]
    catalog = tmp_path / "items.json"
    catalog.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    items = open_source(str(catalog)).search()
    grid = OutputGrid("EPSG:32654", Affine(10, 0, X0, 0, -10, Y0), N, N, N)
    reader = StacBlockReader(grid, tuple(item_assets(i, ["red", "nir"], grid) for i in items), "median")
    red = reader.read(Block(0, 0, 0, N, N))[0]
    np.testing.assert_array_equal(red, np.float32(0.12))
