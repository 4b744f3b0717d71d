"""``lulc smooth``: sits' Bayesian smoothing of a run's class probabilities, written as a new run folder.

The run must hold ``probabilities.tif`` (``lulc classify --probabilities``). Each block is read with a halo
of neighbouring pixels (mirrored past the map's edges), smoothed (``service.bayes_smoothing``) and labelled;
the output folder is a run like ``lulc classify`` writes (class COG, confidence COG, the smoothed
probabilities, ``stats.json``, ``item.json``), so every product command works on it too.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.windows import Window

from lulc.classes import NODATA
from lulc.cog import translate_to_cog
from lulc.errors import InputError
from lulc.gdal_env import gdal_env
from lulc.progress import NullProgress, Progress
from service.bayes_smoothing import BayesSmoothing, decide, pad_to_halo, smooth_block
from service.clean import band_fields, class_map_assets, derived_run, map_stats
from service.output import (
    AUX_NAME,
    CLASSES_COG,
    CLASSES_NAME,
    CONFIDENCE_COG,
    CONFIDENCE_NAME,
    PROBABILITIES_NAME,
    QML_NAME,
    STATS_NAME,
    ClassCounts,
    class_tags,
    dump_json,
    file_fields,
    move_into_place,
    staging_dir,
    staging_profile,
    write_class_sidecars,
)
from service.product_item import CLASSIFICATION, COG_TYPE, RASTER, derived_link, product_item, stac_classes
from service.publish import ITEM_NAME
from service.run_folder import RunFolder, read_band


@dataclass(frozen=True)
class SmoothResult:
    """The smoothed run's folder, how many pixels changed class, and its item and stats."""

    out_dir: Path
    changed_pixels: int
    item: dict[str, Any]
    stats: dict[str, Any]


def smoothing(window: int, neigh_fraction: float, smoothness: tuple[float, ...]) -> BayesSmoothing:
    """The parameters, or an ``InputError`` naming the option that is out of range."""
    try:
        return BayesSmoothing(window, neigh_fraction, smoothness)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def smooth_run(
    run_path: str | Path,
    out_dir: str | Path,
    params: BayesSmoothing,
    *,
    block_size: int = 512,
    workers: int = 2,
    progress: Progress | None = None,
) -> SmoothResult:
    """Smooth a run's class probabilities (sits' Bayesian smoothing) and label them again into ``out_dir``.

    Args:
        run_path: a ``lulc classify --probabilities`` output folder, or its ``classes.tif``.
        out_dir: the new run folder; its files appear only once complete (``item.json`` last).
        params: window, neighbourhood fraction and smoothness (one, or one per class).
        block_size: block edge in pixels; memory is bounded by a few blocks per worker (and a strip of
            windows, ``STRIP_CELLS``).
        workers: blocks smoothed at once (threads: NumPy runs the sorts and sums without the GIL); blocks
            are read and written one at a time, in order, so the files do not depend on it.
        progress: told the number of blocks, advanced as each smoothed block is written.

    Raises:
        InputError: the run folder is not readable, has no probabilities, or an option is out of range.
    """
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    run, out, blocks, cells = derived_run(run_path, out_dir, block_size, "the smoothed map")
    source = run.path / PROBABILITIES_NAME
    if not source.is_file():
        raise InputError(
            f"run folder {run.path} has no {PROBABILITIES_NAME}: classify with --probabilities to smooth it"
        )
    values = [c.value for c in run.classes.classes]
    try:
        params.smoothness_of(len(values))
    except ValueError as exc:
        raise InputError(f"--smoothness: {exc}") from exc
    progress = progress or NullProgress()
    grid = run.grid
    counts = ClassCounts.empty()
    changed = 0
    with staging_dir(out) as staging, gdal_env():
        paths = {
            name: staging / f"{name}.tmp.tif" for name in (CLASSES_NAME, CONFIDENCE_NAME, PROBABILITIES_NAME)
        }
        profile = staging_profile(grid.crs, grid.transform, grid.width, grid.height)
        with (
            rasterio.open(source) as src,
            rasterio.open(run.classes_path) as before_src,
            rasterio.open(paths[CLASSES_NAME], "w", **profile) as classes_dst,
            rasterio.open(paths[CONFIDENCE_NAME], "w", **profile) as confidence_dst,
            rasterio.open(paths[PROBABILITIES_NAME], "w", **{**profile, "count": len(values)}) as prob_dst,
        ):
            if src.count != len(values) or src.shape != (grid.height, grid.width):
                raise InputError(
                    f"{source} has {src.count} bands of {src.width} x {src.height} pixels, not one per class "
                    f"({len(values)}) on the map's grid ({grid.describe()})"
                )
            _describe(classes_dst, confidence_dst, prob_dst, run)
            progress.start("smoothing blocks", blocks.n_blocks)
            pending: deque[tuple[Window, Future[Decided]]] = deque()

            def write_first() -> None:
                nonlocal counts, changed
                window, future = pending.popleft()
                labels, top, percent = future.result()
                classes_dst.write(labels, 1, window=window)
                confidence_dst.write(top, 1, window=window)
                prob_dst.write(percent, window=window)
                changed += int(np.count_nonzero(read_band(before_src, window) != labels))
                here = cells.sum_by_value(labels, window.row_off, window.col_off) if cells else None
                counts = counts.add(labels, here)
                progress.advance()

            with ThreadPoolExecutor(workers, thread_name_prefix="lulc-smooth") as pool:
                for window in (block.window for block in blocks.blocks()):
                    data = _with_halo(src, window, params.halo)
                    pending.append((window, pool.submit(_smoothed, data, values, params)))
                    if len(pending) > 2 * workers:
                        write_first()
                while pending:
                    write_first()
        translate_to_cog(paths[CLASSES_NAME], staging / CLASSES_NAME, CLASSES_COG)
        translate_to_cog(paths[CONFIDENCE_NAME], staging / CONFIDENCE_NAME, CONFIDENCE_COG)
        translate_to_cog(paths[PROBABILITIES_NAME], staging / PROBABILITIES_NAME, CONFIDENCE_COG)
        for path in paths.values():
            path.unlink()
        write_class_sidecars(staging, run.classes)
        stats = map_stats(counts, run)
        stats["smoothing"] = {**_parameters(params, len(values)), "changed_pixels": changed}
        stats["smoothing"]["source"] = str(run.item.get("id", run.path.name))
        (staging / STATS_NAME).write_text(dump_json(stats), encoding="utf-8")
        files = [CLASSES_NAME, CONFIDENCE_NAME, PROBABILITIES_NAME, AUX_NAME, QML_NAME, STATS_NAME]
        item = _smooth_item(run, out, staging, params)
        (staging / ITEM_NAME).write_text(dump_json(item), encoding="utf-8")
        move_into_place(staging, out, [*files, ITEM_NAME])
    return SmoothResult(out, changed, item, stats)


