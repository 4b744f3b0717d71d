"""``lulc clean``: a minimum mapping unit on a finished map, written as a new run folder.

Patches smaller than the unit take the class of the first patch at least that large found by following
largest neighbours (GDAL's sieve rule: with none on the way a patch stays as it is), exactly as
``rasterio.features.sieve`` with nodata masked would do on the whole raster, but block by block in
bounded memory (``service.sieve``). The output folder is a run like ``lulc classify`` writes (class COG,
confidence COG, ``stats.json``, ``item.json``), so every product command works on it too. The confidence of a
pixel whose class changed is unknown, so it becomes nodata there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio

from lulc.areas import AreaCells, area_cells
from lulc.classes import NODATA
from lulc.cog import translate_to_cog
from lulc.errors import InputError
from lulc.gdal_env import gdal_env
from lulc.grid import OutputGrid
from lulc.progress import NullProgress, Progress
from service.output import (
    AUX_NAME,
    CLASSES_COG,
    CLASSES_NAME,
    CONFIDENCE_COG,
    CONFIDENCE_NAME,
    QML_NAME,
    QML_TYPE,
    STATS_NAME,
    ClassCounts,
    class_tags,
    dump_json,
    file_fields,
    move_into_place,
    pam_asset,
    staging_dir,
    staging_profile,
    stats_document,
    write_class_sidecars,
)
from service.product_item import (
    CLASSIFICATION,
    COG_TYPE,
    RASTER,
    derived_link,
    product_item,
    stac_classes,
)
from service.publish import ITEM_NAME
from service.run_folder import RunFolder, open_run, read_band
from service.sieve import BlockSieve, Connectivity, checked_connectivity


@dataclass(frozen=True)
class CleanResult:
    """The cleaned run's files, what was removed, and its item and stats."""

    out_dir: Path
    threshold_pixels: int
    changed_pixels: int
    item: dict[str, Any]
    stats: dict[str, Any]


def clean_summary(out_dir: object, hectares: float, threshold: int, changed: int) -> str:
    """The line the CLIs print for a cleaned map; when nothing changed, why.

    GDAL's sieve merges a small patch only into a neighbour of at least the unit: a unit larger than every
    patch changed nothing and said only "0 pixels changed" (products review).
    """
    line = f"wrote {out_dir}: patches under {hectares:g} ha ({threshold} pixels) removed, "
    line += f"{changed} pixels changed"
    if changed == 0:
        line += f" (no patch under {threshold} pixels borders one of {threshold} or more to merge into)"
    return line


MAX_MMU_PIXELS = 2**31 - 1
"""GDAL's sieve counts patch sizes in a 32-bit int: a larger unit cannot be a threshold."""


def mmu_pixels(mmu_ha: float, pixel_area_m2: float) -> int:
    """The sieve threshold: the fewest whole pixels whose area reaches ``mmu_ha`` hectares.

    A patch is removed when its area is below the unit, i.e. when it has fewer pixels than this.
    """
    if not math.isfinite(mmu_ha) or mmu_ha < 0:
        raise InputError(f"--mmu-ha must be a non-negative number of hectares, got {mmu_ha}")
    pixels = mmu_ha * 10_000.0 / pixel_area_m2
    if pixels > MAX_MMU_PIXELS:
        raise InputError(
            f"--mmu-ha {mmu_ha:g} is {pixels:.3g} pixels of {pixel_area_m2:g} m², more than any map holds "
            f"(at most {MAX_MMU_PIXELS:,} pixels)"
        )
    return max(1, math.ceil(pixels - 1e-9))


def map_stats(counts: ClassCounts, run: RunFolder) -> dict[str, Any]:
    """``stats.json`` of a map derived from ``run`` (same layout as ``lulc classify`` writes)."""
    crs = run.stats.get("crs", run.grid.crs.to_string())
    stats = stats_document(counts, run.classes, run.pixel_area_m2, crs, run.grid.height, run.grid.width)
    if run.model:
        stats["model"] = run.model
    return stats


