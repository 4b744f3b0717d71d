"""Sentinel-2 L2A STAC items from any provider, normalised to canonical bands, scaling, CRS and SCL masking.

Providers and their asset keys:

- Earth Search v1 (``sentinel-2-l2a``, ``sentinel-2-c1-l2a``): ``coastal, blue, ..., swir22, scl``
  (the ``*-jp2`` duplicates are ignored).
- Planetary Computer (``sentinel-2-l2a``): ``B01 .. B12, B8A, SCL``.
- Copernicus Data Space (CDSE STAC, ``sentinel-2-l2a``): ``B04_10m, B04_20m, ..., SCL_20m``; the
  native-resolution variant of each band is used (10 m for B02/B03/B04/B08, 20 m for B05-B07, B8A,
  B11, B12 and SCL, 60 m for B01/B09).
- Anything else: ``eo:bands`` / STAC 1.1 ``bands`` (``name``, ``common_name``, ``center_wavelength``).

Radiometric scaling, ``reflectance = DN * scale + offset``, decided per band asset in this order:

1. ``earthsearch:boa_offset_applied`` (or the older ``sentinel:boa_offset_applied``) is ``true``: Earth
   Search has already shifted the pixel values by BOA_ADD_OFFSET, so the offset is 0. This wins over
   ``raster:bands``, because Earth Search v1 items keep listing ``offset: -0.1`` in ``raster:bands``
   even when the offset has been applied (Element84/earth-search#9: "the offset property may be
   incorrectly set to -0.1 even when it has been applied ... the boa_offset_applied is the truth").
2. The asset's raster metadata: ``raster:bands[0].scale/offset`` (raster extension 1.x), or the STAC 1.1
   forms ``raster:scale``/``raster:offset`` on the asset or on its single ``bands`` entry. A value that
   is present is used as is.
3. Whatever is still missing comes from the processing baseline: scale 1/10000, and offset -0.1
   (-1000 DN) for baseline >= 04.00, else 0. The baseline is read from ``s2:processing_baseline``,
   ``processing:version`` (CDSE), ``sentinel:processing_baseline``, or the ``_Nxxyy_`` part of the
   product URI / item id; when none is found the acquisition date decides (baseline 04.00 started on
   2022-01-25).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import pystac

from lulc.contract import DEFAULT_MASK_SCL
from lulc.errors import SourceError
from lulc.features import SENTINEL2_BANDS

DEFAULT_SCALE = 1e-4
"""Sentinel-2 L2A quantification value 10000."""

BOA_OFFSET = -0.1
"""BOA_ADD_OFFSET (-1000 DN) times the scale, for processing baseline 04.00 and later."""

BASELINE_04_START = datetime(2022, 1, 25, tzinfo=UTC)
"""First acquisitions processed with baseline 04.00 (used only when an item states no baseline)."""

BAND_IDS: dict[str, str] = {
    "B01": "coastal",
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B05": "rededge1",
    "B06": "rededge2",
    "B07": "rededge3",
    "B08": "nir",
    "B8A": "nir08",
    "B09": "nir09",
    "B11": "swir16",
    "B12": "swir22",
}
"""ESA band identifiers to canonical names (B10, cirrus, is not in L2A products)."""


def band_name(text: str) -> str | None:
    """The canonical Sentinel-2 band a name stands for: itself in any case (``Red``), or its id (B04, B4)."""
    key = text.strip()
    if key.lower() in SENTINEL2_BANDS:
        return key.lower()
    upper = key.upper()
    if is_short_code(upper):  # Earth Engine's B4 is ESA's B04
        upper = f"B0{upper[1]}"
    return BAND_IDS.get(upper)


def is_short_code(text: str) -> bool:
    """A one-digit band code (``B4``): Sentinel-2's in Earth Engine's exports, another sensor's elsewhere."""
    key = text.strip().upper()
    return len(key) == 2 and key[0] == "B" and key[1].isdigit()


def unknown_bands(bands: Sequence[str]) -> str | None:
    """Why some of ``bands`` name no Sentinel-2 band (with the likely one meant), or None when all do."""
    unknown = [b for b in bands if band_name(b) is None]
    if not unknown:
        return None
    import difflib

    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name.lower(), SENTINEL2_BANDS, n=1)
        if close:
            hints.append(f"{name!r}: did you mean {close[0]!r}?")
    return (
        f"unknown band(s) {unknown}: bands are Sentinel-2's, by name ({', '.join(SENTINEL2_BANDS)}) or id "
        "(B02 ... B12)" + (f"; {' '.join(hints)}" if hints else "")
    )


