"""``lulc design``: a stratified random validation sample of a map (Olofsson et al. 2014, section 5.1).

The strata are the map's classes. The overall size comes from the target standard error of overall accuracy
and each class's mapped share ``W_i`` and anticipated user's accuracy ``U_i`` (eq. 13, Cochran); each class
then gets at least ``min_per_class`` points and the rest in proportion to its area, the allocation the paper
recommends (and sits' ``sits_sampling_design`` offers). Eq. 13 assumes Neyman allocation, which this is not,
so the size then grows until the standard error the allocation would give (eq. 5 with the anticipated
accuracies) reaches the target; both sizes are recorded.

Points are pixel centres drawn without replacement inside each class's mapped pixels: the map is read in
strips of whole rows twice (once to count each class's pixels, once to place the drawn ranks), so memory is
bounded by one strip whatever the map's size, and the points depend only on the map and the seed (not on the
strip height). The sample is written in a seeded random order (so labelling does not go stratum by stratum)
with ``point_id``, ``stratum`` (the class value), ``stratum_name`` and an empty ``label`` column for the
analyst, in one layer named after the file (``<stem>``, the layer geopandas' ``to_file`` writes back to:
labels saved from it replace the points instead of adding a second layer); beside it ``<stem>.json``, a STAC
item recording the design (every stratum's pixels, weight and points; ``lulc.olofsson.read_sample_design``
reads it back for ``lulc assess`` and ``lulc change``). An existing sample is not replaced unless asked
(``overwrite``): it may hold an analyst's labels.

Given a ``lulc change`` product folder instead of a map, the strata are the change strata
(``service.change_areas.change_strata``: each class unchanged, and change grouped by the class it became)
and the sample has two empty label columns, ``label_a`` and ``label_b`` (the reference class at each date),
for ``lulc change --points``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.windows import Window

from lulc.areas import area_cells
from lulc.classes import NODATA, PALETTE, ClassTable, LandCoverClass
from lulc.cog import atomic_path
from lulc.errors import InputError
from lulc.gdal_env import gdal_env
from lulc.local_files import read_json
from lulc.olofsson import allocate, anticipated_overall_se, cochran_sample_size
from lulc.progress import NullProgress, Progress
from lulc.signals import held
from lulc.writable import check_file_writable
from service.change_areas import change_strata, change_stratum_names
from service.output import dump_json, write_text_atomic
from service.product_item import derived_link, product_item
from service.publish import ITEM_NAME
from service.run_folder import RunFolder, RunGrid, open_run, read_band, run_folder_path
from service.vectorize import (
    FORMATS,
    PARQUET,
    check_item_path,
    fixed_ogr_date,
    item_path_for,
)

DEFAULT_USERS_ACCURACY = 0.75
"""Anticipated user's accuracy of each class not given (sits' default; Olofsson's example: 0.6-0.95)."""
DEFAULT_MIN_PER_CLASS = 50
"""Points of every mapped class at least (Olofsson et al. 2014 suggest 50-100 for rare classes)."""
LABEL_FIELD = "label"
"""The column the analyst fills with the reference class (value or name); ``lulc assess``'s default."""
CHANGE_LABEL_FIELDS = ("label_a", "label_b")
"""The columns of a change sample: the reference class at each date (``lulc change``'s defaults)."""
STRATUM_FIELD = "stratum"


@dataclass(frozen=True)
class Stratum:
    """One map class as a stratum: its mapped pixels, weight, anticipated accuracy and points."""

    value: int
    name: str
    pixels: int
    weight: float
    users_accuracy: float
    points: int
    hectares: float | None = None
    """Its true ground area where measured (``lulc.areas``; the weight is then its share of the area)."""


@dataclass(frozen=True)
class SampleDesign:
    """The sizes of a stratified design (before any point is drawn)."""

    target_se: float
    min_per_class: int
    cochran_size: int
    size: int
    anticipated_se: float
    strata: tuple[Stratum, ...]


@dataclass(frozen=True)
class SamplingFrame:
    """What a design samples: a raster, the stratum of each of its pixels, and the label columns.

    ``run.classes`` is the table of strata (a map's classes, or the change strata) and ``run.classes_path``
    the raster read.
    """

    run: RunFolder
    to_strata: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.uint8]]
    label_fields: tuple[str, ...]
    kind: str
    """``classes`` (a map) or ``change`` (a ``lulc change`` product)."""


