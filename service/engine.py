"""The classification engine: AOI + time window + model + source -> class/confidence COGs, stats, item.

Blocks are read and classified concurrently (a read pool prefetching ahead of an inference pool, both
``workers`` threads, one shared ONNX Runtime session) or as Dask tasks, and written strictly in block
order into temporary GeoTIFFs: memory is bounded by a few blocks and the output bytes never depend on
scheduling.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely.geometry

from lulc.areas import area_cells
from lulc.class_sets import map_holds, no_map
from lulc.contract import ModelContract
from lulc.datetimes import acquisition_window, rfc3339_utc
from lulc.errors import InputError, NoValidPixelsError
from lulc.grid import UNMAPPED, OutputGrid, lonlat_bbox
from lulc.pixels import image_datetime
from lulc.pixels.stac import StacBlockReader
from lulc.pixels.stacked import StackedBlockReader
from lulc.progress import NullProgress, Progress
from lulc.signals import held
from service.blocks import run_blocks_threaded
from service.output import (
    AOA_NAME,
    AUX_NAME,
    CLASSES_NAME,
    CONFIDENCE_NAME,
    PROBABILITIES_NAME,
    QML_NAME,
    SETS_NAME,
    STATS_NAME,
    BlockSink,
    ClassCounts,
    ItemInputs,
    build_item,
    build_stats,
    dump_json,
    finish_cogs,
    layer_specs,
    move_into_place,
    product_in,
    round_coords,
    staging_dir,
    withdraw_item,
)
from service.publish import ITEM_NAME
from service.readers import BlockReader, ReaderFactory, SourceRef
from service.request import ClassifyRequest
from service.runner import ModelRunner


@dataclass(frozen=True)
class ClassifyResult:
    """Paths of the finished outputs, and the item and stats they hold."""

    classes: Path
    confidence: Path | None
    item: Path
    stats: Path
    item_dict: dict[str, Any]
    stats_dict: dict[str, Any]
    probabilities: Path | None = None
    aoa: Path | None = None
    sets: Path | None = None
    clean: Path | None = None
    """The cleaned run folder (``<out>/clean``) when the request named a minimum mapping unit."""
    clean_stats: dict[str, Any] | None = None


CLEAN_DIR = "clean"
"""Sub-folder of a run holding its map cleaned to the request's minimum mapping unit (a run of its own)."""


def prepare_grid(request: ClassifyRequest, contract: ModelContract, source: ReaderFactory) -> OutputGrid:
    """The output grid of a request (AOI validated), without searching or reading anything."""
    return source.prepare_grid(request, contract)


@dataclass(frozen=True)
class OpenedReaders:
    """A request's grid and block reader, its items already searched: a ``ReaderFactory`` handing them on.

    The service searches before it accepts a job, so that no imagery (404) or too many items (413) answer
    the request instead of failing the job later; the job's engine then takes what the search found.
    """

    grid: OutputGrid
    reader: BlockReader

    def prepare_grid(self, request: ClassifyRequest, contract: ModelContract) -> OutputGrid:
        """The grid found when the readers were opened."""
        return self.grid

    def open(self, request: ClassifyRequest, grid: OutputGrid, contract: ModelContract) -> BlockReader:
        """The reader opened then."""
        return self.reader


def open_readers(
    request: ClassifyRequest, contract: ModelContract, source: ReaderFactory, out: Path | None = None
) -> OpenedReaders:
    """The request's grid (AOI validated), then its items searched and their bands and hosts checked.

    Args:
        request: AOI, time window, CRS, block size, minimum mapping unit.
        contract: the model's contract (bands, resolution, seasons).
        source: where the imagery comes from (``StacReaderFactory``, ``ImageReaderFactory``).
        out: the run's folder, whose ``clean`` sub-folder a minimum mapping unit will write (checked
            before the search); None: a fresh folder, not checked.

    Raises:
        InputError, NoItemsError, ContractError, LimitError: as ``classify``, before any pixel is read.
    """
    if isinstance(source, OpenedReaders):  # checked and searched when opened (for a fresh job folder)
        return source
    grid = source.prepare_grid(request, contract)
    if grid.aoi is not None and not any(grid.aoi_mask(block).any() for block in grid.blocks()):
        # before any search or read: it would end as 'every pixel masked (clouds...)'
        raise InputError(
            f"the AOI holds no pixel centre of the {grid.resolution[0]:g} m grid (it is narrower than a "
            "pixel): give an AOI at least a pixel wide"
        )
    check_mmu(request, grid, out)  # a bad unit fails before any block is read
    return OpenedReaders(grid, source.open(request, grid, contract))


