"""Time series of maps: one classification per year, season or month of a time window, and their collection.

``lulc classify --every year --datetime 2021/2024 --out OUT`` classifies each calendar year of the window
with the same model into ``OUT/2021``, ``OUT/2022``, ... (each a normal run folder, its maps and stats
byte-identical to ``lulc classify --datetime 2021 --out ...``'s, its item a member of the series' collection);
``--every season`` makes ``OUT/2021-DJF`` (December 2020 to
February 2021), ``OUT/2021-MAM``, ...; ``--every month`` ``OUT/2021-07``, .... Then it writes
``OUT/series.json`` (class areas per period) and ``OUT/collection.json``, a STAC collection linking every
period's item. A period without imagery (no items, or every pixel masked) is skipped and named in both files;
a window with no imagery at all is an error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import shapely
import shapely.geometry

from lulc.classes import ClassTable
from lulc.datetimes import parse_datetime_interval
from lulc.errors import InputError, NoItemsError, NoValidPixelsError
from lulc.grid import lonlat_bbox
from lulc.progress import NullProgress, Progress
from lulc.seasons import season_year
from lulc.signals import held
from service.engine import ClassifyResult, classify
from service.output import dump_json, write_text_atomic
from service.publish import ITEM_NAME
from service.readers import ReaderFactory
from service.request import ClassifyRequest
from service.runner import ModelRunner

Every = Literal["year", "season", "month"]
EVERY: tuple[Every, ...] = ("year", "season", "month")
SEASONS = {12: "DJF", 3: "MAM", 6: "JJA", 9: "SON"}
"""Meteorological seasons by first month; a season is labelled with the year it ends in (``2021-DJF``)."""
COLLECTION_NAME = "collection.json"
SERIES_NAME = "series.json"
CLASSIFICATION = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"
MAX_PERIODS = 240
"""Most periods one series may have (20 years of months)."""


@dataclass(frozen=True)
class Period:
    """One step of a series: its label (``2021``, ``2021-07``) and the time window classified."""

    label: str
    datetime: str
    """A whole year or month as itself (``2021``: what ``--datetime 2021`` would read), else an interval."""


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _next(start: dt.datetime, every: Every) -> dt.datetime:
    if every == "year":
        return start.replace(year=start.year + 1)
    months = start.month - 1 + (3 if every == "season" else 1)
    return start.replace(year=start.year + months // 12, month=months % 12 + 1)


def _first(value: dt.datetime, every: Every) -> dt.datetime:
    """The start of the year, season or month holding ``value``."""
    start = value.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if every == "year":
        return start.replace(month=1)
    if every == "season":
        month = value.month - value.month % 3
        return start.replace(year=value.year - 1, month=12) if month == 0 else start.replace(month=month)
    return start


def _label(start: dt.datetime, every: Every) -> str:
    if every == "year":
        return f"{start:%Y}"
    if every == "season":
        return f"{start.year + (start.month == 12)}-{SEASONS[start.month]}"
    return f"{start:%Y-%m}"


def split_periods(window: str | None, every: str) -> list[Period]:
    """The calendar years, seasons or months of ``window`` (an RFC 3339 interval, both ends), clipped to it.

    Raises:
        InputError: an unknown step, a window that is missing, open-ended or invalid, or too many periods.
    """
    if every not in EVERY:
        raise InputError(f"--every must be one of {', '.join(EVERY)}, got {every!r}")
    first, last = parse_datetime_interval(window) or (None, None)
    if first is None or last is None:
        raise InputError(f"--every {every} needs a --datetime interval with both ends, e.g. 2021/2024")
    step: Every = "year" if every == "year" else "season" if every == "season" else "month"
    start = _first(first, step)
    periods: list[Period] = []
    while start <= last:
        end = _next(start, step) - dt.timedelta(seconds=1)
        label = _label(start, step)
        whole = first <= start and end <= last and step != "season"  # a season has no short RFC 3339 form
        text = label if whole else f"{_iso(max(start, first))}/{_iso(min(end, last))}"
        periods.append(Period(label, text))
        if len(periods) > MAX_PERIODS:
            raise InputError(f"--every {every} over {window} makes more than {MAX_PERIODS} maps")
        start = _next(start, step)
    _refuse_one_day_ends(periods, window, step, first, last)
    return periods


def _refuse_one_day_ends(
    periods: list[Period], window: str | None, step: Every, first: dt.datetime, last: dt.datetime
) -> None:
    """Refuse a series whose first or last period would be mapped from one day of it.

    STAC intervals include their end, so ``--datetime 2021-01-01/2022-01-01 --every year`` (an end written
    as if excluded) reads the first day of 2022 too: a map labelled 2022 from that day alone.

    Raises:
        InputError: a series of several periods starting on the last day of one or ending on the first.
    """
    if len(periods) < 2:
        return
    day = dt.timedelta(days=1)
    if last - _first(last, step) < day:
        raise InputError(
            f"--every {step} over {window}: {periods[-1].label} would be mapped from its first day alone "
            f"(STAC intervals include their end); end the window on {(last - day).date().isoformat()}"
        )
    if _next(_first(first, step), step) - first <= day:
        raise InputError(
            f"--every {step} over {window}: {periods[0].label} would be mapped from its last day alone; "
            f"start the window on {(first + day).date().isoformat()}"
        )


@dataclass(frozen=True)
class SeriesResult:
    """The maps of a series by period label, the periods skipped (with why) and the collection."""

    runs: dict[str, ClassifyResult]
    skipped: dict[str, str]
    collection: Path
    collection_dict: dict[str, Any]
    series: dict[str, Any]


def classify_series(
    request: ClassifyRequest,
    model: ModelRunner,
    reader_factory: ReaderFactory,
    out_dir: str | Path,
    every: str,
    *,
    workers: int = 2,
    progress: Progress | None = None,
    dask_scheduler: str | None = None,
) -> SeriesResult:
    """Classify every period of ``request.datetime`` into ``out_dir/<period>``; write the collection.

    Raises:
        InputError: as ``split_periods``; NoItemsError: no period has imagery; the engine's errors otherwise.
    """
    periods = split_periods(request.datetime, every)
    if model.contract.inputs.seasons:  # refused before any map (else a series stopped half-way)
        if every != "year":  # each map reads a whole year's seasons: monthly maps would all be one map
            raise InputError(f"a seasonal model maps whole years: use --every year, not --every {every}")
        partial = [p.label for p in periods if not _whole_year(p.datetime)]
        if partial:
            whole = f"{periods[0].label}/{periods[-1].label}"
            raise InputError(
                f"a seasonal model maps whole years: {request.datetime!r} covers only part of "
                f"{', '.join(partial)}; give whole years, e.g. --datetime {whole}"
            )
    out = Path(out_dir)
    progress = progress or NullProgress()
    earlier = _withdraw_documents(out)
    items_before = _period_items(out, periods)
    runs: dict[str, ClassifyResult] = {}
    skipped: dict[str, str] = {}
    try:
        for period in periods:
            progress.note(f"{period.label}: classifying {period.datetime}")
            folder = out / period.label
            existed = folder.exists()
            try:
                runs[period.label] = classify(
                    dataclasses.replace(request, datetime=period.datetime),
                    model,
                    reader_factory,
                    folder,
                    workers=workers,
                    progress=progress,
                    dask_scheduler=dask_scheduler,
                )
            except (NoItemsError, NoValidPixelsError) as exc:
                skipped[period.label] = str(exc)
                if not existed and folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()  # made for the run's staging: no empty period folder beside the maps
                elif (folder / "classes.tif").exists():
                    skipped[period.label] += f"; {folder} still holds the map of an earlier run"
        if not runs:
            raise NoItemsError(
                f"no {every} of {request.datetime} has imagery to classify: "
                + "; ".join(f"{label}: {reason}" for label, reason in skipped.items())
            )
    except BaseException:
        # no period's item changed (not even one moved in just before a Ctrl-C waiting for its renames):
        # the earlier series' documents describe it still
        if _period_items(out, periods) == items_before:
            for name, text in earlier.items():
                write_text_atomic(out / name, text)
        raise
    series = series_document(every, request.datetime or "", runs, skipped, model.contract.classes)
    write_text_atomic(out / SERIES_NAME, dump_json(series))
    collection = collection_document(every, request.datetime or "", runs, skipped, model.contract.classes)
    path = write_text_atomic(out / COLLECTION_NAME, dump_json(collection))
    runs = {label: _in_collection(result, str(collection["id"])) for label, result in runs.items()}
    return SeriesResult(runs, skipped, path, collection, series)


def _period_items(out: Path, periods: list[Period]) -> dict[str, bytes | None]:
    """Each period folder's ``item.json`` bytes (None: none there), to tell whether a run replaced one."""
    items: dict[str, bytes | None] = {}
    for period in periods:
        try:
            items[period.label] = (out / period.label / ITEM_NAME).read_bytes()
        except OSError:
            items[period.label] = None
    return items


