"""``lulc classify --mmu-ha`` and ``--every`` on the demo world: a cleaned map, a yearly series, in one go."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import rasterio.features

from lulc.classes import NODATA
from lulc.errors import InputError, NoItemsError
from lulc.progress import NullProgress
from lulc.signals import Interrupted
from service.engine import CLEAN_DIR, classify
from service.readers import StacReaderFactory
from service.request import ClassifyRequest
from service.runner import load_model
from service.series import classify_series, split_periods
from service.workflow import publish_run
from tests.service.conftest import EngineWorld
from tests.support.stac_validation import assert_valid_stac, assert_valid_stac_file


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_mmu_cleans_the_map_as_gdal_sieve_does_and_the_item_records_it(
    engine_world: EngineWorld, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    request = ClassifyRequest(aoi=engine_world.aoi, datetime="2024", block_size=256, mmu_ha=0.5)
    result = classify(
        request, load_model(engine_world.model), StacReaderFactory(str(engine_world.catalog)), out
    )

    assert result.clean == out / CLEAN_DIR
    raw = _read(out / "classes.tif")
    cleaned = _read(out / CLEAN_DIR / "classes.tif")
    pixel_m2 = json.loads((out / "stats.json").read_text())["pixel_area_m2"]
    threshold = math.ceil(0.5 * 10_000 / pixel_m2)
    # independent computation: GDAL's sieve on the whole raster, nodata masked
    expected = rasterio.features.sieve(raw, threshold, mask=raw != NODATA, connectivity=4)
    assert np.array_equal(cleaned, expected), f"{int((cleaned != expected).sum())} pixels differ"
    assert int((cleaned != raw).sum()) > 100  # control: the unit removed patches

    item = assert_valid_stac_file(out / "item.json")
    assert item["properties"]["lulc:mmu_ha"] == 0.5
    related = [link for link in item["links"] if link["rel"] == "related"]
    assert [(out / link["href"]).resolve() for link in related] == [(out / CLEAN_DIR / "item.json").resolve()]
    clean_item = assert_valid_stac_file(out / CLEAN_DIR / "item.json")
    assert clean_item["properties"]["lulc:mmu_pixels"] == threshold
    derived = [link["href"] for link in clean_item["links"] if link["rel"] == "derived_from"]
    assert [(out / CLEAN_DIR / href).resolve() for href in derived] == [(out / "item.json").resolve()]
    assert result.clean_stats is not None
    for row in result.clean_stats["classes"]:
        assert row["pixels"] == int((cleaned == row["value"]).sum())

    # a rerun without the unit leaves no stale cleaned map behind
    again = classify(
        ClassifyRequest(aoi=engine_world.aoi, datetime="2024", block_size=256),
        load_model(engine_world.model),
        StacReaderFactory(str(engine_world.catalog)),
        out,
    )
    assert again.clean is None
    assert not (out / CLEAN_DIR).exists()
    assert np.array_equal(_read(out / "classes.tif"), raw)
    assert "lulc:mmu_ha" not in json.loads((out / "item.json").read_text())["properties"]


def test_a_bad_unit_fails_before_any_work(engine_world: EngineWorld, tmp_path: Path) -> None:
    for mmu, message in ((-1.0, "non-negative"), (math.nan, "non-negative")):
        request = ClassifyRequest(aoi=engine_world.aoi, datetime="2024", mmu_ha=mmu)
        with pytest.raises(InputError, match=message):
            classify(
                request,
                load_model(engine_world.model),
                StacReaderFactory(str(engine_world.catalog)),
                tmp_path,
            )
    foreign = tmp_path / "taken" / CLEAN_DIR
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    request = ClassifyRequest(aoi=engine_world.aoi, datetime="2024", mmu_ha=0.5)
    with pytest.raises(InputError, match="not a cleaned map"):
        classify(
            request,
            load_model(engine_world.model),
            StacReaderFactory(str(engine_world.catalog)),
            foreign.parent,
        )
    assert (foreign / "notes.txt").read_text() == "mine"
    assert not (foreign.parent / "classes.tif").exists()


def test_periods_are_whole_calendar_steps_clipped_to_the_window() -> None:
    assert [(p.label, p.datetime) for p in split_periods("2021/2023", "year")] == [
        ("2021", "2021"),
        ("2022", "2022"),
        ("2023", "2023"),
    ]
    months = split_periods("2021-11-15/2022-02-03", "month")
    assert [p.label for p in months] == ["2021-11", "2021-12", "2022-01", "2022-02"]
    assert months[0].datetime == "2021-11-15T00:00:00Z/2021-11-30T23:59:59Z"
    assert months[1].datetime == "2021-12"
    assert months[-1].datetime == "2022-02-01T00:00:00Z/2022-02-03T23:59:59Z"
    seasons = split_periods("2021-01-15/2021-12-31", "season")
    assert [(p.label, p.datetime) for p in seasons] == [
        ("2021-DJF", "2021-01-15T00:00:00Z/2021-02-28T23:59:59Z"),
        ("2021-MAM", "2021-03-01T00:00:00Z/2021-05-31T23:59:59Z"),
        ("2021-JJA", "2021-06-01T00:00:00Z/2021-08-31T23:59:59Z"),
        ("2021-SON", "2021-09-01T00:00:00Z/2021-11-30T23:59:59Z"),
        ("2022-DJF", "2021-12-01T00:00:00Z/2021-12-31T23:59:59Z"),  # a winter is labelled by its end
    ]
    # a window given in another offset is cut in UTC, as the labels mean (review: it was cut in its offset)
    shifted = split_periods("2020-12-31T22:00:00-05:00/2021-01-31", "month")
    assert [(p.label, p.datetime) for p in shifted] == [
        ("2021-01", "2021-01-01T03:00:00Z/2021-01-31T23:59:59Z")
    ]
    for window, every, message in (
        ("2021/..", "year", "both ends"),
        (None, "year", "both ends"),
        ("2021/2024", "week", "year, season, month"),
        ("1990/2024", "month", "more than"),
    ):
        with pytest.raises(InputError, match=message):
            split_periods(window, every)


def test_a_series_ending_on_the_first_day_of_a_period_is_refused_with_the_window_meant() -> None:
    """``2021-01-01/2022-01-01 --every year`` read the first day of 2022 too: a "2022" map from one day."""
    for window, every, message in (
        (
            "2021-01-01/2022-01-01",
            "year",
            "2022 would be mapped from its first day alone.*end the window on 2021-12-31",
        ),
        (
            "2021-01-01/2021-03-01",
            "month",
            "2021-03 would be .* first day alone.*end the window on 2021-02-28",
        ),
        (
            "2020-12-31/2021-12-31",
            "year",
            "2020 would be mapped from its last day alone.*start the window on 2021-01-01",
        ),
        (
            "2021-11-30/2022-02-28",
            "season",
            "2021-SON would be .* last day alone.*start the window on 2021-12-01",
        ),
    ):
        with pytest.raises(InputError, match=message):
            split_periods(window, every)
    # two days of a period, or one period of one day, are what was asked
    assert [p.label for p in split_periods("2021-01-01/2022-01-02", "year")] == ["2021", "2022"]
    assert [p.label for p in split_periods("2022-01-01/2022-01-01", "year")] == ["2022"]


def test_every_year_makes_one_map_per_year_with_imagery_and_a_valid_collection(
    engine_world: EngineWorld, tmp_path: Path
) -> None:
    """The demo world has imagery in 2021 (two dates), 2023 and 2024, none in 2022."""
    out = tmp_path / "yearly"
    model = load_model(engine_world.model)
    factory = StacReaderFactory(str(engine_world.catalog))
    request = ClassifyRequest(aoi=engine_world.aoi, datetime="2021/2024", block_size=256)
    result = classify_series(request, model, factory, out, "year")

    assert list(result.runs) == ["2021", "2023", "2024"]
    assert list(result.skipped) == ["2022"]
    assert "no items" in result.skipped["2022"]
    for label, run in result.runs.items():
        sources = [link["title"] for link in run.item_dict["links"] if link["title"].startswith("S2")]
        assert sources
        assert all(f"_{label}" in source for source in sources), sources
    assert len([s for s in result.runs["2021"].item_dict["links"] if s["title"].startswith("S2")]) == 2

    # each year's map is the map of `lulc classify --datetime <year>` (independent run, same bytes)
    alone = classify(
        ClassifyRequest(aoi=engine_world.aoi, datetime="2023", block_size=256),
        model,
        factory,
        tmp_path / "alone",
    )
    for name in ("classes.tif", "confidence.tif", "stats.json"):
        assert (out / "2023" / name).read_bytes() == (alone.classes.parent / name).read_bytes(), name
    assert not np.array_equal(_read(out / "2021" / "classes.tif"), _read(out / "2024" / "classes.tif"))

    collection = assert_valid_stac_file(out / "collection.json")
    assert collection == result.collection_dict
    items = [link for link in collection["links"] if link["rel"] == "item"]
    assert [link["lulc:period"] for link in items] == ["2021", "2023", "2024"]
    for link in items:
        item = json.loads((out / link["href"]).read_text())
        assert_valid_stac(item, link["href"])
        # each period's item belongs to the series: a STAC browser finds the collection from it
        assert item["collection"] == collection["id"]
        members = {m["rel"]: m["href"] for m in item["links"] if m["rel"] in ("collection", "parent", "root")}
        assert members == dict.fromkeys(("collection", "parent", "root"), "../collection.json")
        assert item == result.runs[link["lulc:period"]].item_dict
    props = [run.item_dict["properties"] for run in result.runs.values()]
    starts = [p.get("start_datetime") or p["datetime"] for p in props]
    ends = [p.get("end_datetime") or p["datetime"] for p in props]
    assert collection["extent"]["temporal"]["interval"] == [[min(starts), max(ends)]]
    assert collection["summaries"]["lulc:skipped_period"] == ["2022"]

    series = json.loads((out / "series.json").read_text())
    assert series == result.series
    for period in series["periods"]:
        labels = _read(out / period["period"] / "classes.tif")
        for row in period["classes"]:
            assert row["pixels"] == int((labels == row["value"]).sum())

    # a period published alone (`lulc publish`) loses its links to the collection, and so the field that
    # STAC allows only beside such a link (STAC review: the published item did not validate)
    published = publish_run(out / "2023", str(tmp_path / "published"))
    item = assert_valid_stac_file(Path(published) / "item.json")
    assert "collection" not in item
    assert not [link for link in item["links"] if link["rel"] in ("collection", "parent", "root")]


class _CtrlCAt(NullProgress):
    """Ctrl-C (``Interrupted``, as lulc's handler raises it) when the series starts on ``label``."""

    def __init__(self, label: str) -> None:
        self.label = label

    def note(self, message: str) -> None:
        if message.startswith(f"{self.label}:"):
            raise Interrupted


def test_a_series_run_again_withdraws_its_documents_while_it_replaces_maps(
    engine_world: EngineWorld, tmp_path: Path
) -> None:
    """A rerun interrupted mid-way leaves no documents of two models' maps; one replacing none keeps them.

    Review: an interrupted rerun left collection.json listing a mix of the earlier and the new maps.
    """
    out = tmp_path / "yearly"
    model = load_model(engine_world.model)
    factory = StacReaderFactory(str(engine_world.catalog))

    def request(window: str) -> ClassifyRequest:
        return ClassifyRequest(aoi=engine_world.aoi, datetime=window, block_size=256)

    classify_series(request("2021/2024"), model, factory, out, "year")
    documents = {name: (out / name).read_bytes() for name in ("collection.json", "series.json")}
    with pytest.raises(NoItemsError):  # replaces no map: the earlier series' documents stay
        classify_series(request("2018/2019"), model, factory, out, "year")
    with pytest.raises(Interrupted):  # Ctrl-C before the first map: the same
        classify_series(request("2021/2024"), model, factory, out, "year", progress=_CtrlCAt("2021"))
    assert {name: (out / name).read_bytes() for name in documents} == documents
    with pytest.raises(Interrupted):  # Ctrl-C after 2021 was replaced: 2023 and 2024 are the earlier run's
        classify_series(request("2021/2024"), model, factory, out, "year", progress=_CtrlCAt("2023"))
    assert not (out / "collection.json").exists()
    assert not (out / "series.json").exists()
    assert (out / "2021" / "item.json").exists()
    again = classify_series(request("2021/2024"), model, factory, out, "year")
    assert list(again.runs) == ["2021", "2023", "2024"]
    assert (out / "collection.json").exists()


def test_a_window_without_any_imagery_is_an_error(engine_world: EngineWorld, tmp_path: Path) -> None:
    request = ClassifyRequest(aoi=engine_world.aoi, datetime="2018/2019")
    with pytest.raises(NoItemsError, match="2018: no items"):
        classify_series(
            request,
            load_model(engine_world.model),
            StacReaderFactory(str(engine_world.catalog)),
            tmp_path,
            "year",
        )
    assert not (tmp_path / "collection.json").exists()


def test_the_python_api_cleans_and_makes_series_as_the_command_does(
    engine_world: EngineWorld, tmp_path: Path
) -> None:
    from service import api

    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps(engine_world.aoi))
    common: dict[str, Any] = {"stac": str(engine_world.catalog), "aoi": aoi, "block_size": 256}
    run = api.classify(engine_world.model, out=tmp_path / "one", datetime="2024", mmu_ha=0.5, **common)
    assert run.clean is not None
    assert run.clean.classes == tmp_path / "one" / CLEAN_DIR / "classes.tif"
    assert run.clean.item["properties"]["lulc:product"] == "clean"
    cleaned = _read(run.clean.classes)
    areas = run.clean.areas
    assert [int(areas.loc[c.name, "pixels"]) for c in run.table.classes] == [
        int((cleaned == c.value).sum()) for c in run.table.classes
    ]

    series = api.classify_series(engine_world.model, out=tmp_path / "two", datetime="2022/2024", **common)
    assert list(series.runs) == ["2023", "2024"]
    assert list(series.skipped) == ["2022"]
    assert series.collection == tmp_path / "two" / "collection.json"
    assert series.runs["2024"].labels().tobytes() == _read(run.classes).tobytes()  # same year, same map
    table = series.areas
    assert list(table.index) == ["2023", "2024"]
    assert table.loc["2024"].to_dict() == {
        **{row["name"]: row["hectares"] for row in run.stats["classes"]},
        "mapped_fraction": run.stats["mapped_fraction"],  # how much of the AOI the areas are of
    }
    with pytest.raises(InputError, match="--aoi is required with --stac"):  # the command's message
        api.classify_series(engine_world.model, out=tmp_path / "x", stac="c.json", aoi=None, datetime="2024")