def derived_run(
    run_path: str | Path, out_dir: str | Path, block_size: int, what: str
) -> tuple[RunFolder, Path, OutputGrid, AreaCells | None]:
    """The run a map product is made from, its output folder, its grid cut into blocks, its pixel areas.

    Raises:
        InputError: a block size under 16, a run folder that cannot be read, ``out_dir`` the run's own.
    """
    if block_size < 16:
        raise InputError(f"--block-size must be at least 16 pixels, got {block_size}")
    run = open_run(run_path)
    out = Path(out_dir)
    check_not_source(run, out, what)
    grid = run.grid
    blocks = OutputGrid(grid.crs.to_string(), grid.transform, grid.width, grid.height, block_size)
    return run, out, blocks, area_cells(grid.crs.to_string(), grid.transform, grid.width, grid.height)


def check_not_source(run: RunFolder, out_dir: Path, what: str) -> None:
    """Refuse an ``--out`` that is the run folder a product is made from (``what``: "the cleaned map")."""
    if out_dir.resolve() == run.path.resolve():
        raise InputError(f"--out {out_dir} is the input run folder; write {what} to another folder")


def clean_run(
    run_path: str | Path,
    out_dir: str | Path,
    *,
    mmu_ha: float,
    connectivity: Connectivity = 4,
    block_size: int = 512,
    progress: Progress | None = None,
) -> CleanResult:
    """Remove patches smaller than ``mmu_ha`` hectares from a run's map; write the cleaned run to ``out_dir``.

    Args:
        run_path: a ``lulc classify`` output folder, or its ``classes.tif``.
        out_dir: the new run folder; its files appear only once complete (``item.json`` last).
        mmu_ha: the minimum mapping unit in hectares (true ground area, as ``stats.json`` measures it).
        connectivity: 4 (edges only) or 8 (corners too) for both patches and neighbours.
        block_size: block edge in pixels; memory is bounded by a few blocks.
        progress: told the number of blocks, advanced as each cleaned block is written.

    Raises:
        InputError: the run folder is not readable, or an option is out of range.
    """
    connectivity = checked_connectivity(connectivity)
    run, out, blocks, cells = derived_run(run_path, out_dir, block_size, "the cleaned map")
    threshold = mmu_pixels(mmu_ha, run.pixel_area_m2)
    progress = progress or NullProgress()
    grid = run.grid
    counts = ClassCounts.empty()
    changed = 0
    with staging_dir(out) as staging, gdal_env():
        tmp_classes = staging / "classes.tmp.tif"
        tmp_confidence = staging / "confidence.tmp.tif"
        with (
            rasterio.open(run.classes_path) as src,
            rasterio.open(
                tmp_classes, "w", **staging_profile(grid.crs, grid.transform, grid.width, grid.height)
            ) as dst,
        ):
            dst.write_colormap(1, run.classes.colormap())
            dst.set_band_description(1, "land cover class")
            dst.update_tags(1, **class_tags(run.classes))
            conf_src = rasterio.open(run.confidence_path) if run.confidence_path else None
            conf_dst = (
                rasterio.open(
                    tmp_confidence, "w", **staging_profile(grid.crs, grid.transform, grid.width, grid.height)
                )
                if conf_src
                else None
            )
            try:
                if conf_dst is not None:
                    conf_dst.set_band_description(1, "top-class probability (percent); nodata where cleaned")
                    conf_dst.update_tags(1, UNITS="percent")
                sieve = BlockSieve(
                    lambda window: read_band(src, window),
                    grid.height,
                    grid.width,
                    threshold=threshold,
                    connectivity=connectivity,
                    nodata=run.nodata,
                    block_size=block_size,
                )
                progress.start("cleaning blocks", blocks.n_blocks)
                for window, before, after in sieve.blocks():
                    dst.write(after, 1, window=window)
                    moved = before != after
                    changed += int(moved.sum())
                    here = cells.sum_by_value(after, window.row_off, window.col_off) if cells else None
                    counts = counts.add(after, here)
                    if conf_src is not None and conf_dst is not None:
                        confidence = read_band(conf_src, window)
                        confidence[moved] = NODATA
                        conf_dst.write(confidence, 1, window=window)
                    progress.advance()
            finally:
                if conf_src is not None:
                    conf_src.close()
                if conf_dst is not None:
                    conf_dst.close()
        translate_to_cog(tmp_classes, staging / CLASSES_NAME, CLASSES_COG)
        tmp_classes.unlink()
        files = [CLASSES_NAME, AUX_NAME, QML_NAME]
        if run.confidence_path is not None:
            translate_to_cog(tmp_confidence, staging / CONFIDENCE_NAME, CONFIDENCE_COG)
            tmp_confidence.unlink()
            files.append(CONFIDENCE_NAME)
        write_class_sidecars(staging, run.classes)
        stats = map_stats(counts, run)
        stats["mmu"] = {
            "hectares": mmu_ha,
            "threshold_pixels": threshold,
            "connectivity": connectivity,
            "changed_pixels": changed,
            "source": str(run.item.get("id", run.path.name)),
        }
        (staging / STATS_NAME).write_text(dump_json(stats), encoding="utf-8")
        files.append(STATS_NAME)
        item = _clean_item(
            run, out, staging, files, mmu_ha=mmu_ha, threshold=threshold, connectivity=connectivity
        )
        (staging / ITEM_NAME).write_text(dump_json(item), encoding="utf-8")
        move_into_place(staging, out, [*files, ITEM_NAME])
        if run.confidence_path is None:
            (out / CONFIDENCE_NAME).unlink(missing_ok=True)
    return CleanResult(out, threshold, changed, item, stats)