def _withdraw_documents(out: Path) -> dict[str, str]:
    """Remove an earlier series' ``collection.json`` and ``series.json`` from ``out``; their texts.

    They go before the first map is replaced: an interrupted rerun left them listing a mix of the earlier
    and the new model's maps (review). A rerun that replaces no map puts them back.
    """
    texts = {}
    for name in (COLLECTION_NAME, SERIES_NAME):
        try:
            texts[name] = (out / name).read_text(encoding="utf-8")
        except (OSError, ValueError):
            continue
    with held():
        for name in texts:
            (out / name).unlink(missing_ok=True)
    return texts


def _whole_year(window: str) -> bool:
    """Whether a period's window is a whole calendar year (what a seasonal model maps)."""
    try:
        season_year(window)
    except InputError:
        return False
    return True


def _in_collection(result: ClassifyResult, collection_id: str) -> ClassifyResult:
    """The period's item rewritten as a member of the series' collection (after the collection exists).

    A STAC browser opening one period's item finds its series: ``collection`` and the links to it.
    """
    href = f"../{COLLECTION_NAME}"
    links = [link for link in result.item_dict.get("links", []) if link.get("rel") not in MEMBERSHIP]
    title = "The series' collection"
    links += [{"rel": rel, "href": href, "type": "application/json", "title": title} for rel in MEMBERSHIP]
    item = {**result.item_dict, "collection": collection_id, "links": links}
    write_text_atomic(result.item, dump_json(item))
    return dataclasses.replace(result, item_dict=item)


