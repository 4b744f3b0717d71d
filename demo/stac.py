"""The demo world's static STAC catalog: Earth Search v1 style ``sentinel-2-l2a`` items over its COGs."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac
from pystac.stac_io import DefaultStacIO
from rasterio.transform import Affine

from demo.points import footprint, geometry_bbox, polygon_4326
from demo.sensor import (
    SCL_CIRRUS,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_NOT_VEGETATED,
    SCL_SHADOW,
    SCL_VEGETATION,
    SCL_WATER,
    Scene,
    band_resolution,
)
from lulc.cog import atomic_path
from lulc.grid import OutputGrid

COLLECTION_ID = "sentinel-2-l2a"
CATALOG_ID = "lulc-demo-world"
MGRS_TILE = ("54", "S", "VE")

EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
]
"""Extensions the items declare, as Earth Search v1 does (projection v1.1: `proj:epsg`, no `proj:code`)."""

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"

# asset key -> (Sentinel-2 band id, title, centre wavelength µm, FWHM µm)
BAND_INFO: dict[str, tuple[str, str, float, float]] = {
    "blue": ("B02", "Blue (band 2) - 10m", 0.49, 0.098),
    "green": ("B03", "Green (band 3) - 10m", 0.56, 0.045),
    "red": ("B04", "Red (band 4) - 10m", 0.665, 0.038),
    "nir": ("B08", "NIR 1 (band 8) - 10m", 0.842, 0.145),
    "swir16": ("B11", "SWIR 1.6μm (band 11) - 20m", 1.61, 0.143),
    "swir22": ("B12", "SWIR 2.2μm (band 12) - 20m", 2.19, 0.242),
}

SUN_AZIMUTH = 150.0
"""Solar azimuth at the 10:30 local overpass, degrees (the simulated shadows fall towards the north-west)."""

FIXED_TIME = datetime(2025, 1, 1, tzinfo=UTC)
"""``created``/``updated`` of every generated object: fixed, so reruns give identical bytes."""

SCL_PERCENTAGES: dict[str, int] = {
    "s2:cloud_shadow_percentage": SCL_SHADOW,
    "s2:vegetation_percentage": SCL_VEGETATION,
    "s2:not_vegetated_percentage": SCL_NOT_VEGETATED,
    "s2:water_percentage": SCL_WATER,
    "s2:medium_proba_clouds_percentage": SCL_CLOUD_MEDIUM,
    "s2:high_proba_clouds_percentage": SCL_CLOUD_HIGH,
    "s2:thin_cirrus_percentage": SCL_CIRRUS,
}
"""The ``s2:*_percentage`` properties derived from the scene classification, and the SCL class of each."""


def scl_percentages(scene: Scene) -> dict[str, float]:
    """Share (%) of the grid in each SCL class of ``SCL_PERCENTAGES``, as both providers publish it."""
    return {key: scene.percentage(value) for key, value in SCL_PERCENTAGES.items()}


def world_grid(epsg: int, origin: tuple[float, float], size: int) -> OutputGrid:
    """The demo world's 10 m UTM grid: ``size`` x ``size`` pixels from the upper-left corner ``origin``."""
    transform = Affine(10.0, 0.0, origin[0], 0.0, -10.0, origin[1])
    return OutputGrid(f"EPSG:{epsg}", transform, size, size)


def grid_epsg(grid: OutputGrid) -> int:
    """The EPSG code of the world's grid (``proj:epsg``)."""
    if grid.epsg is None:
        raise ValueError(f"the demo grid's CRS {grid.crs} has no EPSG code")
    return grid.epsg


def data_geometry(grid: OutputGrid, corners: tuple[tuple[float, float], ...]) -> dict[str, Any]:
    """GeoJSON (EPSG:4326) of a polygon given by corners as fractions (column, row) of the grid."""
    extent = grid.width * grid.transform.a
    x0, y0 = grid.transform.c, grid.transform.f
    points = [(x0 + c * extent, y0 - r * extent) for c, r in corners]
    return polygon_4326(grid_epsg(grid), points)


def proj_transform(grid: OutputGrid, resolution: int) -> list[float]:
    """``proj:transform`` of the grid at this resolution (first six affine coefficients)."""
    return [float(v) for v in grid.at_resolution(float(resolution)).transform][:6]


def proj_shape(grid: OutputGrid, resolution: int) -> list[int]:
    """``proj:shape`` (rows, cols) of the grid at this resolution."""
    coarse = grid.at_resolution(float(resolution))
    return [coarse.height, coarse.width]