def class_map_assets(
    run: RunFolder, staging: Path, *, classes_title: str, stats_title: str
) -> dict[str, dict[str, Any]]:
    """The assets of every map made from ``run``: its classes COG, their GDAL and QGIS sidecars, its stats."""
    return {
        "classes": {
            "href": f"./{CLASSES_NAME}",
            "type": COG_TYPE,
            "title": classes_title,
            "roles": ["data"],
            "classification:classes": stac_classes(run.classes),
            "raster:bands": [band_fields(run)],
            **file_fields(staging / CLASSES_NAME),
        },
        "classes_aux": pam_asset(AUX_NAME, CLASSES_NAME),
        "classes_style": {
            "href": f"./{QML_NAME}",
            "type": QML_TYPE,
            "title": "QGIS layer style of classes.tif: the class names and colours as its legend",
            "roles": ["metadata", "style"],
            **file_fields(staging / QML_NAME),
        },
        "stats": {
            "href": f"./{STATS_NAME}",
            "type": "application/json",
            "title": stats_title,
            "roles": ["metadata"],
            **file_fields(staging / STATS_NAME),
        },
    }


def band_fields(run: RunFolder, unit: str | None = None) -> dict[str, Any]:
    """The ``raster:bands`` entry of a uint8 band of a map product on ``run``'s grid."""
    band: dict[str, Any] = {
        "data_type": "uint8",
        "nodata": NODATA,
        "spatial_resolution": abs(run.grid.transform.a),
        "sampling": "area",
    }
    if unit:
        band["unit"] = unit
    return band


def _clean_item(
    run: RunFolder,
    out: Path,
    staging: Path,
    files: list[str],
    *,
    mmu_ha: float,
    threshold: int,
    connectivity: int,
) -> dict[str, Any]:
    source_id = str(run.item.get("id", run.path.name))
    classes = stac_classes(run.classes)
    assets = class_map_assets(
        run,
        staging,
        classes_title=f"Land cover classes, minimum mapping unit {mmu_ha:g} ha",
        stats_title="Pixels and hectares per class after cleaning",
    )
    if CONFIDENCE_NAME in files:
        assets["confidence"] = {
            "href": f"./{CONFIDENCE_NAME}",
            "type": COG_TYPE,
            "title": "Top-class probability (percent) of the source map; nodata where the class was changed",
            "roles": ["data", "quality"],
            "raster:bands": [band_fields(run, "percent")],
            **file_fields(staging / CONFIDENCE_NAME),
        }
    return product_item(
        product="clean",
        item_id=f"{source_id}-mmu{threshold}px{connectivity}",
        source=run,
        title=f"Land cover, minimum mapping unit {mmu_ha:g} ha ({threshold} pixels)",
        lineage=(
            f"Item {source_id} cleaned by lulc-stac: patches ({connectivity}-connected) under {mmu_ha:g} ha "
            f"({threshold} pixels) merged into their largest neighbours, the rule of GDAL's sieve filter, "
            "computed block by block"
        ),
        properties={
            "classification:classes": classes,
            "lulc:mmu_ha": mmu_ha,
            "lulc:mmu_pixels": threshold,
            "lulc:connectivity": connectivity,
        },
        assets=assets,
        links=[derived_link(run, out, f"source map {source_id}")],
        extensions=[CLASSIFICATION, RASTER],
    )