def test_lulc_classify_every_year_with_a_unit_on_the_command_line(
    engine_world: EngineWorld, tmp_path: Path
) -> None:
    from tests.service.test_commands import lulc

    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps(engine_world.aoi))
    out = tmp_path / "yearly"
    done = lulc(
        "classify", "--model", engine_world.model, "--aoi", aoi, "--stac", engine_world.catalog,
        "--datetime", "2022/2024", "--every", "year", "--mmu-ha", "0.5", "--block-size", "256", "--out", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"2023: wrote {out / '2023'}" in lines
    assert f"2024: wrote {out / '2024'}" in lines
    assert any(line.startswith("2022: skipped, no items") for line in lines)
    assert lines[-1] == f"wrote {out / 'collection.json'}"
    for year in ("2023", "2024"):
        item = assert_valid_stac_file(out / year / "clean" / "item.json")
        assert item["properties"]["lulc:mmu_ha"] == 0.5
    assert_valid_stac_file(out / "collection.json")


def test_every_season_maps_each_season_from_its_own_acquisition(
    engine_world: EngineWorld, tmp_path: Path
) -> None:
    """2021 has one summer (18 July) and one autumn (6 September) acquisition in the demo world."""
    request = ClassifyRequest(aoi=engine_world.aoi, datetime="2021-06-01/2021-11-30", block_size=256)
    factory = StacReaderFactory(str(engine_world.catalog))
    result = classify_series(request, load_model(engine_world.model), factory, tmp_path, "season")
    assert list(result.runs) == ["2021-JJA", "2021-SON"]
    assert result.skipped == {}
    times = {label: run.item_dict["properties"]["datetime"][:10] for label, run in result.runs.items()}
    assert times == {"2021-JJA": "2021-07-18", "2021-SON": "2021-09-06"}
    assert_valid_stac_file(tmp_path / "collection.json")


def test_a_period_without_valid_pixels_leaves_no_empty_folder(tmp_path: Path) -> None:
    """Review: every skipped period kept the empty folder made for its staging."""
    from service.readers import ImageReaderFactory
    from tests.service.products_support import train_model, truth_map, write_image

    model = load_model(train_model(tmp_path))
    image = write_image(tmp_path / "masked.tif", truth_map((64, 64), 16, 1), 0.02, 1, nodata_corner=64)
    request = ClassifyRequest(aoi=None, datetime="2024-01-01/2024-03-31", block_size=64)
    with pytest.raises(NoItemsError, match="no month of 2024-01-01/2024-03-31"):
        classify_series(request, model, ImageReaderFactory(image), tmp_path / "out", "month", workers=1)
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_dir()] == []