NATIVE_RESOLUTION: dict[str, float] = {
    "coastal": 60,
    "blue": 10,
    "green": 10,
    "red": 10,
    "rededge1": 20,
    "rededge2": 20,
    "rededge3": 20,
    "nir": 10,
    "nir08": 20,
    "nir09": 60,
    "swir16": 20,
    "swir22": 20,
    "scl": 20,
}
"""Native ground sampling distance of each band, metres."""

CENTER_WAVELENGTH: dict[str, float] = {
    "coastal": 0.443,
    "blue": 0.490,
    "green": 0.560,
    "red": 0.665,
    "rededge1": 0.704,
    "rededge2": 0.740,
    "rededge3": 0.783,
    "nir": 0.842,
    "nir08": 0.865,
    "nir09": 0.945,
    "swir16": 1.610,
    "swir22": 2.190,
}
"""Centre wavelengths (micrometres), to tell ``rededge`` and ``nir`` bands apart in ``eo:bands``."""

PROVIDERS = ("earth-search", "planetary-computer", "cdse", "unknown")

_ESA_KEY = re.compile(r"^(B\d{2}|B8A)(?:_(\d+)m)?$", re.IGNORECASE)
_SCL_KEY = re.compile(r"^scl(?:_(\d+)m)?$", re.IGNORECASE)
_BASELINE_IN_NAME = re.compile(r"_N(\d{2})(\d{2})(?:_|\.|$)")
_EPSG_CODE = re.compile(r"^EPSG:(\d+)$", re.IGNORECASE)
_BOA_APPLIED_KEYS = ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied")
_BASELINE_KEYS = ("s2:processing_baseline", "processing:version", "sentinel:processing_baseline")


@dataclass(frozen=True)
class BandAsset:
    """One single-band raster asset of an item: where it is and how its DNs become reflectance."""

    band: str
    key: str
    href: str
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None
    resolution: float | None = None
    shape: tuple[int, int] | None = None
    transform: tuple[float, float, float, float, float, float] | None = None

    def reflectance_params(self) -> tuple[float, float]:
        """``(scale, offset)`` such that ``reflectance = DN * scale + offset``."""
        return self.scale, self.offset


@dataclass(frozen=True)
class NormalizedItem:
    """A Sentinel-2 L2A item reduced to what classification needs, whatever the provider."""

    id: str
    collection: str | None
    datetime: datetime
    bbox: tuple[float, ...] | None
    geometry: dict[str, Any] | None
    epsg: int
    bands: dict[str, BandAsset]
    scl: BandAsset | None
    mask_classes: tuple[int, ...]
    cloud_cover: float | None
    provider: str
    processing_baseline: str | None
    self_href: str | None
    item: pystac.Item = field(repr=False, compare=False)

    def band(self, name: str) -> BandAsset:
        """The asset of canonical band ``name``; a clear error naming the item if it has none."""
        try:
            return self.bands[name]
        except KeyError:
            raise SourceError(
                f"item {self.id!r} has no {name!r} band (it has: {', '.join(self.bands) or 'none'})"
            ) from None

    def has_bands(self, names: Iterable[str]) -> bool:
        """Whether every band in ``names`` is present."""
        return all(name in self.bands for name in names)

    def missing_bands(self, names: Iterable[str]) -> list[str]:
        """The bands of ``names`` this item lacks, in the order given."""
        return [name for name in names if name not in self.bands]


def least_cloudy(items: Sequence[NormalizedItem], n: int | None) -> list[NormalizedItem]:
    """The ``n`` least cloudy items of each tile among ``items``, in their order (all when ``n`` is None).

    A tile is an item's MGRS tile (``_tile``): an AOI over two tiles keeps ``n`` of each, where ``n`` of the
    whole search could all come from one tile and leave the other half of the map empty. No cloud cover
    counts as 101 %; ties go to the earlier item, then the smaller id. Training composites a recipe's
    ``max_items`` this way, and a model records it (``Inputs.max_items``) so that classification composites
    the same way.
    """
    if n is None:
        return list(items)
    tiles: dict[tuple[Any, ...], list[NormalizedItem]] = {}
    for item in items:
        tiles.setdefault(_tile(item), []).append(item)
    keep: set[str] = set()
    for members in tiles.values():
        ranked = sorted(
            members, key=lambda i: (i.cloud_cover if i.cloud_cover is not None else 101.0, i.datetime, i.id)
        )
        keep.update(i.id for i in ranked[:n])
    return [i for i in items if i.id in keep]


