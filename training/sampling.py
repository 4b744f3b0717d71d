"""Pixel values under points, read block by block (each block holding points read once), drops reported."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lulc.pixels import REASONS, Status
from lulc.progress import NullProgress, Progress
from training.imagery import Imagery
from training.points import LabelledPoints, bounding_box_pixels, capped_note

Coordinates = npt.NDArray[np.float64]
POLYGON_BATCH_PIXELS = 1_000_000
"""Polygon pixel centres sampled at a time by default (``TrainingSettings.polygon_batch_pixels``)."""


@dataclass(frozen=True)
class DroppedPoint:
    """A point (or a polygon's pixel) that gave no sample, and why."""

    index: int
    """The row of its feature in the input file."""
    label: int
    x: float
    y: float
    reason: str


@dataclass(frozen=True)
class Samples:
    """Reflectance under the usable points, with their labels and positions on the imagery grid."""

    reflectance: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]
    index: npt.NDArray[np.int64]
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    dropped: list[DroppedPoint]
    blocks_read: int


def sample_points(imagery: Imagery, points: LabelledPoints, progress: Progress | None = None) -> Samples:
    """Sample every point's pixel; points outside the grid, on nodata or under cloud are dropped."""
    status, values, x, y, blocks = _read(imagery, points, progress or NullProgress())
    return _samples(points, status, values, x, y, blocks)


def sample_polygons(
    imagery: Imagery,
    points: LabelledPoints,
    max_pixels: int | None,
    seed: int,
    progress: Progress | None = None,
    batch_pixels: int = POLYGON_BATCH_PIXELS,
) -> tuple[LabelledPoints, Samples, list[str]]:
    """The samples of points and polygons: the points drawn, their samples, notes on the polygons.

    Every pixel centre of every polygon is read (``LabelledPoints.polygon_pixels``), then a polygon of more
    than ``max_pixels`` keeps that many, its valid pixels first (``LabelledPoints.draw_pixels``): drawn
    before validity was known, a polygon touching nodata, cloud or the image edge gave fewer samples than
    the cap although it had the valid pixels. The points drawn come back in the grid's CRS.

    The polygons go in parts of about ``batch_pixels`` pixel centres (``LabelledPoints.polygon_batches``),
    each read, drawn and cut to what it keeps before the next: the same samples as all at once, with at
    most one part's reflectance in memory (a block shared by two parts is read twice).
    """
    progress = progress or NullProgress()
    if not points.polygons:
        return points, sample_points(imagery, points, progress), []
    parts = points.polygon_batches(imagery.grid, batch_pixels)
    chosen_parts: list[LabelledPoints] = []
    sample_parts: list[Samples] = []
    notes: list[str] = []
    capped = 0
    for number, part in enumerate(parts, 1):
        stage = "sampling" if len(parts) == 1 else f"sampling, part {number} of {len(parts)}"
        streamed = _sample_lone_polygon(imagery, part, max_pixels, seed, batch_pixels, progress, stage)
        if streamed is not None:
            chosen_parts.append(streamed[0])
            sample_parts.append(streamed[1])
            capped += 1
            continue
        every, part_notes = part.polygon_pixels(imagery.grid, imagery.extent.name)
        status, values, x, y, blocks = _read(imagery, every, progress, stage)
        keep, part_capped = part.draw_pixels(every, status == Status.OK, max_pixels, seed)
        chosen_parts.append(every.take(keep))
        sample_parts.append(_samples(chosen_parts[-1], status[keep], values[keep], x[keep], y[keep], blocks))
        notes += part_notes
        capped += part_capped
    chosen = LabelledPoints.concatenate(chosen_parts)
    return chosen, _concatenate(sample_parts, chosen_parts), [*notes, *capped_note(capped, max_pixels)]


def _sample_lone_polygon(
    imagery: Imagery,
    part: LabelledPoints,
    max_pixels: int | None,
    seed: int,
    batch_pixels: int,
    progress: Progress,
    stage: str,
) -> tuple[LabelledPoints, Samples] | None:
    """A part that is one polygon larger than ``batch_pixels``, capped at ``max_pixels``, strip by strip.

    Its validity first, a byte a centre (each strip of ``batch_pixels`` centres read and let go), then the
    draw, then the reflectance of the drawn centres alone: the samples ``polygon_pixels`` and
    ``draw_pixels`` give, where those held every centre's coordinates and reflectance at once (1,056 MiB
    allocated for one polygon of 9 M pixels, 179 MiB so: ``bench/polygon-sampling-run/one-polygon``). None
    for any other part, or a polygon of at most ``max_pixels``
    centres (sampled whole as before).
    """
    shape = part.lone_polygon(imagery.grid)
    if not max_pixels or shape is None or bounding_box_pixels(shape.bounds, imagery.grid) <= batch_pixels:
        return None
    progress.start(stage, 2)
    status_parts, blocks = [], 0
    for strip in part.lone_polygon_strips(shape, imagery.grid, batch_pixels):
        status, _, _, _, read = _read(imagery, strip, NullProgress())
        status_parts.append(status)
        blocks += read
    valid = np.concatenate(status_parts) == Status.OK if status_parts else np.zeros(0, dtype=bool)
    if valid.size <= max_pixels:
        return None
    progress.advance()
    keep = part.draw_lone_polygon(valid, max_pixels, seed)
    picked, offset = [], 0
    for strip in part.lone_polygon_strips(shape, imagery.grid, batch_pixels):
        here = keep[(keep >= offset) & (keep < offset + len(strip))] - offset
        picked.append(strip.take(here))
        offset += len(strip)
    chosen = LabelledPoints.concatenate(picked)
    status, values, x, y, read = _read(imagery, chosen, NullProgress())
    progress.advance()
    return chosen, _samples(chosen, status, values, x, y, blocks + read)