def proj_bbox(grid: OutputGrid) -> list[float]:
    """Bounds ``[west, south, east, north]`` in the grid's CRS."""
    return list(grid.bounds)


def wgs84_bbox(grid: OutputGrid) -> list[float]:
    """Bounds of the grid's footprint (densified rectangle) in EPSG:4326."""
    return geometry_bbox(footprint(grid_epsg(grid), grid.bounds))


def item_id(scene: Scene) -> str:
    """Earth Search v1 style id, e.g. ``S2B_54SVE_20210718_0_L2A``."""
    acq = scene.acquisition
    letter = acq.platform[-1].upper()
    return f"S2{letter}_{''.join(MGRS_TILE)}_{acq.when:%Y%m%d}_0_L2A"


def datatake_id(scene: Scene) -> str:
    """The ``s2:datatake_id`` of a scene, as ESA names datatakes."""
    acq = scene.acquisition
    return f"GS2{acq.platform[-1].upper()}_{acq.when:%Y%m%dT%H%M%S}_000000_N{acq.baseline}"


def sun_elevation(scene: Scene) -> float:
    """Noon-ish solar elevation at 36 N for the day of year (a smooth seasonal curve), degrees."""
    declination = 23.44 * math.sin(2 * math.pi * (284 + scene.acquisition.doy) / 365.0)
    return round(90.0 - 36.0 + declination - 8.0, 2)


def asset_href(item: str, key: str, base_url: str | None, depth: int = 2) -> str:
    """The href of a COG: ``base_url/cogs/...``, else relative from an item JSON ``depth`` folders down."""
    relative = f"cogs/{item}/{key}.tif"
    if base_url:
        return f"{base_url.rstrip('/')}/{relative}"
    return "../" * depth + relative


def _band_asset(scene: Scene, key: str, href: str, grid: OutputGrid) -> pystac.Asset:
    _, title, wavelength, fwhm = BAND_INFO[key]
    resolution = band_resolution(key)
    offset = -0.1 if scene.acquisition.offset_dn else 0.0
    return pystac.Asset(
        href=href,
        media_type=COG_MEDIA_TYPE,
        title=title,
        roles=["data", "reflectance"],
        extra_fields={
            "eo:bands": [
                {
                    "name": key,
                    "common_name": key,
                    "description": title.split(" - ")[0],
                    "center_wavelength": wavelength,
                    "full_width_half_max": fwhm,
                }
            ],
            "gsd": resolution,
            "proj:shape": proj_shape(grid, resolution),
            "proj:transform": proj_transform(grid, resolution),
            "proj:bbox": proj_bbox(grid),
            "raster:bands": [
                {
                    "nodata": 0,
                    "data_type": "uint16",
                    "bits_per_sample": 15,
                    "spatial_resolution": resolution,
                    "scale": 0.0001,
                    "offset": offset,
                }
            ],
        },
    )


def _scl_asset(href: str, grid: OutputGrid) -> pystac.Asset:
    return pystac.Asset(
        href=href,
        media_type=COG_MEDIA_TYPE,
        title="Scene classification map (SCL)",
        roles=["data", "reflectance"],
        extra_fields={
            "proj:shape": proj_shape(grid, 20),
            "proj:transform": proj_transform(grid, 20),
            "proj:bbox": proj_bbox(grid),
            "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}],
        },
    )