MEMBERSHIP = ("collection", "parent", "root")
"""The links of a period's item to its series' collection."""


def _times(item: dict[str, Any]) -> tuple[str, str]:
    props = item["properties"]
    start = props.get("start_datetime") or props["datetime"]
    end = props.get("end_datetime") or props["datetime"]
    return str(start), str(end)


def series_document(
    every: str, window: str, runs: dict[str, ClassifyResult], skipped: dict[str, str], table: ClassTable
) -> dict[str, Any]:
    """``series.json``: per period, the item, its acquisition times and pixels and hectares per class."""
    periods = []
    for label, result in runs.items():
        start, end = _times(result.item_dict)
        periods.append(
            {
                "period": label,
                "item": f"./{label}/{ITEM_NAME}",
                "start_datetime": start,
                "end_datetime": end,
                "valid_hectares": result.stats_dict["valid_hectares"],
                "classes": [
                    {k: row[k] for k in ("value", "name", "pixels", "hectares")}
                    for row in result.stats_dict["classes"]
                ],
            }
        )
    return {
        "every": every,
        "datetime": window,
        "classes": [{"value": c.value, "name": c.name, "color": c.color} for c in table.classes],
        "periods": periods,
        "skipped": [{"period": label, "reason": reason} for label, reason in skipped.items()],
    }


def collection_document(
    every: str, window: str, runs: dict[str, ClassifyResult], skipped: dict[str, str], table: ClassTable
) -> dict[str, Any]:
    """The series' STAC collection: one ``item`` link per period, the extents, the summaries."""
    items = [result.item_dict for result in runs.values()]
    first = items[0]
    model = str(first["properties"].get("lulc:model", ""))
    digest = hashlib.sha256("\n".join(item["id"] for item in items).encode()).hexdigest()[:12]
    # the union's, not the boxes' extremes: across the antimeridian an item's west is above its east
    bbox = list(lonlat_bbox(shapely.union_all([shapely.geometry.shape(item["geometry"]) for item in items])))
    times = [_times(item) for item in items]
    labels = list(runs)
    span = labels[0] if len(labels) == 1 else f"{labels[0]} to {labels[-1]}"
    classes = items[0]["properties"].get("classification:classes") or table.to_stac()
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "stac_extensions": [CLASSIFICATION],
        "id": f"lulc-series-{digest}",
        "title": f"Land cover from {model}, every {every}, {span}",
        "description": (
            f"One land-cover map per {every} of {window}, each classified by lulc-stac with model {model} "
            "from that period's imagery alone"
            + (f"; no imagery to classify in {', '.join(skipped)}" if skipped else "")
        ),
        "license": "other",
        "extent": {
            "spatial": {"bbox": [bbox]},
            "temporal": {"interval": [[min(t[0] for t in times), max(t[1] for t in times)]]},
        },
        "summaries": {
            "lulc:model": [model],
            "lulc:every": [every],
            "lulc:period": labels,
            **({"lulc:skipped_period": list(skipped)} if skipped else {}),  # summaries are never empty
            "classification:classes": classes,
        },
        "links": [
            {"rel": "root", "href": f"./{COLLECTION_NAME}", "type": "application/json"},
            *(
                {
                    "rel": "item",
                    "href": f"./{label}/{ITEM_NAME}",
                    "type": "application/geo+json",
                    "title": label,
                    "lulc:period": label,
                }
                for label in labels
            ),
        ],
        "assets": {
            "series": {
                "href": f"./{SERIES_NAME}",
                "type": "application/json",
                "title": f"Pixels and hectares per class and {every}",
                "roles": ["metadata"],
            }
        },
    }
