"""Seasonal models on the demo world: seasons separate Cropland from Grassland (one composite mixes them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from demo.seasons import compare_seasons
from lulc.contract import load_contract
from lulc.errors import InputError
from service.api import classify, classify_series
from tests.support.stac_validation import assert_valid_stac_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("seasons")
    return out, compare_seasons(out, size=512, seed=0)


def test_seasons_raise_cropland_and_grassland_f1_on_the_validation_points(
    compared: tuple[Path, dict[str, Any]],
) -> None:
    _, result = compared
    single, seasons = result["single composite"]["f1"], result["seasons"]["f1"]
    assert seasons["Cropland"] > single["Cropland"]
    assert seasons["Grassland"] > single["Grassland"]
    assert result["seasons"]["map_accuracy"] > result["single composite"]["map_accuracy"]


def test_the_contract_keeps_the_seasons_and_the_map_reads_them_in_the_year_asked(
    compared: tuple[Path, dict[str, Any]],
) -> None:
    out, result = compared
    contract = load_contract(out / "models" / "seasons" / "model.json")
    assert contract.inputs.seasons is not None
    assert [s.name for s in contract.inputs.seasons] == ["spring", "summer", "autumn"]
    assert contract.feature_names[0] == "spring_blue"
    assert len(contract.feature_names) == 3 * 9
    assert sorted(i for i in result["seasons"]["items"] if i.startswith("S2")) == [
        "S2A_54SVE_20250412_0_L2A.json",
        "S2A_54SVE_20251020_0_L2A.json",
        "S2B_54SVE_20250716_0_L2A.json",
    ]
    assert_valid_stac_file(out / "models" / "seasons" / "model.json")
    assert_valid_stac_file(out / "runs" / "seasons" / "item.json")
    single = load_contract(out / "models" / "single-composite" / "model.json")
    assert single.inputs.seasons is None
    assert "seasons" not in json.loads(single.to_json())["inputs"]


def _seasonal(compared: tuple[Path, dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    """The output folder and what ``classify`` takes for the seasonal model: model, stac and aoi."""
    out, _ = compared
    world = out / "world"
    aoi = json.loads((world / "aoi.geojson").read_text())
    return out, {"model": out / "models" / "seasons", "stac": str(world / "catalog.json"), "aoi": aoi}


def test_a_seasonal_model_classifies_one_year(compared: tuple[Path, dict[str, Any]]) -> None:
    out, given = _seasonal(compared)
    with pytest.raises(InputError, match="one year at a time"):
        classify(**given, datetime="2021/2025", out=out / "never")
    assert not (out / "never").exists()


def test_a_seasonal_model_refuses_part_of_a_year_and_sub_year_series(
    compared: tuple[Path, dict[str, Any]],
) -> None:
    """A month of a year is refused, as is a series by month.

    It was read as the whole year's seasons: a "January" map of April-October imagery, twelve identical
    "monthly" maps.
    """
    out, given = _seasonal(compared)
    with pytest.raises(InputError, match=r"whole years .* '2025-01' is part of 2025; give the year"):
        classify(**given, datetime="2025-01", out=out / "january")
    with pytest.raises(InputError, match=r"use --every year, not --every month"):
        classify_series(**given, datetime="2025", every="month", out=out / "monthly")
    assert not (out / "january").exists()
    assert not (out / "monthly").exists()
    classify(**given, datetime="2025-01-01/2025-12-31", out=out / "year")
    assert (out / "year" / "classes.tif").exists()  # the year written as an interval is a year


def test_a_seasonal_series_ending_inside_a_year_is_refused_before_any_map(
    compared: tuple[Path, dict[str, Any]],
) -> None:
    """2025/2026-06 by year: the 2026 part-year stopped the series after 2025's map, no collection written."""
    out, given = _seasonal(compared)
    with pytest.raises(InputError, match=r"'2025/2026-06' covers only part of 2026; give whole years"):
        classify_series(**given, datetime="2025/2026-06", out=out / "part-year")
    assert not (out / "part-year").exists()


def test_a_seasonal_run_past_the_imagery_claims_only_where_every_season_is(
    compared: tuple[Path, dict[str, Any]],
) -> None:
    """Review: a seasonal run's item claimed its whole AOI, and said nothing of the part without imagery."""
    import shapely.geometry

    from lulc.aoi import parse_aoi

    out, given = _seasonal(compared)
    west, south, east, north = parse_aoi(given["aoi"]).bounds
    wider = shapely.geometry.box(west, south, east + (east - west), north)  # its eastern half past the items
    classify(**{**given, "aoi": shapely.geometry.mapping(wider)}, datetime="2025", out=out / "wider")
    item = json.loads((out / "wider" / "item.json").read_text())
    assert_valid_stac_file(out / "wider" / "item.json")
    footprint = shapely.geometry.shape(item["geometry"])
    unmapped = shapely.geometry.shape(item["properties"]["lulc:unmapped"])
    assert footprint.area < 0.6 * wider.area
    assert unmapped.area > 0.4 * wider.area
    assert unmapped.union(footprint).symmetric_difference(wider).area < 1e-3 * wider.area
