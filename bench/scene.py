"""The benchmark scene: one cloud-free 4-band Sentinel-2 date (blue, green, red, nir) at any size, as COGs.

The demo world's landscape and sensor model (``demo.landscape``, ``demo.sensor``) render a
base tile of at most ``BASE`` pixels; the scene mirrors that tile across the full grid (so there are no seams)
and adds fresh per-pixel noise strip by strip. Memory while generating stays at one base tile plus one strip
of every band, whatever the scene size; each band is written as a tiled GeoTIFF in strips and then copied to
a COG (``lulc.cog.translate_to_cog``, the demo world's reflectance COG options).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.transform import Affine

from demo.landscape import CLASS_TABLE, make_landscape
from demo.points import footprint, geometry_bbox
from demo.sensor import ACQUISITIONS, BANDS, surface_reflectance
from demo.world import CLASS_COG, EPSG, ORIGIN, REFLECTANCE_COG
from lulc.classes import NODATA
from lulc.cog import atomic_path, translate_to_cog
from lulc.gdal_env import gdal_env

SCENE_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir")
BASE = 2048
"""Largest base tile rendered by the demo-world simulation (mirrored beyond it)."""
STRIP = 512
ITEM_ID = "S2A_54SVE_20210906_0_L2A"
ACQUISITION = ACQUISITIONS[1]
"""The clearest demo-world overpass (2021-09-06, baseline 03.01: DN = reflectance x 10000)."""
FORMAT = 2
"""Bumped when the scene's bytes change, so cached scenes are rebuilt."""