def _tile(item: NormalizedItem) -> tuple[Any, ...]:
    """The tile an item covers: its MGRS tile as the provider names it, else its grid, else its footprint.

    ``grid:code`` (Earth Search, CDSE), ``s2:mgrs_tile`` (Planetary Computer) or Earth Search's ``mgrs:*``;
    without any, its CRS and the transform of its first band by name; the bounding box last (it varies with
    the orbit, so a tile's items may then fall apart).
    """
    props = item.item.properties
    code = props.get("grid:code") or props.get("s2:mgrs_tile")
    if code is None and "mgrs:grid_square" in props:
        code = f"{props.get('mgrs:utm_zone')}{props.get('mgrs:latitude_band')}{props['mgrs:grid_square']}"
    if code is not None:
        return ("tile", str(code))
    first = item.bands[min(item.bands)] if item.bands else None
    if first is not None and first.transform is not None:
        return ("grid", item.epsg, *first.transform)
    return ("bbox", item.epsg, *(item.bbox or ()))


def normalize_item(
    item: pystac.Item | Mapping[str, Any], mask_classes: Sequence[int] | None = None
) -> NormalizedItem:
    """Normalise a Sentinel-2 L2A STAC item (Earth Search v1, Planetary Computer, CDSE or similar).

    Args:
        item: The item, as a ``pystac.Item`` or its GeoJSON dict.
        mask_classes: SCL classes to mask; default ``lulc.contract.DEFAULT_MASK_SCL``.

    Returns:
        The normalised item.

    Raises:
        SourceError: The item cannot be parsed, has no recognisable red or nir asset, or no CRS.
    """
    stac_item = _as_item(item)
    props = stac_item.properties
    name = f"item {stac_item.id!r}" + (f" of {stac_item.collection_id!r}" if stac_item.collection_id else "")
    self_href = stac_item.get_self_href()

    when = _item_datetime(stac_item, name)
    baseline = _processing_baseline(props, stac_item)
    boa_applied = any(props.get(key) is True for key in _BOA_APPLIED_KEYS)
    default_offset = _baseline_offset(baseline, when)

    bands: dict[str, BandAsset] = {}
    scl: BandAsset | None = None
    for key, asset in stac_item.assets.items():
        band = _canonical_band(key, asset)
        if band is None:
            continue
        href = _absolute_href(asset)
        resolution = _resolution(asset, key)
        if band == "scl":
            candidate = _band_asset("scl", key, href, asset, resolution, scale=1.0, offset=0.0)
            if _better(candidate, scl):
                scl = candidate
            continue
        scale, offset = _scale_offset(asset, boa_applied, default_offset)
        candidate = _band_asset(band, key, href, asset, resolution, scale=scale, offset=offset)
        if _better(candidate, bands.get(band)):
            bands[band] = candidate

    missing = [b for b in ("red", "nir") if b not in bands]
    if missing:
        raise SourceError(
            f"{name} has no recognisable {' or '.join(missing)} asset "
            f"(asset keys: {', '.join(stac_item.assets) or 'none'})"
        )
    epsg = _epsg(stac_item, name)
    ordered = {b: bands[b] for b in SENTINEL2_BANDS if b in bands}
    cloud = props.get("eo:cloud_cover")
    return NormalizedItem(
        id=stac_item.id,
        collection=stac_item.collection_id,
        datetime=when,
        bbox=tuple(float(v) for v in stac_item.bbox) if stac_item.bbox else None,
        geometry=stac_item.geometry,
        epsg=epsg,
        bands=ordered,
        scl=scl,
        mask_classes=tuple(int(c) for c in (DEFAULT_MASK_SCL if mask_classes is None else mask_classes)),
        cloud_cover=float(cloud) if isinstance(cloud, int | float) else None,
        provider=detect_provider(stac_item),
        processing_baseline=baseline,
        self_href=self_href,
        item=stac_item,
    )