def _concatenate(parts: list[Samples], points: list[LabelledPoints]) -> Samples:
    """The samples of ``polygon_batches``' parts as one (``index`` into their points, concatenated)."""
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0, *(len(p) for p in points[:-1])])
    return Samples(
        reflectance=np.concatenate([p.reflectance for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        index=np.concatenate([p.index + offset for p, offset in zip(parts, offsets, strict=True)]),
        x=np.concatenate([p.x for p in parts]),
        y=np.concatenate([p.y for p in parts]),
        dropped=[d for p in parts for d in p.dropped],
        blocks_read=sum(p.blocks_read for p in parts),
    )


def _read(
    imagery: Imagery, points: LabelledPoints, progress: Progress, stage: str = "sampling"
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32], Coordinates, Coordinates, int]:
    """``Status`` and reflectance under every point, its grid coordinates and the blocks read."""
    grid = imagery.grid
    x, y = points.xy_in(grid.rasterio_crs)
    rows, cols = grid.pixel_index(x, y)
    n = len(points)
    status = np.full(n, Status.OUTSIDE, dtype=np.uint8)
    values = np.full((n, len(imagery.bands) * imagery.composites), np.nan, dtype=np.float32)
    inside = np.flatnonzero((rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width))
    # each point's block in row-major order, grouped with numpy (a Python loop over the points took seconds
    # for a polygon layer's millions of pixel centres)
    index = (rows[inside] // grid.block_size) * grid.block_cols + cols[inside] // grid.block_size
    order = np.argsort(index, kind="stable")
    keys, starts = np.unique(index[order], return_index=True)
    groups = np.split(inside[order], starts[1:]) if inside.size else []
    by_block = {
        grid.block_at(*(int(v) for v in divmod(key, grid.block_cols))): members
        for key, members in zip(keys, groups, strict=True)
    }
    blocks = list(by_block)  # ascending index: row-major order
    progress.start(stage, len(blocks))
    for block, pixels in imagery.read_blocks(blocks):
        members = by_block[block]
        r = rows[members] - block.row
        c = cols[members] - block.col
        status[members] = pixels.status[r, c]
        values[members] = pixels.reflectance[:, r, c].T
        progress.advance()
    return status, values, x, y, len(blocks)


def _samples(
    points: LabelledPoints,
    status: npt.NDArray[np.uint8],
    values: npt.NDArray[np.float32],
    x: Coordinates,
    y: Coordinates,
    blocks_read: int,
) -> Samples:
    keep = status == Status.OK
    rows = points.groups if points.groups is not None else np.arange(len(points))
    dropped = [
        DroppedPoint(
            int(rows[i]),
            int(points.labels[i]),
            float(points.x[i]),
            float(points.y[i]),
            REASONS[Status(int(s))],
        )
        for i, s in enumerate(status)
        if s != Status.OK
    ]
    return Samples(
        reflectance=values[keep],
        labels=points.labels[keep],
        index=np.flatnonzero(keep).astype(np.int64),
        x=x[keep],
        y=y[keep],
        dropped=dropped,
        blocks_read=blocks_read,
    )


def sample_pixels(imagery: Imagery, n: int, seed: int, max_blocks: int = 8) -> npt.NDArray[np.float32]:
    """Reflectance ``(m, bands)`` of up to ``n`` random valid pixels from a few random blocks."""
    grid = imagery.grid
    if n <= 0:
        return np.empty((0, len(imagery.bands) * imagery.composites), dtype=np.float32)
    rng = np.random.default_rng(seed)
    all_blocks = list(grid.blocks())
    chosen = rng.choice(len(all_blocks), size=min(max_blocks, len(all_blocks)), replace=False)
    blocks = sorted((all_blocks[int(i)] for i in chosen), key=lambda b: b.index)
    pools = []
    for _, pixels in imagery.read_blocks(blocks):
        valid = pixels.status == Status.OK
        pools.append(pixels.reflectance[:, valid].T)
    pool = (
        np.concatenate(pools)
        if pools
        else np.empty((0, len(imagery.bands) * imagery.composites), dtype=np.float32)
    )
    if len(pool) > n:
        pool = pool[np.sort(rng.choice(len(pool), size=n, replace=False))]
    return np.ascontiguousarray(pool, dtype=np.float32)
