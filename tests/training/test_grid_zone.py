"""Training and classification put the same AOI on the same grid, wherever its items' own zones lie."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from rasterio.warp import Resampling, calculate_default_transform, reproject

from demo.world import generate
from lulc.cog import write_cog
from lulc.grid import utm_crs
from training.composite import open_stac_imagery, read_aoi
from training.config import load_config
from training.settings import TrainingSettings


def _move_to_zone(item_path: Path, epsg: int) -> None:
    """Warp an item's COGs into another UTM zone (as a neighbouring MGRS tile holds them) and say so."""
    item = json.loads(item_path.read_text())
    for asset in item["assets"].values():
        if not asset["href"].endswith(".tif"):
            continue
        source = (item_path.parent / asset["href"]).resolve()
        with rasterio.open(source) as src:
            res = src.res[0]
            transform, width, height = calculate_default_transform(
                src.crs, f"EPSG:{epsg}", src.width, src.height, *src.bounds, resolution=res
            )
            data = np.zeros((height, width), dtype=src.dtypes[0])
            reproject(
                rasterio.band(src, 1),
                data,
                dst_transform=transform,
                dst_crs=f"EPSG:{epsg}",
                resampling=Resampling.nearest,
                src_nodata=0,
                dst_nodata=0,
            )
        target = source.with_name(f"{source.stem}_{epsg}.tif")
        write_cog(target, data, crs=f"EPSG:{epsg}", transform=transform, nodata=0)
        asset["href"] = asset["href"].replace(".tif", f"_{epsg}.tif")
        asset["proj:shape"] = [height, width]
        asset["proj:transform"] = list(transform)[:6]
        asset.pop("proj:bbox", None)
    item["properties"]["proj:epsg"] = epsg
    item["properties"].pop("proj:code", None)
    item_path.write_text(json.dumps(item))


def test_the_training_grid_is_in_the_aois_zone_as_every_maps(tmp_path: Path) -> None:
    """Every item moved to zone 53 beside an AOI in zone 54: training took the items' zone, maps the AOI's."""
    world = generate(tmp_path / "world", size=256, seed=0)
    items = sorted((tmp_path / "world").glob("sentinel-2-l2a/*/*.json"))
    assert items
    for path in items:
        _move_to_zone(path, 32653)
    config = load_config(world.training_config)
    imagery = open_stac_imagery(config, TrainingSettings())
    assert {item.epsg for item in imagery.items} == {32653}
    aoi_zone = utm_crs(read_aoi(str(config.aoi)))
    assert aoi_zone == "EPSG:32654"
    assert imagery.grid.crs == aoi_zone  # the zone StacReaderFactory.prepare_grid gives every map
