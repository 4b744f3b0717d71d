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
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import shapely.geometry

from service.classes import NODATA
from service.contract import ModelContract
from service.decision import top_probability
from service.errors import NoValidPixelsError
from service.features import compute_features
from service.grid import Block, OutputGrid
from service.output import (
    AUX_NAME,
    CLASSES_NAME,
    CONFIDENCE_NAME,
    STATS_NAME,
    BlockSink,
    ClassCounts,
    ItemInputs,
    build_item,
    build_stats,
    dump_json,
    finish_cogs,
    move_into_place,
    staging_dir,
)
from service.publish import ITEM_NAME
from service.readers import BlockReader, ReaderFactory, SourceRef
from service.runner import ModelRunner

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ClassifyRequest:
    """What to classify.

    Attributes:
        aoi: GeoJSON geometry / Feature / FeatureCollection in EPSG:4326; None = the whole image
            (``--image`` sources only).
        datetime: RFC 3339 instant or interval (STAC sources).
        crs: output CRS; default the AOI's UTM zone (or the image's CRS for an image source).
        block_size: block edge in pixels.
        confidence: also write the top-class probability COG.
    """

    aoi: dict[str, Any] | None
    datetime: str | None
    crs: str | None = None
    block_size: int = 512
    confidence: bool = True


@dataclass(frozen=True)
class ClassifyResult:
    """Paths of the finished outputs, and the item and stats they hold."""

    classes: Path
    confidence: Path | None
    item: Path
    stats: Path
    item_dict: dict[str, Any]
    stats_dict: dict[str, Any]


@dataclass(frozen=True)
class BlockResult:
    """The classified pixels of one block (255 where no valid input)."""

    index: int
    labels: npt.NDArray[np.uint8]
    confidence: npt.NDArray[np.uint8] | None


def classify_block(
    model: ModelRunner, reader: BlockReader, grid: OutputGrid, block: Block, confidence: bool
) -> BlockResult:
    """Read, featurise and classify one block."""
    return infer_block(model, grid, block, reader.read(block), confidence)


def infer_block(
    model: ModelRunner,
    grid: OutputGrid,
    block: Block,
    reflectance: npt.NDArray[np.float32],
    confidence: bool,
) -> BlockResult:
    """Classify the valid pixels (finite in every band, inside the AOI) of a block's reflectance."""
    contract = model.contract
    shape = (block.height, block.width)
    valid = np.isfinite(reflectance).all(axis=0) & grid.aoi_mask(block)
    labels = np.full(shape, NODATA, dtype=np.uint8)
    top = np.full(shape, NODATA, dtype=np.uint8) if confidence else None
    if valid.any():
        features = compute_features(reflectance[:, valid], contract.inputs.bands, contract.features.indices)
        prediction = model.predict(np.ascontiguousarray(features, dtype=np.float32))
        labels[valid] = prediction.labels
        if top is not None and prediction.probabilities is not None:
            top[valid] = top_probability(prediction.probabilities)
    return BlockResult(block.index, labels, top)


def prepare_grid(request: ClassifyRequest, contract: ModelContract, source: ReaderFactory) -> OutputGrid:
    """The output grid of a request (AOI validated), without searching or reading anything."""
    return source.prepare_grid(request, contract)


def run_blocks_threaded(
    model: ModelRunner, reader: BlockReader, grid: OutputGrid, confidence: bool, workers: int
) -> Generator[BlockResult, None, None]:
    """Block results in block order: ``workers`` threads read ahead while ``workers`` threads infer."""
    workers = max(1, workers)
    ahead = 2 * workers
    read_pool = ThreadPoolExecutor(workers, thread_name_prefix="lulc-read")
    infer_pool = ThreadPoolExecutor(workers, thread_name_prefix="lulc-infer")

    def submit(block: Block) -> Future[BlockResult]:
        read = read_pool.submit(reader.read, block)
        return infer_pool.submit(lambda: infer_block(model, grid, block, read.result(), confidence))

    yield from ordered(grid.blocks(), submit, ahead, on_close=lambda: _shutdown(read_pool, infer_pool))


def _shutdown(*pools: ThreadPoolExecutor) -> None:
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


