"""Sentinel-2 item normalisation against item JSON shaped like each provider's real metadata."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac
import pytest

from lulc.contract import DEFAULT_MASK_SCL
from lulc.errors import SourceError
from lulc.features import SENTINEL2_BANDS
from lulc.sentinel2 import BandAsset, normalize_item

ITEMS = Path(__file__).resolve().parents[1] / "data" / "items"

ES_L2A = "earth-search-v1-sentinel-2-l2a.json"
ES_C1 = "earth-search-v1-sentinel-2-c1-l2a.json"
PC = "planetary-computer-sentinel-2-l2a.json"
CDSE = "cdse-sentinel-2-l2a.json"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ITEMS / name).read_text())
    return data


def strip_raster_metadata(item: dict[str, Any]) -> dict[str, Any]:
    for asset in item["assets"].values():
        asset.pop("raster:bands", None)
        asset.pop("raster:scale", None)
        asset.pop("raster:offset", None)
    return item


@pytest.mark.parametrize(
    ("fixture", "provider", "epsg", "red_key", "nir08_key", "scl_key", "collection"),
    [
        (ES_L2A, "earth-search", 32639, "red", "nir08", "scl", "sentinel-2-l2a"),
        (ES_C1, "earth-search", 32638, "red", "nir08", "scl", "sentinel-2-c1-l2a"),
        (PC, "planetary-computer", 32633, "B04", "B8A", "SCL", "sentinel-2-l2a"),
        (CDSE, "cdse", 32633, "B04_10m", "B8A_20m", "SCL_20m", "sentinel-2-l2a"),
    ],
)
def test_each_provider_maps_to_canonical_bands(
    fixture: str, provider: str, epsg: int, red_key: str, nir08_key: str, scl_key: str, collection: str
) -> None:
    raw = load(fixture)
    item = normalize_item(raw)

    assert item.provider == provider
    assert item.epsg == epsg
    assert item.collection == collection
    assert item.id == raw["id"]
    assert tuple(item.bands) == SENTINEL2_BANDS  # all twelve, in wavelength order
    assert item.band("red").key == red_key
    assert item.band("nir08").key == nir08_key
    assert item.band("red").href == raw["assets"][red_key]["href"]
    assert item.scl is not None
    assert item.scl.key == scl_key
    assert (item.scl.scale, item.scl.offset) == (1.0, 0.0)
    assert item.mask_classes == tuple(DEFAULT_MASK_SCL)
    assert item.datetime.tzinfo is not None
    assert item.datetime.utcoffset() == UTC.utcoffset(None)
    assert item.cloud_cover == pytest.approx(raw["properties"]["eo:cloud_cover"])
    assert item.bbox == pytest.approx(tuple(raw["bbox"]))
    assert item.geometry == raw["geometry"]
    # native resolutions, whatever the provider calls them
    assert item.band("red").resolution == 10
    assert item.band("swir16").resolution == 20
    assert item.band("coastal").resolution == 60
    assert item.band("red").shape == (10980, 10980)
    assert item.band("red").transform is not None
    assert item.band("red").transform[0] == 10


def test_earth_search_jp2_duplicates_and_multiband_assets_are_ignored() -> None:
    item = normalize_item(load(ES_L2A))
    keys = {band.key for band in item.bands.values()}
    assert "red-jp2" not in keys
    assert "nir-jp2" not in keys
    assert "visual" not in keys
    assert item.band("red").href.endswith("/B04.tif")


def test_earth_search_offset_already_applied_wins_over_raster_bands() -> None:
    # Real Earth Search v1 items list offset -0.1 in raster:bands even when the offset is applied.
    raw = load(ES_L2A)
    assert raw["properties"]["earthsearch:boa_offset_applied"] is True
    assert raw["assets"]["red"]["raster:bands"][0]["offset"] == -0.1
    item = normalize_item(raw)
    assert (item.band("red").scale, item.band("red").offset) == (0.0001, 0.0)
    assert all(band.offset == 0.0 for band in item.bands.values())
    # 1500 DN is 0.15 reflectance, not 0.05
    red = item.band("red")
    assert 1500 * red.scale + red.offset == pytest.approx(0.15)


def test_earth_search_offset_not_applied_uses_raster_bands_offset() -> None:
    raw = load(ES_L2A)
    raw["properties"]["earthsearch:boa_offset_applied"] = False
    red = normalize_item(raw).band("red")
    assert (red.scale, red.offset) == (0.0001, -0.1)
    assert 1500 * red.scale + red.offset == pytest.approx(0.05)


def test_collection_1_items_apply_the_listed_offset() -> None:
    raw = load(ES_C1)
    assert "earthsearch:boa_offset_applied" not in raw["properties"]
    item = normalize_item(raw)
    assert item.processing_baseline == "05.11"
    assert all((b.scale, b.offset) == (0.0001, -0.1) for b in item.bands.values())


def test_raster_bands_values_are_honoured_when_present() -> None:
    raw = load(ES_C1)
    raw["assets"]["red"]["raster:bands"][0]["scale"] = 0.0002
    raw["assets"]["red"]["raster:bands"][0]["offset"] = -0.2
    raw["assets"]["nir"]["raster:bands"][0]["offset"] = 0
    item = normalize_item(raw)
    assert (item.band("red").scale, item.band("red").offset) == (0.0002, -0.2)
    assert (item.band("nir").scale, item.band("nir").offset) == (0.0001, 0.0)


@pytest.mark.parametrize(
    ("baseline", "applied", "expected_offset"),
    [
        ("05.09", None, -0.1),
        ("04.00", False, -0.1),
        ("03.01", None, 0.0),
        ("02.14", False, 0.0),
        ("05.09", True, 0.0),
    ],
)
def test_baseline_decides_offset_without_raster_bands(
    baseline: str, applied: bool | None, expected_offset: float
) -> None:
    raw = strip_raster_metadata(load(ES_L2A))
    raw["properties"]["s2:processing_baseline"] = baseline
    if applied is None:
        raw["properties"].pop("earthsearch:boa_offset_applied")
    else:
        raw["properties"]["earthsearch:boa_offset_applied"] = applied
    red = normalize_item(raw).band("red")
    assert red.scale == 0.0001
    assert red.offset == expected_offset


@pytest.mark.parametrize(("baseline", "expected_offset"), [("05.09", -0.1), ("04.00", -0.1), ("03.00", 0.0)])
def test_planetary_computer_offset_follows_the_processing_baseline(
    baseline: str, expected_offset: float
) -> None:
    raw = load(PC)
    assert not any("raster:bands" in a for a in raw["assets"].values())  # PC items carry none
    raw["properties"]["s2:processing_baseline"] = baseline
    item = normalize_item(raw)
    assert item.processing_baseline == baseline
    assert {(b.scale, b.offset) for b in item.bands.values()} == {(0.0001, expected_offset)}


def test_baseline_from_product_uri_then_date_when_no_property() -> None:
    raw = strip_raster_metadata(load(PC))
    raw["properties"].pop("s2:processing_baseline")
    item = normalize_item(raw)
    assert item.processing_baseline == "05.09"  # from s2:product_uri ..._N0509_...
    assert item.band("red").offset == -0.1

    old = strip_raster_metadata(load(PC))
    for key in ("s2:processing_baseline", "s2:product_uri"):
        old["properties"].pop(key)
    old["properties"]["datetime"] = "2021-06-13T10:00:31Z"
    assert normalize_item(old).band("red").offset == 0.0
    old["properties"]["datetime"] = "2022-02-13T10:00:31Z"
    assert normalize_item(old).band("red").offset == -0.1


def test_cdse_stac_1_1_raster_fields_and_processing_version() -> None:
    raw = load(CDSE)
    item = normalize_item(raw)
    assert item.processing_baseline == "05.11"
    assert (item.band("red").scale, item.band("red").offset) == (0.0001, -0.1)
    assert item.band("red").nodata == 0
    # prefer the native-resolution variant: B04_10m, not B04_20m / B04_60m; B05_20m, not B05_60m
    assert item.band("red").key == "B04_10m"
    assert item.band("rededge1").key == "B05_20m"
    assert item.band("coastal").key == "B01_60m"
    assert item.scl is not None
    assert item.scl.key == "SCL_20m"

    # Without the native variant, the finest available one is used.
    del raw["assets"]["B04_10m"]
    assert normalize_item(raw).band("red").key == "B04_20m"


def test_cdse_raster_offset_changed_on_the_asset_is_read() -> None:
    raw = load(CDSE)
    raw["assets"]["B04_10m"]["raster:offset"] = 0
    raw["assets"]["B04_10m"]["raster:scale"] = 0.00015
    red = normalize_item(raw).band("red")
    assert (red.scale, red.offset) == (0.00015, 0.0)


def test_crs_from_proj_code_or_proj_epsg_item_or_asset_level() -> None:
    raw = load(ES_L2A)
    assert normalize_item(raw).epsg == 32639  # proj:epsg on the item

    raw["properties"].pop("proj:epsg")
    raw["properties"]["proj:code"] = "EPSG:32640"
    assert normalize_item(raw).epsg == 32640  # proj:code on the item

    cdse = load(CDSE)
    assert "proj:code" not in cdse["properties"]
    assert "proj:epsg" not in cdse["properties"]
    assert normalize_item(cdse).epsg == 32633  # proj:code on the assets

    raw["properties"].pop("proj:code")
    raw["assets"]["red"]["proj:epsg"] = 32641
    assert normalize_item(raw).epsg == 32641  # proj:epsg on an asset


@pytest.mark.parametrize("code", [None, "IAU_2015:30100", "not a crs"])
def test_item_without_readable_crs_is_one_clear_error(code: str | None) -> None:
    raw = load(ES_L2A)
    raw["properties"].pop("proj:epsg")
    if code is not None:
        raw["properties"]["proj:code"] = code
    with pytest.raises(SourceError, match=r"S2A_39QTA_20230628_0_L2A.*CRS") as info:
        normalize_item(raw)
    assert "Traceback" not in str(info.value)


@pytest.mark.parametrize(
    ("fixture", "drop"), [(ES_L2A, ["nir", "nir-jp2"]), (PC, ["B04"]), (CDSE, ["B08_10m"])]
)
def test_item_without_red_or_nir_names_the_item_and_its_keys(fixture: str, drop: list[str]) -> None:
    raw = load(fixture)
    for key in drop:
        del raw["assets"][key]
    with pytest.raises(SourceError) as info:
        normalize_item(raw)
    message = str(info.value)
    assert raw["id"] in message
    assert ("nir" in message) if fixture != PC else ("red" in message)
    assert next(iter(raw["assets"])) in message  # lists the keys it does have


def test_relative_hrefs_are_resolved_against_the_self_href() -> None:
    raw = load(ES_C1)
    raw["links"] = [{"rel": "self", "href": "https://data.example.test/catalog/items/x/x.json"}]
    raw["assets"]["red"]["href"] = "../../cogs/x/B04.tif"
    raw["assets"]["nir"]["href"] = "B08.tif"
    item = normalize_item(raw)
    assert item.self_href == "https://data.example.test/catalog/items/x/x.json"
    assert item.band("red").href == "https://data.example.test/catalog/cogs/x/B04.tif"
    assert item.band("nir").href == "https://data.example.test/catalog/items/x/B08.tif"


def test_relative_hrefs_of_an_item_read_from_disk(tmp_path: Path) -> None:
    raw = load(PC)
    raw["links"] = []
    raw["assets"]["B04"]["href"] = "./cogs/B04.tif"
    path = tmp_path / "items" / "item.json"
    path.parent.mkdir()
    path.write_text(json.dumps(raw))
    item = normalize_item(pystac.Item.from_file(str(path)))
    assert item.band("red").href == str(tmp_path / "items" / "cogs" / "B04.tif")
    assert item.item.id == raw["id"]


def test_scl_mask_classes_default_and_custom() -> None:
    assert normalize_item(load(PC)).mask_classes == (0, 1, 3, 8, 9, 10)
    item = normalize_item(load(PC), mask_classes=[3, 8, 9])
    assert item.mask_classes == (3, 8, 9)
    assert item.scl is not None
    assert item.scl.resolution == 20
    assert item.scl.nodata == 0


def test_item_without_scl_has_none() -> None:
    raw = load(ES_L2A)
    del raw["assets"]["scl"]
    assert normalize_item(raw).scl is None


def test_unknown_provider_maps_through_eo_bands() -> None:
    raw = load(ES_L2A)
    raw["links"] = []
    for key in [k for k in raw["properties"] if k.startswith("earthsearch:")]:
        raw["properties"].pop(key)
    renamed = {}
    for key, asset in raw["assets"].items():
        if key.endswith("-jp2"):
            continue
        renamed[f"layer_{key}" if key != "scl" else "SCL"] = asset
    raw["assets"] = renamed
    item = normalize_item(raw)
    assert item.provider == "unknown"
    assert item.band("red").key == "layer_red"
    # "rededge" is the common name of three bands: the wavelength tells them apart
    assert item.band("rededge1").key == "layer_rededge1"
    assert item.band("rededge3").key == "layer_rededge3"
    assert item.band("nir08").key == "layer_nir08"
    assert tuple(item.bands) == SENTINEL2_BANDS


def test_stac_1_1_bands_with_eo_common_name_map_for_unknown_keys() -> None:
    raw = load(CDSE)
    raw["links"] = []
    raw["assets"] = {
        "reflectance_red": raw["assets"]["B04_10m"],
        "reflectance_nir": raw["assets"]["B08_10m"],
    }
    item = normalize_item(raw)
    assert set(item.bands) == {"red", "nir"}
    assert item.has_bands(["red", "nir"])
    assert not item.has_bands(["red", "swir16"])
    assert item.missing_bands(["swir16", "red", "green"]) == ["swir16", "green"]


def test_band_lookup_error_names_item_and_available_bands() -> None:
    raw = load(CDSE)
    raw["assets"] = {k: v for k, v in raw["assets"].items() if k in ("B04_10m", "B08_10m", "SCL_20m")}
    item = normalize_item(raw)
    with pytest.raises(SourceError, match=r"S2B_MSIL2A_20250302T095029.*'swir16'.*red, nir"):
        item.band("swir16")


def test_pystac_item_input_and_start_datetime_only() -> None:
    raw = load(PC)
    raw["properties"]["datetime"] = None
    raw["properties"]["start_datetime"] = "2023-06-13T10:00:31+02:00"
    raw["properties"]["end_datetime"] = "2023-06-13T10:10:31+02:00"
    item = normalize_item(pystac.Item.from_dict(copy.deepcopy(raw)))
    assert item.datetime == datetime(2023, 6, 13, 8, 0, 31, tzinfo=UTC)
    assert item.datetime.tzinfo == UTC


def test_malformed_item_dict_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="broken"):
        normalize_item({"id": "broken", "type": "Feature"})


def test_band_asset_is_frozen() -> None:
    band = normalize_item(load(PC)).band("red")
    assert isinstance(band, BandAsset)
    assert band.reflectance_params() == (band.scale, band.offset)
    with pytest.raises(AttributeError):
        band.scale = 1.0  # type: ignore[misc]


def test_the_least_cloudy_items_are_chosen_per_tile() -> None:
    """Two tiles of an AOI, the eastern one cloudier: 2 items of each are kept.

    The 2 least cloudy of all were both western: the eastern half of a map was left empty.
    """
    from dataclasses import replace

    from lulc.sentinel2 import least_cloudy

    base = normalize_item(load(ES_L2A))
    items = []
    for tile, shift in (("west", 0.0), ("east", 109_800.0)):
        for day, cloud in ((1, 30.0), (2, 5.0), (3, 10.0)):
            bands = {
                name: replace(asset, transform=(10.0, 0.0, 300_000.0 + shift, 0.0, -10.0, 4_000_000.0))
                for name, asset in base.bands.items()
            }
            raw = base.item.clone()
            raw.properties["grid:code"] = f"MGRS-54S{tile.upper()}"
            items.append(
                replace(
                    base,
                    id=f"{tile}-{day}",
                    datetime=datetime(2024, 6, day, tzinfo=UTC),
                    cloud_cover=cloud + (40.0 if tile == "east" else 0.0),
                    bands=bands,
                    item=raw,
                )
            )
    kept = [i.id for i in least_cloudy(items, 2)]
    assert kept == ["west-2", "west-3", "east-2", "east-3"]
    assert [i.id for i in least_cloudy(items, None)] == [i.id for i in items]
    # one tile whatever its items' grids (a new processing baseline) or footprints (the orbit) say
    moved = [replace(items[0], bands={k: replace(b, transform=None) for k, b in items[0].bands.items()})]
    assert [i.id for i in least_cloudy([*moved, *items[1:3]], 1)] == ["west-2"]