Decided = tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]
"""Labels, top-class percent and every class's percent of a block."""


def _smoothed(data: npt.NDArray[np.uint8], values: list[int], params: BayesSmoothing) -> Decided:
    return decide(smooth_block(data, NODATA, params), values, NODATA)


def _with_halo(src: Any, window: Window, halo: int) -> npt.NDArray[np.uint8]:
    """Every band of ``window`` and ``halo`` pixels around it: the map's, or its mirror past its edges."""
    top, left = max(0, window.row_off - halo), max(0, window.col_off - halo)
    bottom = min(src.height, window.row_off + window.height + halo)
    right = min(src.width, window.col_off + window.width + halo)
    read = Window(left, top, right - left, bottom - top)
    data = np.stack([read_band(src, read, band) for band in range(1, src.count + 1)])
    before = (top - (window.row_off - halo), left - (window.col_off - halo))
    after = (
        window.row_off + window.height + halo - bottom,
        window.col_off + window.width + halo - right,
    )
    padded: npt.NDArray[np.uint8] = pad_to_halo(data, before, after)
    return padded


def _describe(classes_dst: Any, confidence_dst: Any, prob_dst: Any, run: RunFolder) -> None:
    classes_dst.write_colormap(1, run.classes.colormap())
    classes_dst.set_band_description(1, "land cover class")
    classes_dst.update_tags(1, **class_tags(run.classes))
    confidence_dst.set_band_description(1, "smoothed top-class probability (percent)")
    confidence_dst.update_tags(1, UNITS="percent")
    for band, cls in enumerate(run.classes.classes, start=1):
        prob_dst.set_band_description(band, cls.name)
        prob_dst.update_tags(band, UNITS="percent")


def _parameters(params: BayesSmoothing, n_classes: int) -> dict[str, Any]:
    return {
        "method": "bayes",
        "window": params.window,
        "neigh_fraction": params.neigh_fraction,
        "smoothness": [float(s) for s in params.smoothness_of(n_classes)],
    }


def _smooth_item(run: RunFolder, out: Path, staging: Path, params: BayesSmoothing) -> dict[str, Any]:
    source_id = str(run.item.get("id", run.path.name))
    classes = stac_classes(run.classes)
    parameters = _parameters(params, len(run.classes.classes))
    smoothness = ", ".join(f"{s:g}" for s in parameters["smoothness"])
    assets = class_map_assets(
        run,
        staging,
        classes_title="Land cover classes after Bayesian smoothing",
        stats_title="Pixels and hectares per class after smoothing",
    )
    assets["confidence"] = {
        "href": f"./{CONFIDENCE_NAME}",
        "type": COG_TYPE,
        "title": "Smoothed top-class probability (percent)",
        "roles": ["data", "quality"],
        "raster:bands": [band_fields(run, "percent")],
        **file_fields(staging / CONFIDENCE_NAME),
    }
    assets["probabilities"] = {
        "href": f"./{PROBABILITIES_NAME}",
        "type": COG_TYPE,
        "title": "Smoothed class probabilities (percent), one band per class in class-table order",
        "roles": ["data"],
        "raster:bands": [{**band_fields(run, "percent"), "name": c.name} for c in run.classes.classes],
        **file_fields(staging / PROBABILITIES_NAME),
    }
    return product_item(
        product="smooth",
        item_id=f"{source_id}-{params.name}",
        source=run,
        title=f"Land cover, Bayesian smoothing ({params.window} x {params.window} window)",
        lineage=(
            f"Item {source_id}'s class probabilities smoothed by lulc-stac as sits' Bayesian smoothing does "
            f"({params.window} x {params.window} window, the highest {params.neigh_fraction:g} of it, "
            f"smoothness {smoothness}), then labelled by their highest"
        ),
        properties={"classification:classes": classes, "lulc:smoothing": parameters},
        assets=assets,
        links=[derived_link(run, out, f"source map {source_id}")],
        extensions=[CLASSIFICATION, RASTER],
    )