def classify(
    request: ClassifyRequest,
    model: ModelRunner,
    reader_factory: ReaderFactory,
    out_dir: str | Path,
    *,
    workers: int = 2,
    progress: Progress | None = None,
    dask_scheduler: str | None = None,
) -> ClassifyResult:
    """Classify an AOI and write ``classes.tif``, ``confidence.tif``, ``stats.json`` and ``item.json``.

    Args:
        request: AOI, time window, CRS, block size, confidence.
        model: the loaded model (its session is shared by all threads).
        reader_factory: the source (``StacReaderFactory``, ``ImageReaderFactory``).
        out_dir: output folder; files appear in it only once complete.
        workers: threads reading and threads classifying blocks (single-process mode).
        progress: told the number of blocks, then advanced after each block is written.
        dask_scheduler: a dask.distributed scheduler address or ``local:N``; blocks become tasks.

    Raises:
        InputError, NoItemsError, ContractError, ReadError, NoValidPixelsError, LimitError: bad input,
            no data, a model the items cannot feed, unreadable rasters; nothing is left at the final paths.
    """
    contract = model.contract
    out = Path(out_dir)
    opened = open_readers(request, contract, reader_factory, out)
    grid, reader = opened.grid, opened.reader
    item_inputs = _item_inputs(request, model, grid, reader.sources(), out)  # a missing date fails now
    progress = progress or NullProgress()
    progress.start("classifying blocks", grid.n_blocks)
    blocks = list(grid.blocks())
    wanted = request_layers(request, contract)
    if request.sets and contract.class_sets is not None and "sets" not in wanted:
        progress.note(no_map(len(contract.classes.classes)))
    layers = layer_specs(wanted, contract.classes)
    with staging_dir(out) as staging:
        sink = BlockSink(staging, grid, contract.classes, request.confidence, layers)
        counts = ClassCounts.empty()
        cells = area_cells(grid.crs, grid.transform, grid.width, grid.height)  # None: one pixel area
        aoa_inside = aoi_pixels = 0
        try:
            if dask_scheduler:
                from service.dask_runner import run_blocks_dask

                results = run_blocks_dask(dask_scheduler, model, reader, grid, request.confidence, wanted)
            else:
                results = run_blocks_threaded(model, reader, grid, request.confidence, workers, wanted)
            with closing(results):
                for block_result in results:
                    sink.write(
                        blocks[block_result.index],
                        block_result.labels,
                        block_result.confidence,
                        block_result.layers,
                    )
                    block = blocks[block_result.index]
                    here = cells.sum_by_value(block_result.labels, block.row, block.col) if cells else None
                    counts = counts.add(block_result.labels, here)
                    aoa_inside += block_result.aoa_inside
                    aoi_pixels += block_result.aoi_pixels
                    progress.advance()
        finally:
            sink.close()
        if counts.valid == 0:
            raise NoValidPixelsError(_no_pixels_message(request, reader))
        classes_cog, confidence_cog, layer_cogs = finish_cogs(sink, staging, contract.classes)
        stats = build_stats(counts, contract.classes, grid, aoi_pixels + grid.aoi_pixels_beyond)
        stats["model"] = f"{contract.name}-{contract.version}"
        (staging / STATS_NAME).write_text(dump_json(stats), encoding="utf-8")
        files = {
            CLASSES_NAME: classes_cog,
            AUX_NAME: staging / AUX_NAME,
            QML_NAME: staging / QML_NAME,
            STATS_NAME: staging / STATS_NAME,
            **layer_cogs,
        }
        if confidence_cog is not None:
            files[CONFIDENCE_NAME] = confidence_cog
        # only where the items are: an AOI reaching past them claimed ground with no pixel (outputs review)
        coverage = reader.coverage() if isinstance(reader, StacBlockReader | StackedBlockReader) else None
        footprint = grid.footprint_wgs84(coverage)
        # the AOI's ground without imagery (past the items, or past an --image grid's edge): nodata there is a
        # gap, off the AOI it is not (tiler.areas)
        unmapped = grid.unmapped_wgs84(
            coverage if coverage is not None else shapely.geometry.box(*grid.bounds)
        )
        item = build_item(
            item_inputs,
            grid,
            contract.classes,
            files,
            shapely.geometry.mapping(footprint),
            lonlat_bbox(footprint),
            layers,
            {
                **_trust_properties(contract, wanted, aoa_inside, counts.valid),
                "lulc:mapped_fraction": stats["mapped_fraction"],
                UNMAPPED: round_coords(shapely.geometry.mapping(unmapped)) if unmapped is not None else None,
                **_mmu_properties(request),
            },
        )
        _describe_image_input(item, reader, contract)
        if request.mmu_ha is not None:
            item["links"].append(_clean_link(request))
        (staging / ITEM_NAME).write_text(dump_json(item), encoding="utf-8")
        clean_stats = (
            _clean_in_staging(request.mmu_ha, request, staging) if request.mmu_ha is not None else None
        )
        order = [
            CLASSES_NAME,
            AUX_NAME,
            QML_NAME,
            *([CONFIDENCE_NAME] if confidence_cog else []),
            *layer_cogs,
            STATS_NAME,
        ]
        with held():  # an interrupt waits for the renames: no earlier run left half replaced
            withdraw_item(out)  # no old item beside new files if the run dies while they are renamed
            final = move_into_place(staging, out, order)
            # A previous run's optional maps and cleaned map that this item no longer lists.
            for name in (CONFIDENCE_NAME, PROBABILITIES_NAME, AOA_NAME, SETS_NAME):
                if name not in final:
                    (out / name).unlink(missing_ok=True)
            _replace_clean(staging, out, request.mmu_ha is not None)
            final.update(move_into_place(staging, out, [ITEM_NAME]))
    return ClassifyResult(
        classes=final[CLASSES_NAME],
        confidence=final.get(CONFIDENCE_NAME),
        probabilities=final.get(PROBABILITIES_NAME),
        aoa=final.get(AOA_NAME),
        sets=final.get(SETS_NAME),
        item=final[ITEM_NAME],
        stats=final[STATS_NAME],
        item_dict=item,
        stats_dict=stats,
        clean=out / CLEAN_DIR if clean_stats is not None else None,
        clean_stats=clean_stats,
    )


