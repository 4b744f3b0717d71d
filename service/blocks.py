"""The block loop: read, featurise and classify one block; blocks in order over threads (or Dask tasks)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from lulc import applicability
from lulc.class_sets import set_bands_of
from lulc.classes import NODATA
from lulc.contract import ModelContract
from lulc.decision import percent, top_probability
from lulc.errors import ContractError
from lulc.features import compute_composite_features
from lulc.grid import Block, OutputGrid
from lulc.pixels import BlockReader
from service.runner import ModelRunner


@dataclass(frozen=True)
class BlockResult:
    """The classified pixels of one block (255 where no valid input), and the optional layers asked for."""

    index: int
    labels: npt.NDArray[np.uint8]
    confidence: npt.NDArray[np.uint8] | None
    layers: dict[str, npt.NDArray[np.uint8]] = field(default_factory=dict)
    """Per layer key (``probabilities``, ``aoa``, ``sets``): bands ``(n_bands, h, w)``, 255 where no label."""
    aoa_inside: int = 0
    """Valid pixels inside the area of applicability (DI <= the threshold), when ``aoa`` was asked."""
    aoi_pixels: int = 0
    """Pixels of the block whose centre is in the AOI (every pixel without one): mapped or not."""


LAYERS = ("probabilities", "aoa", "sets")
"""Optional per-pixel layers: class probabilities, the dissimilarity index, the conformal class sets."""


def classify_block(
    model: ModelRunner,
    reader: BlockReader,
    grid: OutputGrid,
    block: Block,
    confidence: bool,
    layers: frozenset[str] = frozenset(),
) -> BlockResult:
    """Read, featurise and classify one block."""
    reflectance, in_aoi = read_in_aoi(reader, grid, block)
    return infer_block(model, grid, block, reflectance, confidence, layers=layers, in_aoi=in_aoi)


def read_in_aoi(
    reader: BlockReader, grid: OutputGrid, block: Block
) -> tuple[npt.NDArray[np.float32] | None, npt.NDArray[np.bool_]]:
    """``reader.read(block)`` (None, nothing read, where no pixel centre is in the AOI) and the AOI mask.

    The mask is the block's ``grid.aoi_mask``, handed to ``infer_block`` so that it is computed once per
    block (twice, it cost ~14 ms more for a 512 px block an AOI's edge crosses; notes). AOI review: the
    blocks between two fields at the ends of a tile, or inside a hole, were fetched from every item (SCL and
    each band) and then masked.
    """
    in_aoi = grid.aoi_mask(block)
    if grid.aoi is not None and not in_aoi.any():
        return None, in_aoi
    return reader.read(block), in_aoi


def infer_block(
    model: ModelRunner,
    grid: OutputGrid,
    block: Block,
    reflectance: npt.NDArray[np.float32] | None,
    confidence: bool,
    *,
    layers: frozenset[str] = frozenset(),
    in_aoi: npt.NDArray[np.bool_] | None = None,
) -> BlockResult:
    """Classify the valid pixels (finite in every band, inside the AOI) of a block's reflectance.

    ``reflectance`` None: the block holds no pixel of the AOI (``read_in_aoi``), every pixel is nodata.
    ``in_aoi``: the block's ``grid.aoi_mask`` where already computed.
    """
    shape = (block.height, block.width)
    if reflectance is None:
        in_aoi = np.zeros(shape, dtype=bool)
    elif in_aoi is None:
        in_aoi = grid.aoi_mask(block)
    valid = in_aoi if reflectance is None else valid_pixels(grid, block, reflectance, in_aoi)
    labels = np.full(shape, NODATA, dtype=np.uint8)
    top = np.full(shape, NODATA, dtype=np.uint8) if confidence else None
    contract = model.contract
    out = {
        key: np.full((layer_bands(key, contract), *shape), NODATA, dtype=np.uint8) for key in sorted(layers)
    }
    inside = 0
    if reflectance is not None and valid.any():
        prediction = model.predict(
            block_features(contract, reflectance, valid), dissimilarity="aoa" in layers
        )
        place = _placer(valid)
        place(labels, prediction.labels)
        probabilities = prediction.probabilities
        if top is not None and probabilities is not None:
            place(top, top_probability(probabilities))
        if "probabilities" in out and probabilities is not None:
            place(out["probabilities"], probability_percent(probabilities, contract))
        if "sets" in out and probabilities is not None:
            place(out["sets"], class_set_bands(probabilities, contract))
        if "aoa" in out and prediction.dissimilarity is not None and contract.applicability is not None:
            di = prediction.dissimilarity
            threshold = contract.applicability.threshold
            place(out["aoa"], applicability.encode(di, threshold))
            inside = int(np.count_nonzero(di <= threshold))
    return BlockResult(block.index, labels, top, out, inside, int(np.count_nonzero(in_aoi)))


def _placer(
    valid: npt.NDArray[np.bool_],
) -> Callable[[npt.NDArray[np.uint8], npt.NDArray[np.uint8]], None]:
    """A function putting per-valid-pixel values (last axis) at the ``valid`` pixels of a block's bands.

    Where every pixel is valid (most blocks) it is a reshape and a copy, not a boolean scatter.
    """
    if valid.all():

        def fill(target: npt.NDArray[np.uint8], values: npt.NDArray[np.uint8]) -> None:
            target[...] = values.reshape(target.shape)

        return fill

    flat = valid.ravel()

    def scatter(target: npt.NDArray[np.uint8], values: npt.NDArray[np.uint8]) -> None:
        # band by band with a 1-D mask: numpy's N-D boolean scatter is several times slower
        bands = target.reshape(-1, flat.size)
        rows = values.reshape(bands.shape[0], -1)
        for band in range(bands.shape[0]):
            bands[band][flat] = rows[band]

    return scatter


def layer_bands(key: str, contract: ModelContract) -> int:
    """Bands of an optional layer: one per class, one DI band, or the set's size and bitmask."""
    return {"probabilities": len(contract.classes.classes), "aoa": 1, "sets": 2}[key]


def _table_columns(contract: ModelContract) -> list[int]:
    """The probability column of each class of the class table, in table order."""
    order = contract.outputs.class_order
    return [order.index(c.value) for c in contract.classes.classes]


def probability_percent(
    probabilities: npt.NDArray[np.float32], contract: ModelContract
) -> npt.NDArray[np.uint8]:
    """Class probabilities ``(n, columns in class_order)`` as whole percents ``(n_classes, n)``, table order.

    Each value is rounded on its own, so a pixel's percents sum to 100 within half a unit per class.
    """
    return percent(np.asarray(probabilities)[:, _table_columns(contract)]).T


def class_set_bands(probabilities: npt.NDArray[np.float32], contract: ModelContract) -> npt.NDArray[np.uint8]:
    """The conformal set of each pixel ``(2, n)``: how many classes, and the bitmask (bit i = table class i).

    A class is in the set when its probability reaches the contract's calibrated minimum for that class
    (one minimum for all classes in contracts calibrated before class-conditional sets). A set may be empty.
    """
    if contract.class_sets is None:
        raise ContractError(f"model {contract.name!r} has no calibrated class sets")
    columns = _table_columns(contract)
    return set_bands_of(probabilities, contract.class_sets.minimum_per_class(len(columns)), columns)


def valid_pixels(
    grid: OutputGrid,
    block: Block,
    reflectance: npt.NDArray[np.float32],
    in_aoi: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.bool_]:
    """The pixels of a block that are classified: finite in every band and inside the AOI.

    ``in_aoi``: the block's ``grid.aoi_mask``, where already computed.
    """
    return np.isfinite(reflectance).all(axis=0) & (grid.aoi_mask(block) if in_aoi is None else in_aoi)


def block_features(
    contract: ModelContract, reflectance: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float32]:
    """The model's input features ``(n_valid, n_features)`` of a block's ``valid`` pixels, float32."""
    pixels = reflectance.reshape(reflectance.shape[0], -1)
    if not valid.all():  # np.compress on the flat pixels: 4x faster than N-D boolean indexing, same order
        pixels = np.compress(valid.ravel(), pixels, axis=1)
    features = compute_composite_features(
        pixels, contract.inputs.bands, contract.features.indices, contract.inputs.n_composites
    )
    return np.ascontiguousarray(features, dtype=np.float32)


def run_blocks_threaded(
    model: ModelRunner,
    reader: BlockReader,
    grid: OutputGrid,
    confidence: bool,
    workers: int,
    layers: frozenset[str] = frozenset(),
) -> Generator[BlockResult, None, None]:
    """Block results in block order: ``workers`` threads read ahead while ``workers`` threads infer."""
    workers = max(1, workers)
    ahead = 2 * workers
    read_pool = ThreadPoolExecutor(workers, thread_name_prefix="lulc-read")
    infer_pool = ThreadPoolExecutor(workers, thread_name_prefix="lulc-infer")

    def submit(block: Block) -> Future[BlockResult]:
        read = read_pool.submit(read_in_aoi, reader, grid, block)

        def infer() -> BlockResult:
            reflectance, in_aoi = read.result()
            return infer_block(model, grid, block, reflectance, confidence, layers=layers, in_aoi=in_aoi)

        return infer_pool.submit(infer)

    yield from ordered(grid.blocks(), submit, ahead, on_close=lambda: _shutdown(read_pool, infer_pool))


def _shutdown(*pools: ThreadPoolExecutor) -> None:
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


def ordered(
    blocks: Iterable[Block],
    submit: Callable[[Block], Any],
    ahead: int | Callable[[], int],
    on_close: Callable[[], None],
) -> Generator[BlockResult, None, None]:
    """Submit blocks keeping at most ``ahead`` futures in flight; yield their results in submission order.

    ``ahead`` may be a function, asked at every refill (a cluster whose workers come and go).
    """
    queue: deque[Any] = deque()
    pending = iter(blocks)
    limit = ahead if callable(ahead) else (lambda: ahead)

    def refill() -> None:
        wanted = max(1, limit())
        while len(queue) < wanted and (block := next(pending, None)) is not None:
            queue.append(submit(block))

    try:
        refill()
        while queue:
            done: BlockResult = queue.popleft().result()
            refill()
            yield done
    finally:
        for future in queue:
            future.cancel()
        on_close()
