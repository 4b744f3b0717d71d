"""The block loop: read, featurise and classify one block; blocks in order over threads (or Dask tasks)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lulc.classes import NODATA
from lulc.contract import ModelContract
from lulc.decision import top_probability
from lulc.features import compute_composite_features
from lulc.grid import Block, OutputGrid
from lulc.pixels import BlockReader
from service.runner import ModelRunner


@dataclass(frozen=True)
class BlockResult:
    """The classified pixels of one block (255 where no valid input)."""

    index: int
    labels: npt.NDArray[np.uint8]
    confidence: npt.NDArray[np.uint8] | None
    probabilities: npt.NDArray[np.uint8] | None = None
    """Per class (class-table order), the probability in percent ``(n_classes, h, w)``; 255 where no label."""


def classify_block(
    model: ModelRunner,
    reader: BlockReader,
    grid: OutputGrid,
    block: Block,
    confidence: bool,
    probabilities: bool = False,
) -> BlockResult:
    """Read, featurise and classify one block."""
    return infer_block(model, grid, block, reader.read(block), confidence, probabilities=probabilities)


def infer_block(
    model: ModelRunner,
    grid: OutputGrid,
    block: Block,
    reflectance: npt.NDArray[np.float32],
    confidence: bool,
    *,
    probabilities: bool = False,
) -> BlockResult:
    """Classify the valid pixels (finite in every band, inside the AOI) of a block's reflectance."""
    shape = (block.height, block.width)
    valid = valid_pixels(grid, block, reflectance)
    labels = np.full(shape, NODATA, dtype=np.uint8)
    top = np.full(shape, NODATA, dtype=np.uint8) if confidence else None
    contract = model.contract
    percent = (
        np.full((len(contract.classes.classes), *shape), NODATA, dtype=np.uint8) if probabilities else None
    )
    if valid.any():
        prediction = model.predict(block_features(contract, reflectance, valid))
        labels[valid] = prediction.labels
        if top is not None and prediction.probabilities is not None:
            top[valid] = top_probability(prediction.probabilities)
        if percent is not None and prediction.probabilities is not None:
            percent[:, valid] = probability_percent(prediction.probabilities, contract)
    return BlockResult(block.index, labels, top, percent)


def probability_percent(
    probabilities: npt.NDArray[np.float32], contract: ModelContract
) -> npt.NDArray[np.uint8]:
    """Class probabilities ``(n, columns in class_order)`` as whole percents ``(n_classes, n)``, table order.

    Each value is rounded on its own, so a pixel's percents sum to 100 within half a unit per class.
    """
    order = contract.outputs.class_order
    columns = [order.index(c.value) for c in contract.classes.classes]
    scaled = np.rint(np.asarray(probabilities, dtype=np.float64)[:, columns] * 100.0)
    return np.clip(scaled, 0, 100).astype(np.uint8).T


def valid_pixels(
    grid: OutputGrid, block: Block, reflectance: npt.NDArray[np.float32]
) -> npt.NDArray[np.bool_]:
    """The pixels of a block that are classified: finite in every band and inside the AOI."""
    return np.isfinite(reflectance).all(axis=0) & grid.aoi_mask(block)


def block_features(
    contract: ModelContract, reflectance: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float32]:
    """The model's input features ``(n_valid, n_features)`` of a block's ``valid`` pixels, float32."""
    features = compute_composite_features(
        reflectance[:, valid], contract.inputs.bands, contract.features.indices, contract.inputs.n_composites
    )
    return np.ascontiguousarray(features, dtype=np.float32)


def run_blocks_threaded(
    model: ModelRunner,
    reader: BlockReader,
    grid: OutputGrid,
    confidence: bool,
    workers: int,
    probabilities: bool = False,
) -> Generator[BlockResult, None, None]:
    """Block results in block order: ``workers`` threads read ahead while ``workers`` threads infer."""
    workers = max(1, workers)
    ahead = 2 * workers
    read_pool = ThreadPoolExecutor(workers, thread_name_prefix="lulc-read")
    infer_pool = ThreadPoolExecutor(workers, thread_name_prefix="lulc-infer")

    def submit(block: Block) -> Future[BlockResult]:
        read = read_pool.submit(reader.read, block)
        return infer_pool.submit(
            lambda: infer_block(model, grid, block, read.result(), confidence, probabilities=probabilities)
        )

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