def test_the_series_extent_holds_periods_across_the_antimeridian() -> None:
    """The collection's bbox is its items' outlines', west above east across 180° (RFC 7946 5.2).

    It was the items' boxes' extremes: the smallest west and the largest east, here 179.8 and 179.95, which
    left out the first period's part east of 180°.
    """
    from lulc.classes import ClassTable
    from service.engine import ClassifyResult
    from service.series import collection_document

    def item(period: str, *parts: tuple[float, float]) -> dict[str, Any]:
        rings = [[[[w, -17.0], [e, -17.0], [e, -16.9], [w, -16.9], [w, -17.0]]] for w, e in parts]
        return {
            "id": f"run-{period}",
            "geometry": {"type": "MultiPolygon", "coordinates": rings},
            "bbox": [parts[0][0], -17.0, parts[-1][1], -16.9],  # as runs write them (lulc.grid.lonlat_bbox)
            "properties": {
                "start_datetime": f"{period}-01T00:00:00Z",
                "end_datetime": f"{period}-28T23:59:59Z",
            },
        }

    def run(document: dict[str, Any]) -> ClassifyResult:
        path = Path("unused")
        return ClassifyResult(path, None, path, path, document, {})

    runs = {
        "2024-01": run(item("2024-01", (179.9, 180.0), (-180.0, -179.9))),
        "2024-02": run(item("2024-02", (179.8, 179.95))),
    }
    table = ClassTable.model_validate({"classes": [{"value": 1, "name": "Water", "color": "#1f78b4"}]})
    collection = collection_document("month", "2024-01/2024-02", runs, {}, table)
    assert collection["extent"]["spatial"]["bbox"] == [[179.8, -17.0, -179.9, -16.9]]
    assert_valid_stac(collection, "collection.json")
