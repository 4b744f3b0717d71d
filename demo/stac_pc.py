"""The demo world's second STAC flavour: the same COGs as Planetary Computer ``sentinel-2-l2a`` items."""

from __future__ import annotations

from typing import Any

import pystac

from demo.points import geometry_bbox
from demo.sensor import Scene, band_resolution
from demo.stac import (
    BAND_INFO,
    COG_MEDIA_TYPE,
    COLLECTION_ID,
    MGRS_TILE,
    SUN_AZIMUTH,
    asset_href,
    collection_extent,
    data_geometry,
    datatake_id,
    grid_epsg,
    item_id,
    proj_bbox,
    proj_shape,
    proj_transform,
    scl_percentages,
    sun_elevation,
)
from lulc.grid import OutputGrid

PC_CATALOG_ID = "lulc-demo-world-pc"
PC_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
    "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
]
"""The extensions Planetary Computer's Sentinel-2 items declare."""
RELATIVE_ORBIT = 31


def pc_item_id(scene: Scene) -> str:
    """Planetary Computer style id, e.g. ``S2B_MSIL2A_20210718T013742_R031_T54SVE_20210718T040000``."""
    acq = scene.acquisition
    tile = "".join(MGRS_TILE)
    return (
        f"S2{acq.platform[-1].upper()}_MSIL2A_{acq.when:%Y%m%dT%H%M%S}_R{RELATIVE_ORBIT:03d}_T{tile}"
        f"_{acq.when:%Y%m%d}T040000"
    )


def make_pc_item(
    scene: Scene, grid: OutputGrid, base_url: str | None, geometry: dict[str, Any]
) -> pystac.Item:
    """The Planetary Computer shaped item of one scene: ``B02 .. B12``, ``SCL``; no ``raster:bands``."""
    acq = scene.acquisition
    tile = "".join(MGRS_TILE)
    baseline = acq.baseline.replace(".", "")
    properties: dict[str, Any] = {
        "platform": f"Sentinel-{acq.platform[-2:].upper()}",
        "proj:epsg": grid_epsg(grid),
        "instruments": ["msi"],
        "s2:mgrs_tile": tile,
        "constellation": "Sentinel 2",
        "eo:cloud_cover": scene.cloud_cover(),
        "s2:datatake_id": datatake_id(scene),
        "s2:product_uri": pc_item_id(scene).replace("_R", f"_N{baseline}_R", 1) + ".SAFE",
        "s2:product_type": "S2MSI2A",
        "sat:orbit_state": "descending",
        "s2:datatake_type": "INS-NOBS",
        "sat:relative_orbit": RELATIVE_ORBIT,
        "s2:mean_solar_zenith": round(90.0 - sun_elevation(scene), 2),
        "s2:mean_solar_azimuth": SUN_AZIMUTH,
        "s2:processing_baseline": acq.baseline,
        "s2:snow_ice_percentage": 0.0,
        "s2:nodata_pixel_percentage": scene.nodata_percentage(),
        **scl_percentages(scene),
        "s2:unclassified_percentage": 0.0,
    }
    item = pystac.Item(
        id=pc_item_id(scene),
        geometry=geometry,
        bbox=geometry_bbox(geometry),
        datetime=acq.when,
        properties=properties,
        stac_extensions=list(PC_EXTENSIONS),
        collection=COLLECTION_ID,
    )
    for key, (band_id, title, wavelength, fwhm) in BAND_INFO.items():
        resolution = band_resolution(key)
        description = title.split(" (")[0]
        item.add_asset(
            band_id,
            pystac.Asset(
                href=asset_href(item_id(scene), key, base_url, depth=3),
                media_type=COG_MEDIA_TYPE,
                title=f"Band {int(band_id[1:])} - {description} - {resolution}m",
                roles=["data"],
                extra_fields={
                    "gsd": float(resolution),
                    "eo:bands": [
                        {
                            "name": band_id,
                            "description": description,
                            "center_wavelength": wavelength,
                            "full_width_half_max": fwhm,
                            "common_name": key,
                        }
                    ],
                    "proj:bbox": proj_bbox(grid),
                    "proj:shape": proj_shape(grid, resolution),
                    "proj:transform": proj_transform(grid, resolution),
                },
            ),
        )
    item.add_asset(
        "SCL",
        pystac.Asset(
            href=asset_href(item_id(scene), "scl", base_url, depth=3),
            media_type=COG_MEDIA_TYPE,
            title="Scene classfication map (SCL)",  # sic: Planetary Computer's spelling
            roles=["data"],
            extra_fields={
                "gsd": 20.0,
                "proj:bbox": proj_bbox(grid),
                "proj:shape": proj_shape(grid, 20),
                "proj:transform": proj_transform(grid, 20),
            },
        ),
    )
    return item


def make_pc_catalog(scenes: list[Scene], grid: OutputGrid, base_url: str | None) -> pystac.Catalog:
    """A root catalog with the ``sentinel-2-l2a`` collection of Planetary Computer shaped items."""
    collection = pystac.Collection(
        id=COLLECTION_ID,
        title="Sentinel-2 Level-2A (lulc-stac demo world, Planetary Computer flavour)",
        description="The demo world's COGs described as Planetary Computer publishes Sentinel-2 L2A items.",
        extent=collection_extent(scenes, grid),
        license="proprietary",
    )
    for scene in scenes:
        geometry = data_geometry(grid, scene.acquisition.data_footprint())
        collection.add_item(make_pc_item(scene, grid, base_url, geometry))
    catalog = pystac.Catalog(
        id=PC_CATALOG_ID,
        description="The lulc-stac demo world's items with Planetary Computer asset keys and metadata.",
        title="lulc-stac demo world (Planetary Computer flavour)",
    )
    catalog.add_child(collection)
    return catalog