def detect_provider(item: pystac.Item) -> str:
    """``earth-search``, ``planetary-computer``, ``cdse`` or ``unknown``, from links, properties and keys."""
    hosts = " ".join(
        urlparse(target).netloc.lower()
        for link in item.links
        if link.rel in ("self", "root", "collection", "parent")
        # get_target_str, not .href: .href resolves the root catalog, which can mean network I/O.
        and isinstance(target := link.get_target_str(), str)
    )
    if "element84.com" in hosts:
        return "earth-search"
    if "planetarycomputer" in hosts:
        return "planetary-computer"
    if "dataspace.copernicus.eu" in hosts:
        return "cdse"
    keys = set(item.assets)
    if any(k.startswith("earthsearch:") or k.startswith("sentinel:") for k in item.properties):
        return "earth-search"
    if any(_ESA_KEY.match(k) and "_" in k for k in keys) or "SCL_20m" in keys:
        return "cdse"
    if {"B04", "B08"} <= keys:
        return "planetary-computer"
    if {"red", "nir"} <= keys:
        return "earth-search"
    return "unknown"


def _as_item(item: pystac.Item | Mapping[str, Any]) -> pystac.Item:
    if isinstance(item, pystac.Item):
        return item
    ident = item.get("id", "<no id>") if isinstance(item, Mapping) else "<not a mapping>"
    try:
        # migrate=False keeps the provider's own metadata shape (and avoids migration warnings).
        return pystac.Item.from_dict(dict(item), preserve_dict=True, migrate=False)
    except Exception as exc:  # pystac raises KeyError/ValueError/STACError on malformed dicts
        raise SourceError(f"item {ident!r} is not a valid STAC item: {exc}") from exc


def _item_datetime(item: pystac.Item, name: str) -> datetime:
    when = item.datetime
    if when is None:
        start = item.properties.get("start_datetime")
        if not isinstance(start, str):
            raise SourceError(f"{name} has neither datetime nor start_datetime")
        when = pystac.utils.str_to_datetime(start)
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _processing_baseline(props: Mapping[str, Any], item: pystac.Item) -> str | None:
    for key in _BASELINE_KEYS:
        value = props.get(key)
        if isinstance(value, str | int | float) and str(value).strip():
            return str(value).strip()
    for text in (props.get("s2:product_uri"), props.get("product:id"), item.id):
        if isinstance(text, str):
            match = _BASELINE_IN_NAME.search(text)
            if match:
                return f"{match.group(1)}.{match.group(2)}"
    return None


def _baseline_number(baseline: str) -> float | None:
    try:
        return float(baseline)
    except ValueError:
        match = re.match(r"^\s*(\d+)(?:\.(\d+))?", baseline)
        if not match:
            return None
        return float(f"{match.group(1)}.{match.group(2) or 0}")


def _baseline_offset(baseline: str | None, when: datetime) -> float:
    """Offset implied by the processing baseline (or, failing that, by the acquisition date)."""
    number = _baseline_number(baseline) if baseline is not None else None
    if number is not None:
        return BOA_OFFSET if number >= 4.0 else 0.0
    return BOA_OFFSET if when >= BASELINE_04_START else 0.0


def _canonical_band(key: str, asset: pystac.Asset) -> str | None:
    """Canonical band name of a single-band asset, ``"scl"`` for the scene classification, else None."""
    if key.lower().endswith("-jp2"):
        return None
    if key in SENTINEL2_BANDS:
        return key
    if _SCL_KEY.match(key):
        return "scl"
    match = _ESA_KEY.match(key)
    if match:
        return BAND_IDS.get(match.group(1).upper())
    entries = _band_entries(asset)
    if len(entries) != 1:
        return None
    return _band_from_entry(entries[0])


def _band_entries(asset: pystac.Asset) -> list[dict[str, Any]]:
    for key in ("bands", "eo:bands"):
        value = asset.extra_fields.get(key)
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            return value
    return []


def _band_from_entry(entry: Mapping[str, Any]) -> str | None:
    name = str(entry.get("name", ""))
    if name in SENTINEL2_BANDS:
        return name
    if name.upper() in BAND_IDS:
        return BAND_IDS[name.upper()]
    if name.lower() == "scl":
        return "scl"
    wavelength = entry.get("center_wavelength", entry.get("eo:center_wavelength"))
    if isinstance(wavelength, int | float) and not isinstance(wavelength, bool):
        nearest = min(CENTER_WAVELENGTH, key=lambda b: abs(CENTER_WAVELENGTH[b] - wavelength))
        if abs(CENTER_WAVELENGTH[nearest] - wavelength) <= 0.015:
            return nearest
    common = entry.get("common_name", entry.get("eo:common_name"))
    # "rededge" (three bands share it) is not canonical, so it only maps through the wavelength.
    return str(common) if common in SENTINEL2_BANDS else None


