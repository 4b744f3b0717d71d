"""The imagery backdrop: true- and false-colour layers of a Sentinel-2 item, stretched in reflectance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
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
    assets: list[str] = Field(description="Asset keys of those bands in this item.")
    rescale: list[tuple[float, float]] = Field(
        description="DN range per channel: the reflectance range converted with each asset's scale/offset."
    )
    query: str = Field(description="Query string for /stac/tiles (without the item url).")


class Backdrop(BaseModel):
    """The backdrop layers of one Sentinel-2 item."""

    url: str
    id: str
    datetime: str
    cloud_cover: float | None
    bbox: list[float] | None
    layers: list[BackdropLayer]


def dn_range(scale: float, offset: float, low: float, high: float) -> tuple[float, float]:
    """The DN range whose reflectance (``DN * scale + offset``) spans ``low..high``."""
    if scale == 0:
        raise SourceError("a band has scale 0: cannot stretch it")
    return (round((low - offset) / scale, 3), round((high - offset) / scale, 3))


def backdrop_layers(item: NormalizedItem) -> list[BackdropLayer]:
    """The composites ``item`` has all bands for."""
    layers = []
    for name, (title, channels) in COMPOSITES.items():
        if not item.has_bands(band for band, _, _ in channels):
            continue
        assets: list[str] = []
        rescale: list[tuple[float, float]] = []
        for band, low, high in channels:
            asset = item.bands[band]
            assets.append(asset.key)
            rescale.append(dn_range(asset.scale, asset.offset, low, high))
        params: list[tuple[str, str]] = [("assets", key) for key in assets]
        params += [("rescale", f"{lo:g},{hi:g}") for lo, hi in rescale]
        layers.append(
            BackdropLayer(
                name=name,
                title=title,
                bands=[band for band, _, _ in channels],
                assets=assets,
                rescale=rescale,
                query=urlencode(params),
            )
        )
    return layers


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