def ordered(
    blocks: Iterable[Block],
    submit: Callable[[Block], Any],
    ahead: int,
    on_close: Callable[[], None],
) -> Generator[BlockResult, None, None]:
    """Submit blocks keeping at most ``ahead`` futures in flight; yield their results in submission order."""
    queue: deque[Any] = deque()
    pending = iter(blocks)
    try:
        for block in pending:
            queue.append(submit(block))
            if len(queue) >= ahead:
                break
        while queue:
            done: BlockResult = queue.popleft().result()
            next_block = next(pending, None)
            if next_block is not None:
                queue.append(submit(next_block))
            yield done
    finally:
        for future in queue:
            future.cancel()
        on_close()


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
        progress: called with ``(blocks_done, blocks_total)`` after each block is written.
        dask_scheduler: a dask.distributed scheduler address or ``local:N``; blocks become tasks.

    Raises:
        InputError, NoItemsError, ContractError, ReadError, NoValidPixelsError, LimitError: bad input,
            no data, a model the items cannot feed, unreadable rasters; nothing is left at the final paths.
    """
    contract = model.contract
    grid = reader_factory.prepare_grid(request, contract)
    reader = reader_factory.open(request, grid, contract)
    out = Path(out_dir)
    total = grid.n_blocks
    blocks = list(grid.blocks())
    with staging_dir(out) as staging:
        sink = BlockSink(staging, grid, contract.classes, request.confidence)
        counts = ClassCounts.empty()
        try:
            if dask_scheduler:
                from service.dask_runner import run_blocks_dask

                results = run_blocks_dask(dask_scheduler, model, reader, grid, request.confidence)
            else:
                results = run_blocks_threaded(model, reader, grid, request.confidence, workers)
            with closing(results):
                for done, block_result in enumerate(results, start=1):
                    sink.write(blocks[block_result.index], block_result.labels, block_result.confidence)
                    counts = counts.add(block_result.labels)
                    if progress is not None:
                        progress(done, total)
        finally:
            sink.close()
        if counts.valid == 0:
            raise NoValidPixelsError(_no_pixels_message(request, reader))
        classes_cog, confidence_cog = finish_cogs(sink, staging, contract.classes)
        stats = build_stats(counts, contract.classes, grid)
        stats["model"] = f"{contract.name}-{contract.version}"
        (staging / STATS_NAME).write_text(dump_json(stats), encoding="utf-8")
        files = {CLASSES_NAME: classes_cog, AUX_NAME: staging / AUX_NAME, STATS_NAME: staging / STATS_NAME}
        if confidence_cog is not None:
            files[CONFIDENCE_NAME] = confidence_cog
        footprint = grid.footprint_wgs84()
        item = build_item(
            _item_inputs(request, model, grid, reader.sources()),
            grid,
            contract.classes,
            files,
            shapely.geometry.mapping(footprint),
            footprint.bounds,
        )
        (staging / ITEM_NAME).write_text(dump_json(item), encoding="utf-8")
        order = [
            CLASSES_NAME,
            AUX_NAME,
            *([CONFIDENCE_NAME] if confidence_cog else []),
            STATS_NAME,
            ITEM_NAME,
        ]
        final = move_into_place(staging, out, order)
        if confidence_cog is None:
            # A previous run's confidence.tif, which item.json no longer lists.
            (out / CONFIDENCE_NAME).unlink(missing_ok=True)
    return ClassifyResult(
        classes=final[CLASSES_NAME],
        confidence=final.get(CONFIDENCE_NAME),
        item=final[ITEM_NAME],
        stats=final[STATS_NAME],
        item_dict=item,
        stats_dict=stats,
    )


def _no_pixels_message(request: ClassifyRequest, reader: BlockReader) -> str:
    sources = reader.sources()
    window = f" in {request.datetime}" if request.datetime else ""
    return (
        f"no valid (cloud-free, non-nodata) pixels in the AOI{window}: "
        f"{len(sources)} input(s) ({', '.join(s.id for s in sources[:5])}"
        f"{', ...' if len(sources) > 5 else ''}) are all masked there"
    )


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _item_inputs(
    request: ClassifyRequest, model: ModelRunner, grid: OutputGrid, sources: list[SourceRef]
) -> ItemInputs:
    contract = model.contract
    times = sorted(s.datetime for s in sources if s.datetime is not None)
    start = _iso(times[0]) if times else None
    end = _iso(times[-1]) if times else None
    if start is None and request.datetime:
        from service.sources import parse_datetime_interval

        interval = parse_datetime_interval(request.datetime)
        if interval is not None:
            start = _iso(interval[0]) if interval[0] else None
            end = _iso(interval[1]) if interval[1] else None
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
        model_href=model.item_href,
        model_origin=model.origin,
        sources=[(s.id, s.href) for s in sources],
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