@dataclass(frozen=True)
class Scene:
    """Where a generated scene's files are."""

    root: Path
    size: int
    seed: int

    @property
    def cogs(self) -> Path:
        """Folder of the band COGs (served over HTTP from ``root``)."""
        return self.root / "cogs" / ITEM_ID

    def band(self, name: str) -> Path:
        """Local path of one band's COG."""
        return self.cogs / f"{name}.tif"

    def band_url(self, base_url: str, name: str) -> str:
        """HTTP URL of one band's COG on a server rooted at ``root``."""
        return f"{base_url.rstrip('/')}/cogs/{ITEM_ID}/{name}.tif"

    @property
    def truth(self) -> Path:
        """The class map the scene was rendered from (uint8 COG)."""
        return self.root / "truth.tif"

    @property
    def aoi(self) -> Path:
        """The AOI GeoJSON (the scene's rectangle, 2 m inside each edge, in EPSG:4326)."""
        return self.root / "aoi.geojson"

    @property
    def transform(self) -> Affine:
        """The 10 m grid's transform."""
        return Affine(10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in EPSG:32654."""
        return (ORIGIN[0], ORIGIN[1] - self.size * 10.0, ORIGIN[0] + self.size * 10.0, ORIGIN[1])

    @property
    def megapixels(self) -> float:
        """Pixels of the scene, in millions."""
        return self.size * self.size / 1e6

    def write_items(self, base_url: str, path: Path) -> Path:
        """An ItemCollection with the scene's item, asset hrefs on ``base_url``; returns ``path``."""
        collection = {"type": "FeatureCollection", "features": [self.item(base_url)]}
        with atomic_path(path, suffix=".json") as tmp:
            tmp.write_text(json.dumps(collection, indent=1) + "\n")
        return path

    def item(self, base_url: str) -> dict[str, Any]:
        """The scene's STAC item (Earth Search v1 flavour, no SCL: a cloud-free date)."""
        geometry = footprint(EPSG, self.bounds)
        transform = [10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1]]
        assets = {
            name: {
                "href": self.band_url(base_url, name),
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data", "reflectance"],
                "eo:bands": [{"name": name, "common_name": name}],
                "gsd": 10,
                "proj:shape": [self.size, self.size],
                "proj:transform": transform,
                "raster:bands": [
                    {
                        "nodata": 0,
                        "data_type": "uint16",
                        "spatial_resolution": 10,
                        "scale": 0.0001,
                        "offset": 0,
                    }
                ],
            }
            for name in SCENE_BANDS
        }
        return {
            "type": "Feature",
            "stac_version": "1.0.0",
            "stac_extensions": [
                "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
                "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            ],
            "id": ITEM_ID,
            "collection": "sentinel-2-l2a",
            "geometry": geometry,
            "bbox": geometry_bbox(geometry),
            "properties": {
                "datetime": ACQUISITION.when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "platform": ACQUISITION.platform,
                "eo:cloud_cover": 0.0,
                "proj:epsg": EPSG,
                "s2:processing_baseline": ACQUISITION.baseline,
            },
            "assets": assets,
            "links": [],
        }

    @property
    def datetime_window(self) -> str:
        """A window around the scene's date."""
        day = ACQUISITION.when.astimezone(UTC)
        return f"{day:%Y-%m-%d}T00:00:00Z/{day:%Y-%m-%d}T23:59:59Z"


def _mirror(n: int, base: int) -> npt.NDArray[np.int64]:
    """Index into a base tile of ``base`` pixels for ``n`` pixels, mirrored at every tile edge."""
    i = np.arange(n) % (2 * base)
    return np.where(i < base, i, 2 * base - 1 - i).astype(np.int64)


def _aoi(scene: Scene) -> dict[str, Any]:
    left, bottom, right, top = scene.bounds
    inset = 2.0  # metres: every pixel centre is inside, and the engine's grid is exactly size x size
    geometry = footprint(EPSG, (left + inset, bottom + inset, right - inset, top - inset))
    return {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": geometry}],
    }


def _profile(scene: Scene, dtype: str, nodata: int) -> dict[str, Any]:
    return {
        "driver": "GTiff",
        "width": scene.size,
        "height": scene.size,
        "count": 1,
        "dtype": dtype,
        "crs": f"EPSG:{EPSG}",
        "transform": scene.transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
    }


def generate(root: Path, size: int, seed: int = 0) -> Scene:
    """Generate (or reuse, when already there for this size and seed) the scene under ``root``."""
    scene = Scene(Path(root), size, seed)
    marker = scene.root / "scene.json"
    identity = {"size": size, "seed": seed, "format": FORMAT, "bands": list(SCENE_BANDS)}
    if marker.is_file() and json.loads(marker.read_text()) == identity:
        return scene
    if size < 256 or size % 2:
        raise ValueError(f"scene size must be an even number >= 256, got {size}")
    scene.cogs.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    base = min(size, BASE)
    landscape = make_landscape(rng, base)
    surface = surface_reflectance(rng, landscape, (ACQUISITION,))[0]
    band_index = [BANDS.index(b) for b in SCENE_BANDS]
    refl = np.ascontiguousarray(surface[band_index])  # (4, base, base) float32
    classes = landscape.classes
    del surface, landscape
    cols = _mirror(size, base)
    staging = {name: scene.cogs / f".{name}.strips.tif" for name in (*SCENE_BANDS, "truth")}
    try:
        with gdal_env():
            outs = {
                name: rasterio.open(staging[name], "w", **_profile(scene, "uint16", 0))
                for name in SCENE_BANDS
            }
            outs["truth"] = rasterio.open(staging["truth"], "w", **_profile(scene, "uint8", NODATA))
            try:
                for top in range(0, size, STRIP):
                    rows = _mirror(size, base)[top : top + STRIP]
                    noise = np.random.default_rng([seed, top]).normal(
                        0.0, 0.003, (len(SCENE_BANDS), len(rows), size)
                    )
                    strip = refl[:, rows][:, :, cols] + noise.astype(np.float32)
                    dn = np.clip(np.rint(strip * 10000.0), 1, 65535).astype(np.uint16)
                    window = rasterio.windows.Window(0, top, size, len(rows))
                    for b, name in enumerate(SCENE_BANDS):
                        outs[name].write(dn[b], 1, window=window)
                    outs["truth"].write(classes[rows][:, cols], 1, window=window)
            finally:
                for out in outs.values():
                    out.close()
        for name in SCENE_BANDS:
            translate_to_cog(staging[name], scene.band(name), REFLECTANCE_COG)
        translate_to_cog(staging["truth"], scene.truth, CLASS_COG)
    finally:
        for path in staging.values():
            path.unlink(missing_ok=True)
    with atomic_path(scene.aoi, suffix=".json") as tmp:
        tmp.write_text(json.dumps(_aoi(scene)) + "\n")
    with atomic_path(scene.root / "classes.yaml", suffix=".yaml") as tmp:
        tmp.write_text(CLASS_TABLE.to_yaml())
    with atomic_path(marker, suffix=".json") as tmp:
        tmp.write_text(json.dumps(identity) + "\n")
    return scene
