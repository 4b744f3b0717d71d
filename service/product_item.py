"""STAC items of map products (cleaned map, polygons, change): derived from the run items they came from.

A product item keeps its source's footprint, time and projection, declares its own assets with checksums,
names the processing in ``processing:lineage``, says which product it is in ``lulc:product`` (``clean``,
``patches``, ``change`` or ``design``) with its first source's id in ``lulc:source``, and links
``derived_from`` each source item (relative hrefs, so product and run folders can move together). Classes
follow classification v2.0.0: a machine ``name`` matching ``^[0-9A-Za-z-_]+$`` and the human ``title``.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from lulc.classes import ClassTable
from lulc.grid import UNMAPPED
from service.run_folder import RunFolder

STAC_VERSION = "1.1.0"
CLASSIFICATION = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"
FILE = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
PROCESSING = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
PROJECTION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
PRODUCTS = ("clean", "smooth", "patches", "change", "design")
"""``lulc:product`` of each map product: cleaned map, smoothed map, polygons, from-to change, validation
sample design."""
_MACHINE_NAME = re.compile(r"^[0-9A-Za-z-_]+$")
# Properties of the source item a derived product keeps: where, when, on which grid.
_KEPT = ("datetime", "start_datetime", "end_datetime", "lulc:model", "lulc:datetime_window", UNMAPPED)
_KEPT_PREFIXES = ("proj:",)


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^0-9a-z]+", "-", ascii_text.lower()).strip("-")


def stac_classes(classes: ClassTable) -> list[dict[str, Any]]:
    """``classification:classes`` of a table: the table's own STAC form, with v2 machine names ensured.

    Where the table's form still carries the human name in ``name``, that becomes the ``title`` and
    ``name`` becomes its slug (made unique with ``-<value>``).
    """
    objects = [dict(o) for o in classes.to_stac()]
    if all(_MACHINE_NAME.match(str(o["name"])) and "title" in o for o in objects):
        return objects
    slugs = [_slug(str(o["name"])) or f"class-{o['value']}" for o in objects]
    repeated = {s for s in slugs if slugs.count(s) > 1}
    for o, s in zip(objects, slugs, strict=True):
        o.setdefault("title", o["name"])
        o["name"] = f"{s}-{o['value']}" if s in repeated else s
    return objects


def kept_properties(run: RunFolder) -> dict[str, Any]:
    """The source item's time, model and projection properties (``proj:code`` rather than ``proj:epsg``)."""
    source = run.item.get("properties", {})
    kept = {k: v for k, v in source.items() if k in _KEPT or k.startswith(_KEPT_PREFIXES)}
    epsg = kept.pop("proj:epsg", None)
    if "proj:code" not in kept:
        code = run.grid.crs.to_epsg()
        kept["proj:code"] = f"EPSG:{code}" if code is not None else (f"EPSG:{epsg}" if epsg else None)
    if "datetime" not in kept:
        kept["datetime"] = None
    return kept


def derived_link(run: RunFolder, out_dir: Path, title: str) -> dict[str, Any]:
    """A ``derived_from`` link to the run's item, relative to the product folder."""
    href = os.path.relpath(run.item_path.resolve(), out_dir.resolve())
    return {"rel": "derived_from", "href": href, "type": "application/geo+json", "title": title}


def product_item(
    *,
    item_id: str,
    product: str,
    source: RunFolder,
    title: str,
    lineage: str,
    properties: Mapping[str, Any],
    assets: Mapping[str, dict[str, Any]],
    links: list[dict[str, Any]],
    extensions: list[str],
    dropped: Collection[str] = (),
) -> dict[str, Any]:
    """A product item on ``source``'s footprint and grid, with the given assets and links.

    ``product`` names what the item is (``PRODUCTS``) as ``lulc:product``; ``lulc:source`` is the id of the
    first source item, whose ``item.json`` the first ``derived_from`` link points at. ``dropped``: source
    properties (``kept_properties``) the product does not carry.
    """
    if product not in PRODUCTS:
        raise ValueError(f"unknown product {product!r}")
    kept = {k: v for k, v in kept_properties(source).items() if k not in dropped}
    props: dict[str, Any] = {
        **kept,
        "title": title,
        "lulc:product": product,
        "lulc:source": str(source.item.get("id", source.path.name)),
        "processing:lineage": lineage,
        "processing:software": source.item.get("properties", {}).get("processing:software", {}),
        **properties,
    }
    if not props["processing:software"]:
        props.pop("processing:software")
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": sorted({PROCESSING, PROJECTION, FILE, *extensions}),
        "id": item_id,
        "geometry": source.item.get("geometry"),
        "bbox": source.item.get("bbox"),
        "properties": dict(sorted(props.items())),
        "links": links,
        "assets": dict(assets),
    }