def make_item(scene: Scene, grid: OutputGrid, base_url: str | None) -> pystac.Item:
    """The STAC item of one scene, with Earth Search v1 properties and asset keys."""
    acq = scene.acquisition
    ident = item_id(scene)
    zone, band, square = MGRS_TILE
    stamp = f"{acq.when:%Y%m%dT%H%M%S}"
    properties: dict[str, Any] = {
        "created": _iso(FIXED_TIME),
        "platform": acq.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": scene.cloud_cover(),
        "proj:epsg": grid_epsg(grid),
        "mgrs:utm_zone": int(zone),
        "mgrs:latitude_band": band,
        "mgrs:grid_square": square,
        "grid:code": f"MGRS-{zone}{band}{square}",
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": acq.baseline,
        "s2:product_uri": f"S2{acq.platform[-1].upper()}_MSIL2A_{stamp}_N{acq.baseline.replace('.', '')}"
        f"_R031_T{zone}{band}{square}_{stamp}.SAFE",
        "s2:generation_time": _iso(acq.when.replace(hour=4, minute=0, second=0)),
        "s2:datatake_type": "INS-NOBS",
        "s2:datatake_id": datatake_id(scene),
        "s2:granule_id": f"S2{acq.platform[-1].upper()}_OPER_MSI_L2A_TL_2BPS_{stamp}_T{zone}{band}{square}"
        f"_N{acq.baseline}",
        "s2:nodata_pixel_percentage": scene.nodata_percentage(),
        "s2:saturated_defective_pixel_percentage": 0,
        "s2:dark_features_percentage": 0,
        **scl_percentages(scene),
        "s2:unclassified_percentage": 0,
        "s2:snow_ice_percentage": 0,
        "s2:sequence": "0",
        "earthsearch:payload_id": f"roda-sentinel2/workflow-sentinel2-to-stac/{ident.lower()}",
        "earthsearch:s3_path": f"s3://sentinel-cogs/sentinel-s2-l2a-cogs/{zone}/{band}/{square}/"
        f"{acq.when.year}/{acq.when.month}/{ident}",
        "earthsearch:boa_offset_applied": False,
        "processing:software": {"lulc-stac demo world": "1"},
        "view:sun_azimuth": SUN_AZIMUTH,
        "view:sun_elevation": sun_elevation(scene),
        "updated": _iso(FIXED_TIME),
    }
    geometry = data_geometry(grid, acq.data_footprint())
    item = pystac.Item(
        id=ident,
        geometry=geometry,
        bbox=geometry_bbox(geometry),
        datetime=acq.when,
        properties=properties,
        stac_extensions=list(EXTENSIONS),
        collection=COLLECTION_ID,
    )
    for key in BAND_INFO:
        item.add_asset(key, _band_asset(scene, key, asset_href(ident, key, base_url), grid))
    item.add_asset("scl", _scl_asset(asset_href(ident, "scl", base_url), grid))
    return item


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def collection_extent(scenes: list[Scene], grid: OutputGrid) -> pystac.Extent:
    """The grid's bbox and the first to last acquisition time."""
    times = [scene.acquisition.when for scene in scenes]
    return pystac.Extent(
        pystac.SpatialExtent([wgs84_bbox(grid)]), pystac.TemporalExtent([[min(times), max(times)]])
    )


def make_catalog(scenes: list[Scene], grid: OutputGrid, base_url: str | None) -> pystac.Catalog:
    """A root catalog holding one ``sentinel-2-l2a`` collection with every scene's item."""
    items = [make_item(scene, grid, base_url) for scene in scenes]
    collection = pystac.Collection(
        id=COLLECTION_ID,
        title="Sentinel-2 Level-2A (lulc-stac demo world)",
        description="Synthetic Sentinel-2 L2A surface reflectance COGs in the shape Earth Search v1 "
        "publishes them: one COG per band, SCL at 20 m, processing baselines before and after 04.00.",
        extent=collection_extent(scenes, grid),
        license="proprietary",
        providers=[
            pystac.Provider(
                name="lulc-stac demo world",
                roles=[pystac.ProviderRole.PRODUCER, pystac.ProviderRole.HOST],
                description="Generated offline by `lulc demo-data`; not real observations.",
            )
        ],
    )
    for item in items:
        collection.add_item(item)
    catalog = pystac.Catalog(
        id=CATALOG_ID,
        description="The lulc-stac offline Sentinel-2 world: a synthetic landscape seen on several dates.",
        title="lulc-stac demo world",
    )
    catalog.add_child(collection)
    return catalog


class AtomicStacIO(DefaultStacIO):
    """Writes every STAC JSON file atomically, with a trailing newline."""

    def write_text_to_href(self, href: str, txt: str) -> None:
        """Write ``txt`` to the local file ``href`` through a temporary file and a rename."""
        with atomic_path(Path(href), suffix=".json") as tmp:
            tmp.write_text(txt if txt.endswith("\n") else txt + "\n")

    def json_dumps(self, json_dict: dict[str, Any], *args: Any, **kwargs: Any) -> str:
        """Indented JSON keeping the insertion order pystac produces (stable across runs)."""
        return json.dumps(json_dict, indent=2, ensure_ascii=False)


def save_catalog(catalog: pystac.Catalog, root: Path) -> Path:
    """Save ``catalog`` self-contained under ``root``; returns the path of ``catalog.json``."""
    catalog.normalize_hrefs(str(root))
    catalog.save(pystac.CatalogType.SELF_CONTAINED, stac_io=AtomicStacIO())
    return root / "catalog.json"