def _describe_image_input(item: dict[str, Any], reader: BlockReader, contract: ModelContract) -> None:
    """Give the ``derived_from`` link of a local input image its band roles and reflectance scaling.

    ``lulc:bands`` maps each band the model reads (``red``, ``nir``, ...) to its 1-based index in the image,
    ``lulc:scale``/``lulc:offset`` turn its values into reflectance: what a viewer needs to draw the image in
    true or false colour under the map.
    """
    from lulc.pixels.image import ImageBlockReader

    if not isinstance(reader, ImageBlockReader):
        return
    source = reader.sources()[0]
    for link in item["links"]:
        if link.get("rel") == "derived_from" and link.get("title") == source.id:
            link["lulc:bands"] = dict(zip(contract.inputs.bands, reader.indexes, strict=True))
            link["lulc:scale"] = reader.scale
            link["lulc:offset"] = reader.offset


def check_mmu(request: ClassifyRequest, grid: OutputGrid, out: Path | None) -> None:
    """Refuse at once what ``lulc clean`` would refuse, and a ``clean`` folder in ``out`` not ours.

    The connectivity is checked without ``--mmu-ha`` too: a mistyped one was ignored, exit 0 (CLI review).
    """
    from service.clean import mmu_pixels
    from service.sieve import checked_connectivity

    checked_connectivity(request.mmu_connectivity, "--mmu-connectivity")
    if request.mmu_ha is None:
        return
    mmu_pixels(request.mmu_ha, grid.pixel_area_m2())
    if out is None:
        return
    target = out / CLEAN_DIR
    if target.exists() and not (_is_clean_product(target / ITEM_NAME) or _is_empty_dir(target)):
        raise InputError(
            f"{target} exists and is not a cleaned map of a run; the cleaned map goes there: "
            "choose another --out"
        )


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _mmu_properties(request: ClassifyRequest) -> dict[str, Any]:
    """The run item's record of the cleaning asked for (the cleaned run's own item has the details)."""
    if request.mmu_ha is None:
        return {}
    return {"lulc:mmu_ha": request.mmu_ha, "lulc:mmu_connectivity": request.mmu_connectivity}


def _clean_link(request: ClassifyRequest) -> dict[str, Any]:
    return {
        "rel": "related",
        "href": f"./{CLEAN_DIR}/{ITEM_NAME}",
        "type": "application/geo+json",
        "title": f"the map cleaned to a minimum mapping unit of {request.mmu_ha:g} ha",
    }


def _clean_in_staging(mmu_ha: float, request: ClassifyRequest, staging: Path) -> dict[str, Any]:
    """Clean the finished map in ``staging`` (a complete run folder by now) into ``staging/clean``."""
    from service.clean import clean_run
    from service.sieve import checked_connectivity

    result = clean_run(
        staging,
        staging / CLEAN_DIR,
        mmu_ha=mmu_ha,
        connectivity=checked_connectivity(request.mmu_connectivity, "--mmu-connectivity"),
        block_size=request.block_size,
    )
    return result.stats


def _replace_clean(staging: Path, out: Path, made: bool) -> None:
    """Put the new cleaned run in place of the old one; without one, remove a previous run's."""
    target = out / CLEAN_DIR
    old_item = target / ITEM_NAME
    if target.is_dir() and (_is_clean_product(old_item) or _is_empty_dir(target)):
        shutil.rmtree(target)
    if made:
        os.replace(staging / CLEAN_DIR, target)