def _identity(block: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return block


def sampling_frame(path: str | Path) -> SamplingFrame:
    """A run folder's map, or a ``lulc change`` folder's change map with its change strata."""
    folder = Path(path)
    item_path = folder / ITEM_NAME
    item: dict[str, Any] = {}
    if item_path.is_file() and not (folder / "classes.tif").is_file():
        item = read_json(item_path, "run item")
    if item.get("properties", {}).get("lulc:product") != "change":
        return SamplingFrame(open_run(folder), _identity, (LABEL_FIELD,), "classes")
    try:
        raster = folder / str(item["assets"]["change"]["href"])
        transitions = json.loads((folder / str(item["assets"]["transitions"]["href"])).read_text())
        names = [str(c["name"]) for c in transitions["classes"]]
        pixel_area = float(transitions["pixel_area_m2"])
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise InputError(f"change product {folder} is incomplete ({exc}); rerun `lulc change`") from exc
    n = len(names)
    strata = ClassTable(
        classes=[
            LandCoverClass(value=i, name=name, color=PALETTE[i % len(PALETTE)])
            for i, name in enumerate(change_stratum_names(names))
        ]
    )
    with gdal_env(), rasterio.open(raster) as src:
        grid = RunGrid(src.crs, src.transform, src.height, src.width)
    run = RunFolder(
        path=folder,
        classes_path=raster,
        confidence_path=None,
        item=item,
        stats={"pixel_area_m2": pixel_area},
        classes=strata,
        grid=grid,
        nodata=NODATA,
    )
    return SamplingFrame(run, lambda block: change_strata(block, n), CHANGE_LABEL_FIELDS, "change")


@dataclass(frozen=True)
class DesignResult:
    """The sample file, its item, and the design."""

    path: Path
    item_path: Path
    design: SampleDesign
    item: dict[str, Any]


def users_accuracies(
    run: RunFolder, given: float | Mapping[str | int, float] | None
) -> npt.NDArray[np.float64]:
    """Anticipated user's accuracy per class of the run's table: one number, or by class name or value."""
    classes = run.classes.classes
    if given is None or isinstance(given, int | float):
        value = DEFAULT_USERS_ACCURACY if given is None else float(given)
        out = np.full(len(classes), value)
    else:
        out = np.full(len(classes), DEFAULT_USERS_ACCURACY)
        position = {str(c.value): i for i, c in enumerate(classes)}
        position.update({c.name.lower(): i for i, c in enumerate(classes)})
        named: dict[int, str | int] = {}
        for key, accuracy in given.items():
            i = position.get(str(key).strip().lower())
            if i is None:
                known = ", ".join(f"{c.value}={c.name}" for c in classes)
                raise InputError(f"--users-accuracy names {key!r}, not a class of the map ({known})")
            if i in named:  # by its value and its name (products review: the last won)
                raise InputError(
                    f"--users-accuracy gives class {classes[i].value}={classes[i].name} twice "
                    f"({named[i]!r} and {key!r}): give each class once"
                )
            named[i] = key
            out[i] = float(accuracy)
    bad = [float(u) for u in out if not (0.0 < u <= 1.0)]
    if bad:
        raise InputError(f"--users-accuracy values must lie in (0, 1], got {bad[0]:g}")
    return out


def check_options(target_se: float, min_per_class: int) -> None:
    """Raise InputError unless the target and the minimum per class can make a design."""
    if not (0.0 < target_se < 0.5):
        raise InputError(f"--target-se must lie between 0 and 0.5, got {target_se:g}")
    if min_per_class < 2:
        raise InputError(
            f"--min-per-class must be at least 2 (the variance needs 2 per class), got {min_per_class}"
        )


def plan_design(
    pixels: npt.ArrayLike,
    users_accuracy: npt.ArrayLike,
    target_se: float,
    min_per_class: int,
    names: list[str] | None = None,
    values: list[int] | None = None,
    hectares: npt.ArrayLike | None = None,
) -> SampleDesign:
    """Sample size and allocation for a target standard error of overall accuracy.

    Starts from eq. 13's size and grows it (bisection) until the allocation's anticipated standard error of
    overall accuracy reaches ``target_se``, or every pixel is sampled. The strata weigh their ``hectares``
    where given (true ground areas: pixels of a Web Mercator map differ in area), else their pixels.
    """
    check_options(target_se, min_per_class)
    sizes = np.asarray(pixels, dtype=np.int64)
    if sizes.sum() <= 0:
        raise InputError("the map has no classified pixels to sample")
    u = np.asarray(users_accuracy, dtype=np.float64)
    areas = None if hectares is None else np.asarray(hectares, dtype=np.float64)
    w = sizes / sizes.sum() if areas is None else areas / areas.sum()
    start = cochran_sample_size(w, u, target_se)

    def se_of(n: int) -> float:
        return anticipated_overall_se(w, u, allocate(n, sizes, min_per_class), sizes)

    low, high = start, start
    total = int(sizes.sum())
    while se_of(high) > target_se and high < total:
        low, high = high, min(2 * high, total)
    while high - low > 1 and se_of(low) > target_se:
        middle = (low + high) // 2
        low, high = (low, middle) if se_of(middle) <= target_se else (middle, high)
    size = low if se_of(low) <= target_se else high
    counts = allocate(size, sizes, min_per_class)
    names = names or [str(i) for i in range(len(sizes))]
    values = values or list(range(len(sizes)))
    strata = tuple(
        Stratum(
            values[i],
            names[i],
            int(sizes[i]),
            float(w[i]),
            float(u[i]),
            int(counts[i]),
            None if areas is None else float(areas[i]),
        )
        for i in range(len(sizes))
    )
    return SampleDesign(
        target_se=target_se,
        min_per_class=min_per_class,
        cochran_size=start,
        size=int(counts.sum()),
        anticipated_se=anticipated_overall_se(w, u, counts, sizes),
        strata=strata,
    )


def _strips(run: RunFolder, rows: int) -> list[Window]:
    height, width = run.grid.height, run.grid.width
    return [Window(0, top, width, min(rows, height - top)) for top in range(0, height, rows)]


def count_pixels(
    frame: SamplingFrame, rows: int, progress: Progress
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Pixels of each stratum value (index 0-255) in every strip, and each value's ground area (m²).

    Counts have shape ``(strips, 256)``; areas are true (``lulc.areas``), or pixels x the mean pixel area
    where pixel areas vary little.
    """
    grid = frame.run.grid
    strips = _strips(frame.run, rows)
    counts = np.zeros((len(strips), 256), dtype=np.int64)
    cells = area_cells(grid.crs.to_string(), grid.transform, grid.width, grid.height)
    area_m2 = np.zeros(256, dtype=np.float64)
    progress.start("counting pixels per stratum", len(strips))
    with gdal_env(), rasterio.open(frame.run.classes_path) as src:
        for k, window in enumerate(strips):
            strata = frame.to_strata(read_band(src, window))
            counts[k] = np.bincount(strata.ravel(), minlength=256)
            if cells is not None:
                area_m2 += cells.sum_by_value(strata, int(window.row_off), 0)
            progress.advance()
    if cells is None:
        area_m2 = counts.sum(axis=0) * frame.run.pixel_area_m2
    return counts, area_m2


def draw_points(
    frame: SamplingFrame,
    design: SampleDesign,
    strip_counts: npt.NDArray[np.int64],
    rows: int,
    rng: np.random.Generator,
    progress: Progress,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Row, column and stratum of every point: ``n_h`` distinct pixels of each class, sorted by stratum.

    Each stratum's points are ``n_h`` ranks drawn without replacement among its ``N_h`` pixels counted in
    row-major order; a second pass over the strips turns ranks into pixels (each stratum's in raster order).
    """
    run = frame.run
    strips = _strips(run, rows)
    ranks = {
        s.value: np.sort(rng.choice(s.pixels, size=s.points, replace=False))
        for s in design.strata
        if s.points > 0
    }
    before = np.cumsum(strip_counts, axis=0) - strip_counts  # pixels of each value in earlier strips
    out_rows: list[npt.NDArray[np.int64]] = []
    out_cols: list[npt.NDArray[np.int64]] = []
    out_strata: list[npt.NDArray[np.int64]] = []
    width = run.grid.width
    progress.start("drawing sample points", len(strips))
    with gdal_env(), rasterio.open(run.classes_path) as src:
        for k, window in enumerate(strips):
            wanted = {}
            for value, drawn in ranks.items():
                lo, hi = before[k, value], before[k, value] + strip_counts[k, value]
                picked = drawn[(drawn >= lo) & (drawn < hi)] - lo
                if picked.size:
                    wanted[value] = picked
            if wanted:
                strip = frame.to_strata(read_band(src, window)).ravel()
                for value, picked in wanted.items():
                    flat = np.flatnonzero(strip == value)[picked]
                    out_rows.append(flat // width + int(window.row_off))
                    out_cols.append(flat % width)
                    out_strata.append(np.full(flat.size, value, dtype=np.int64))
            progress.advance()
    if not out_rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    at_row, at_col = np.concatenate(out_rows), np.concatenate(out_cols)
    strata = np.concatenate(out_strata)
    order = np.lexsort((at_row * width + at_col, strata))  # by stratum, then raster order: not by strip
    return at_row[order], at_col[order], strata[order]


def design_run(
    run_path: str | Path,
    out_path: str | Path,
    *,
    target_se: float = 0.01,
    min_per_class: int = DEFAULT_MIN_PER_CLASS,
    users_accuracy: float | Mapping[str | int, float] | None = None,
    seed: int = 0,
    block_size: int = 512,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> DesignResult:
    """Design a stratified random validation sample of a run's map; write it to ``out_path`` (.gpkg, .fgb).

    Args:
        run_path: a ``lulc classify`` output folder (or any product run folder, e.g. a cleaned map), or its
            ``classes.tif``.
        out_path: the sample file; its STAC item is written beside it as ``<stem>.json``.
        target_se: the standard error of overall accuracy the sample should reach.
        min_per_class: points of each mapped class at least.
        users_accuracy: anticipated user's accuracy, one for all classes or by class name or value
            (default ``DEFAULT_USERS_ACCURACY`` for each class not named).
        seed: the seed of every random choice; the same seed and map give the same file bytes.
        block_size: rows read at a time (memory is bounded by this many map rows).
        overwrite: replace an existing ``out_path`` (by default refused: it may hold an analyst's labels).
        progress: told of both passes over the map.

    Raises:
        InputError: unreadable run, unknown format, an option out of range, or ``out_path`` exists (without
            ``overwrite``) or is a folder.
    """
    out = Path(out_path)
    suffix = out.suffix.lower()
    if suffix not in FORMATS or FORMATS[suffix][0] == PARQUET:
        raise InputError(f"--out {out}: the sample is written as .gpkg or .fgb (from the suffix)")
    if block_size < 16:
        raise InputError(f"--block-size must be at least 16 pixels, got {block_size}")
    check_options(target_se, min_per_class)
    check_sample_out(out, overwrite)
    check_item_path(out, "design", overwrite)
    progress = progress or NullProgress()
    frame = sampling_frame(run_folder_path(run_path))
    run = frame.run
    accuracies = users_accuracies(run, users_accuracy)
    strip_counts, area_m2 = count_pixels(frame, block_size, progress)
    totals = strip_counts.sum(axis=0)
    values = list(run.classes.values)
    pixels = np.array([totals[v] for v in values], dtype=np.int64)
    design = plan_design(
        pixels,
        accuracies,
        target_se,
        min_per_class,
        names=list(run.classes.names),
        values=values,
        hectares=area_m2[values] / 10_000.0,
    )
    rng = np.random.default_rng(seed)
    rows, cols, strata = draw_points(frame, design, strip_counts, block_size, rng, progress)
    order = rng.permutation(rows.size)
    rows, cols, strata = rows[order], cols[order], strata[order]
    with ExitStack() as in_place:  # the earlier item out, the sample and its item in: one step (review)
        _write_sample(out, frame, rows, cols, strata, in_place)
        item = _design_item(frame, out, design, seed)
        item_path = write_text_atomic(item_path_for(out), dump_json(item))
    return DesignResult(out, item_path, design, item)


def check_sample_out(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, to replace an existing sample (its labels would be lost) unless ``overwrite``.

    Raises:
        InputError: ``out`` is a folder, or it exists and ``overwrite`` is false.
    """
    if out.is_dir():
        raise InputError(f"--out {out} is a folder: give the sample file (.gpkg or .fgb)")
    check_file_writable(out, f"--out {out}")
    if out.exists() and not overwrite:
        raise InputError(
            f"--out {out} exists (it may hold labelled points): choose another file, or pass --overwrite "
            "to replace it"
        )


def _write_sample(
    out: Path,
    frame: SamplingFrame,
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    strata: npt.NDArray[np.int64],
    in_place: ExitStack,
) -> None:
    """Write the sample to ``out`` atomically; ``in_place`` holds signals from just before its rename.

    The earlier sample's item is withdrawn first: an interrupt may not leave it beside a new sample
    (review: the item said 1,882 points, the file had 524). The caller writes the new item inside
    ``in_place``.
    """
    import pyogrio.raw
    import shapely

    run = frame.run
    x, y = run.grid.transform @ (cols + 0.5, rows + 0.5)
    names = {c.value: c.name for c in run.classes.classes}
    geometry = shapely.to_wkb(shapely.points(np.asarray(x), np.asarray(y)))
    data: list[npt.NDArray[Any]] = [
        np.arange(1, rows.size + 1, dtype=np.int64),
        strata.astype(np.int32),
        np.array([names[int(v)] for v in strata], dtype=object),
        *[np.array([None] * rows.size, dtype=object) for _ in frame.label_fields],
    ]
    fields = ["point_id", STRATUM_FIELD, "stratum_name", *frame.label_fields]
    driver = FORMATS[out.suffix.lower()][0]
    with atomic_path(out, suffix=out.suffix) as tmp, fixed_ogr_date():
        tmp.unlink()
        pyogrio.raw.write(
            str(tmp),
            geometry,
            data,
            fields,
            layer=out.stem,  # geopandas' default layer: labels saved with to_file(out) replace it
            driver=driver,
            geometry_type="Point",
            crs=run.grid.crs.to_wkt(),
        )
        in_place.enter_context(held())
        item_path_for(out).unlink(missing_ok=True)


def design_properties(frame: SamplingFrame, design: SampleDesign, seed: int) -> dict[str, Any]:
    """``lulc:design``: how the sample was made and every stratum's size, weight and points."""
    run = frame.run
    ha = run.pixel_area_m2 / 10_000.0
    return {
        "kind": frame.kind,
        "method": "stratified random sampling by map class (Olofsson et al. 2014): size from eq. 13, "
        "at least min_per_class per class and the rest proportional to area, grown until the allocation's "
        "anticipated standard error of overall accuracy reaches the target",
        "target_overall_accuracy_se": design.target_se,
        "anticipated_overall_accuracy_se": round(design.anticipated_se, 6),
        "min_per_class": design.min_per_class,
        "cochran_size": design.cochran_size,
        "size": design.size,
        "seed": seed,
        "stratum_field": STRATUM_FIELD,
        "label_fields": list(frame.label_fields),
        "pixel_area_m2": round(run.pixel_area_m2, 6),
        "strata": [
            {
                "value": s.value,
                "name": s.name,
                "pixels": s.pixels,
                "hectares": round(s.pixels * ha if s.hectares is None else s.hectares, 4),
                "weight": round(s.weight, 8),
                "users_accuracy": s.users_accuracy,
                "points": s.points,
            }
            for s in design.strata
        ],
    }


def _design_item(frame: SamplingFrame, out: Path, design: SampleDesign, seed: int) -> dict[str, Any]:
    run = frame.run
    what = "map class" if frame.kind == "classes" else "change stratum"
    labels = " and ".join(frame.label_fields)
    source_id = str(run.item.get("id", run.path.name))
    media_type = FORMATS[out.suffix.lower()][1]
    return product_item(
        product="design",
        item_id=f"{source_id}-sample-{design.size}-seed{seed}",
        source=run,
        title=f"Validation sample of {source_id}: {design.size} points stratified by {what}",
        lineage=(
            f"Item {source_id} sampled by lulc-stac: {design.size} pixel centres drawn at random inside each "
            f"{what} (seed {seed}), sized for a standard error of overall accuracy of {design.target_se:g}"
        ),
        properties={"lulc:design": design_properties(frame, design, seed)},
        assets={
            "sample": {
                "href": f"./{out.name}",
                "type": media_type,
                "title": f"Validation points: {STRATUM_FIELD} ({what}), empty {labels} to fill",
                "roles": ["data"],
                # no file: checksum or size: the points are made to be labelled, which changes both
            }
        },
        links=[derived_link(run, out.parent, f"source map {source_id}")],
        extensions=[],
    )


def describe(design: SampleDesign) -> str:
    """A short text of the design's size and allocation."""
    parts = ", ".join(f"{s.name} {s.points}" for s in design.strata if s.pixels)
    return (
        f"{design.size} points (eq. 13: {design.cochran_size}), anticipated SE of overall accuracy "
        f"{design.anticipated_se:.4f} for a target of {design.target_se:g}: {parts}"
    )
