"""The imagery backdrop: true- and false-colour layers of the input imagery, stretched in reflectance.

Two kinds of input: a Sentinel-2 STAC item (drawn by ``/stac/tiles`` from its band assets) and a local
multi-band GeoTIFF a run was made from (``lulc classify --image``; drawn by ``/cog/tiles`` from its bands,
whose roles and reflectance scaling the run item's ``derived_from`` link records).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, Field

from lulc.errors import SourceError
from lulc.sentinel2 import NormalizedItem, normalize_item

COMPOSITES: dict[str, tuple[str, tuple[tuple[str, float, float], ...]]] = {
    "true_color": (
        "True colour (red, green, blue)",
        (("red", 0.0, 0.3), ("green", 0.0, 0.3), ("blue", 0.0, 0.3)),
    ),
    "false_color": (
        "False colour (nir, red, green)",
        (("nir", 0.0, 0.5), ("red", 0.0, 0.3), ("green", 0.0, 0.3)),
    ),
}
"""Backdrop composites: bands and the reflectance range each is stretched over."""


class BackdropLayer(BaseModel):
    """One composite of an item as STAC tiler parameters."""

    name: str
    title: str
    bands: list[str] = Field(description="Canonical band per RGB channel.")
    assets: list[str] = Field(
        description="Asset keys of those bands in the STAC item, or their band indexes in the GeoTIFF."
    )
    rescale: list[tuple[float, float]] = Field(
        description="DN range per channel: the reflectance range converted with each asset's scale/offset."
    )
    query: str = Field(description="Query string for the `endpoint`'s tiles (without the `url`).")


class Backdrop(BaseModel):
    """The backdrop layers of one input: a Sentinel-2 item or a local image."""

    url: str
    id: str
    datetime: str
    cloud_cover: float | None
    bbox: list[float] | None
    layers: list[BackdropLayer]
    endpoint: Literal["stac", "cog"] = Field(
        default="stac", description="Tiles from `/stac/tiles` (a STAC item) or `/cog/tiles` (a GeoTIFF)."
    )


def dn_range(scale: float, offset: float, low: float, high: float) -> tuple[float, float]:
    """The DN range whose reflectance (``DN * scale + offset``) spans ``low..high``."""
    if scale == 0:
        raise SourceError("a band has scale 0: cannot stretch it")
    return (round((low - offset) / scale, 3), round((high - offset) / scale, 3))


def _composites(bands: Mapping[str, tuple[str, float, float]], parameter: str) -> list[BackdropLayer]:
    """The composites whose bands are all in ``bands`` (band -> (asset key or index, scale, offset))."""
    layers = []
    for name, (title, channels) in COMPOSITES.items():
        if not all(band in bands for band, _, _ in channels):
            continue
        keys = [bands[band][0] for band, _, _ in channels]
        rescale = [dn_range(bands[band][1], bands[band][2], low, high) for band, low, high in channels]
        params: list[tuple[str, str]] = [(parameter, key) for key in keys]
        params += [("rescale", f"{lo:g},{hi:g}") for lo, hi in rescale]
        layers.append(
            BackdropLayer(
                name=name,
                title=title,
                bands=[band for band, _, _ in channels],
                assets=keys,
                rescale=rescale,
                query=urlencode(params),
            )
        )
    return layers


def backdrop_layers(item: NormalizedItem) -> list[BackdropLayer]:
    """The composites ``item`` has all bands for."""
    bands = {band: (asset.key, asset.scale, asset.offset) for band, asset in item.bands.items()}
    return _composites(bands, "assets")


def image_backdrop(url: str, link: Mapping[str, Any], datetime: str, bbox: list[float] | None) -> Backdrop:
    """The backdrop of a GeoTIFF at ``url`` from a run item's ``derived_from`` link to it.

    The link's ``lulc:bands`` (band name -> 1-based index) and ``lulc:scale``/``lulc:offset`` say which band
    is which and how its values become reflectance. ``SourceError`` when they are missing or lack the bands
    of every composite.
    """
    roles, scale, offset = link.get("lulc:bands"), link.get("lulc:scale", 1.0), link.get("lulc:offset", 0.0)
    if (
        not isinstance(roles, Mapping)
        or not isinstance(scale, int | float)
        or not isinstance(offset, int | float)
    ):
        raise SourceError(f"the link to {url} records no band roles (lulc:bands) and scaling")
    bands = {
        str(band): (str(index), float(scale), float(offset))
        for band, index in roles.items()
        if isinstance(index, int) and not isinstance(index, bool) and index >= 1
    }
    layers = _composites(bands, "bidx")
    if not layers:
        raise SourceError(f"image {url} lacks the bands of any backdrop composite ({', '.join(bands)})")
    name = str(link.get("title") or url.rsplit("/", 1)[-1])
    return Backdrop(
        url=url, id=name, datetime=datetime, cloud_cover=None, bbox=bbox, layers=layers, endpoint="cog"
    )


def backdrop_of(url: str, item: Mapping[str, Any]) -> Backdrop:
    """The backdrop of the Sentinel-2 item (GeoJSON dict) at ``url``; ``SourceError`` if it is not one."""
    data = dict(item)
    links = [link for link in data.get("links", []) if isinstance(link, dict) and link.get("rel") != "self"]
    data["links"] = [*links, {"rel": "self", "href": url, "type": "application/json"}]
    normalized = normalize_item(data)
    layers = backdrop_layers(normalized)
    if not layers:
        raise SourceError(f"item {normalized.id!r} at {url} lacks the bands of any backdrop composite")
    return Backdrop(
        url=url,
        id=normalized.id,
        datetime=normalized.datetime.isoformat(),
        cloud_cover=normalized.cloud_cover,
        bbox=list(normalized.bbox) if normalized.bbox else None,
        layers=layers,
    )