def _is_clean_product(item_path: Path) -> bool:
    return item_path.parent.is_dir() and product_in(item_path.parent) == "clean"


def request_layers(request: ClassifyRequest, contract: ModelContract) -> frozenset[str]:
    """The optional maps a run writes: probabilities if asked; AOA and class sets when the model has them.

    ``sets.tif`` stores each set as a uint8 bitmask: a model of more than ``MAX_CLASSES`` classes gets no sets
    map (its contract may still hold the calibration, which the training report shows).
    """
    wanted = set()
    if request.probabilities:
        wanted.add("probabilities")
    if request.aoa and contract.applicability is not None:
        wanted.add("aoa")
    if request.sets and contract.class_sets is not None and map_holds(len(contract.classes.classes)):
        wanted.add("sets")
    return frozenset(wanted)


def _trust_properties(
    contract: ModelContract, wanted: frozenset[str], aoa_inside: int, valid: int
) -> dict[str, Any]:
    """Item properties saying where the map holds: the AOA threshold and share inside, the sets' coverage."""
    properties: dict[str, Any] = {}
    if "aoa" in wanted and contract.applicability is not None:
        properties["lulc:aoa_threshold"] = round(contract.applicability.threshold, 6)
        properties["lulc:aoa_fraction"] = round(aoa_inside / valid, 6) if valid else None
    if "sets" in wanted and contract.class_sets is not None:
        properties["lulc:sets_coverage"] = contract.class_sets.coverage
    return properties


def _no_pixels_message(request: ClassifyRequest, reader: BlockReader) -> str:
    sources = reader.sources()
    window = f" in {request.datetime}" if request.datetime else ""
    return (
        f"no valid (cloud-free, non-nodata) pixels in the AOI{window}: "
        f"{len(sources)} input(s) ({', '.join(s.id for s in sources[:5])}"
        f"{', ...' if len(sources) > 5 else ''}) are all masked there"
    )


def acquisition_range(request: ClassifyRequest, sources: list[SourceRef]) -> tuple[str, str]:
    """First and last acquisition of the inputs (ISO 8601, ``Z``), for the item's time fields.

    From the sources' own times (STAC items; a GeoTIFF's acquisition or ``DateTime`` tag), else the
    request's ``datetime``. An input with neither cannot be dated, and STAC requires a time (a null
    ``datetime`` needs a start and an end): that is an ``InputError`` asking for ``--datetime``, never a
    made-up date.
    """
    times = sorted(t for s in sources if (t := s.datetime or image_datetime(s.href)) is not None)
    if times:
        return rfc3339_utc(times[0]), rfc3339_utc(times[-1])
    names = ", ".join(s.id for s in sources[:3]) or "the input"
    if request.datetime:
        return acquisition_window(request.datetime, names)
    raise InputError(
        f"{names} records no acquisition date (no TIFF DateTime or ACQUISITIONDATETIME tag) and no "
        "datetime was given: pass --datetime with the acquisition date, e.g. --datetime 2024-06-01"
    )


def portable_href(href: str, out_dir: Path) -> str:
    """``href`` as the output item should carry it: URLs as they are, local paths relative to ``out_dir``."""
    if "://" in href and not href.startswith("file://"):
        return href
    # a relative path is the working directory's: as it was, the link was broken from the item (CLI review)
    path = Path(href.removeprefix("file://")).resolve()
    return Path(os.path.relpath(path, out_dir.resolve())).as_posix()


def _item_inputs(
    request: ClassifyRequest, model: ModelRunner, grid: OutputGrid, sources: list[SourceRef], out_dir: Path
) -> ItemInputs:
    contract = model.contract
    start, end = acquisition_range(request, sources)
    identity = json.dumps(
        {
            "contract": contract.to_json(),
            "crs": grid.crs,
            "transform": list(grid.transform)[:6],
            "shape": [grid.height, grid.width],
            "aoi": grid.aoi.wkb_hex if grid.aoi is not None else None,
            "sources": [s.id for s in sources],
            "datetime": request.datetime,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return ItemInputs(
        item_id=f"lulc-{contract.name}-{digest}",
        model_name=contract.name,
        model_version=contract.version,
        model_href=portable_href(model.item_href or model.origin, out_dir),
        sources=[(s.id, portable_href(s.href, out_dir) if s.href else None) for s in sources],
        start=start,
        end=end,
        datetime_window=request.datetime,
        software=software_versions(),
    )


def software_versions() -> dict[str, str]:
    """Versions of the software that shaped the output (``processing:software``)."""
    versions = {
        "GDAL": str(rasterio.__gdal_version__),
        "rasterio": rasterio.__version__,
        "numpy": np.__version__,
    }
    for dist in ("lulc-stac", "onnxruntime"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