def _raster_entry(asset: pystac.Asset) -> dict[str, Any]:
    bands = asset.extra_fields.get("raster:bands")
    if isinstance(bands, list) and bands and isinstance(bands[0], dict):
        return bands[0]
    return {}


def _lookup(asset: pystac.Asset, raster_key: str, plain_key: str) -> Any:
    """A raster property from ``raster:bands[0]``, the asset itself (STAC 1.1) or its single band."""
    entry = _raster_entry(asset)
    if plain_key in entry:
        return entry[plain_key]
    fields = asset.extra_fields
    for key in (raster_key, plain_key):
        if key in fields:
            return fields[key]
    bands = _band_entries(asset)
    if len(bands) == 1:
        for key in (raster_key, plain_key):
            if key in bands[0]:
                return bands[0][key]
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _nodata(value: Any) -> float | None:
    """A nodata value: a number, or one of the STAC raster extension's strings ``nan``, ``inf``, ``-inf``."""
    if isinstance(value, str) and value.strip().lower() in ("nan", "inf", "-inf", "+inf"):
        return float(value.strip())
    return _number(value)


def _scale_offset(asset: pystac.Asset, boa_applied: bool, default_offset: float) -> tuple[float, float]:
    scale = _number(_lookup(asset, "raster:scale", "scale"))
    offset = _number(_lookup(asset, "raster:offset", "offset"))
    if scale is None:
        scale = DEFAULT_SCALE
    if boa_applied:
        return scale, 0.0
    return scale, default_offset if offset is None else offset


def _resolution(asset: pystac.Asset, key: str) -> float | None:
    for value in (
        _raster_entry(asset).get("spatial_resolution"),
        asset.extra_fields.get("gsd"),
    ):
        number = _number(value)
        if number is not None and number > 0:
            return number
    match = re.search(r"_(\d+)m$", key)
    if match:
        return float(match.group(1))
    transform = asset.extra_fields.get("proj:transform")
    if isinstance(transform, list) and len(transform) >= 6:
        number = _number(transform[0])
        if number is not None and number > 0:
            return number
    return None


def _band_asset(
    band: str,
    key: str,
    href: str,
    asset: pystac.Asset,
    resolution: float | None,
    *,
    scale: float,
    offset: float,
) -> BandAsset:
    nodata = _nodata(_lookup(asset, "raster:nodata", "nodata"))
    shape = asset.extra_fields.get("proj:shape")
    transform = asset.extra_fields.get("proj:transform")
    return BandAsset(
        band=band,
        key=key,
        href=href,
        scale=scale,
        offset=offset,
        nodata=0.0 if nodata is None else nodata,
        resolution=resolution,
        shape=(int(shape[0]), int(shape[1])) if isinstance(shape, list) and len(shape) == 2 else None,
        transform=(
            (
                float(transform[0]),
                float(transform[1]),
                float(transform[2]),
                float(transform[3]),
                float(transform[4]),
                float(transform[5]),
            )
            if isinstance(transform, list) and len(transform) >= 6
            else None
        ),
    )


def _better(candidate: BandAsset, current: BandAsset | None) -> bool:
    """Whether ``candidate`` should replace ``current`` for the same band: native resolution first."""
    if current is None:
        return True
    native = NATIVE_RESOLUTION.get(candidate.band)

    def rank(asset: BandAsset) -> tuple[int, float]:
        res = asset.resolution if asset.resolution is not None else float("inf")
        return (0 if res == native else 1, res)

    return rank(candidate) < rank(current)


def _absolute_href(asset: pystac.Asset) -> str:
    absolute = asset.get_absolute_href()
    return absolute if absolute is not None else asset.href


def _epsg(item: pystac.Item, name: str) -> int:
    sources: list[Mapping[str, Any]] = [item.properties]
    sources.extend(asset.extra_fields for asset in item.assets.values())
    for fields in sources:
        code = fields.get("proj:code")
        if isinstance(code, str):
            match = _EPSG_CODE.match(code.strip())
            if match:
                return int(match.group(1))
        epsg = fields.get("proj:epsg")
        if isinstance(epsg, int) and not isinstance(epsg, bool):
            return epsg
        if isinstance(epsg, str) and epsg.isdigit():
            return int(epsg)
    raise SourceError(
        f"{name} has no readable CRS (no EPSG proj:code or proj:epsg on the item or its assets)"
    )
