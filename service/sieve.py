"""GDAL's sieve filter (``rasterio.features.sieve``), block by block: the same pixels in bounded memory.

What ``GDALSieveFilter`` does (GDAL 3.x ``alg/gdalsievefilter.cpp``), and so what this module reproduces:

1. Patches are connected pixels of one value (4- or 8-connected). Masked pixels (here: nodata) belong to no
   patch, are never changed and are nobody's neighbour.
2. Every patch learns its *biggest neighbour*: the touching patch with the most pixels (diagonal contacts
   count only with 8-connectivity). On a tie the neighbour met first wins, GDAL's meeting order being the
   raster scan of the later pixel of each touching pair, and per pixel: above, above-left, above-right, left.
3. A patch smaller than the threshold follows biggest neighbours (its own, then that one's, ...) until it
   reaches a patch at least as large as the threshold, and takes that patch's value. A chain that loops
   back, or a small patch without neighbours, leaves the patch unchanged. This is one decision from the
   original sizes, not an iterative merge, so it does not depend on any processing order.

The block-wise equivalent makes three passes over blocks in row order, as GDAL makes three over lines:

* pass 1 labels each block's patches (``scipy.ndimage.label``), joins the patches that touch the block's
  edges across blocks with a union-find over *edge patches* only, and sums their sizes;
* pass 2 relabels each block, finds every patch's biggest neighbour from the touching pairs in the block
  (plus the row above and the column to the left), resolves chains that stay among the block's interior
  patches, and keeps, for each small edge patch, its best candidate over all blocks;
* then the chains between edge patches are resolved; pass 3 relabels each block and writes the new values.

Memory: one block and its one-pixel halo, a row of ids the width of the raster, and a few numbers per edge
patch (a patch touching a block edge); interior patches are never held beyond their block. The number of
edge patches is at most the number of pixels on block edges (about ``2 * pixels / block``), and far fewer
on any real map. GDAL itself holds a few numbers per patch of the whole raster.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, cast

import numpy as np
import numpy.typing as npt
from rasterio.windows import Window

from lulc.errors import InputError

Connectivity = Literal[4, 8]


def checked_connectivity(value: int, option: str = "--connectivity") -> Connectivity:
    """``value`` as a patch connectivity (4 or 8), or an ``InputError`` naming ``option``."""
    if value not in (4, 8):
        raise InputError(f"{option} must be 4 or 8, got {value}")
    return cast(Connectivity, value)


# GDAL's order of neighbour checks at each pixel: above, above-left, above-right, left.
_DIRECTIONS = ((-1, 0), (-1, -1), (-1, 1), (0, -1))
_KEEP = -1

IntArray = npt.NDArray[np.int64]
ByteArray = npt.NDArray[np.uint8]


def label_patches(
    values: ByteArray, valid: npt.NDArray[np.bool_], connectivity: Connectivity
) -> tuple[npt.NDArray[np.int32], int]:
    """Label the connected same-value patches of a block (0 where not valid); returns labels and count."""
    # SciPy here, not at the top: `lulc classify` imports this module to check --mmu-connectivity, and
    # importing scipy.ndimage cost every run ~0.2 CPU s of start-up whether it cleans the map or not.
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(2, 2 if connectivity == 8 else 1)
    labels = np.zeros(values.shape, dtype=np.int32)
    count = 0
    for value in np.unique(values[valid]):
        lab, n = ndimage.label((values == value) & valid, structure=structure)
        inside = lab > 0
        labels[inside] = lab[inside] + count
        count += int(n)
    return labels, count


@dataclass(frozen=True)
class GridBlock:
    """One block of the map in pixel offsets; ``index`` is its position in row order."""

    index: int
    row: int
    col: int
    height: int
    width: int


def grid_blocks(height: int, width: int, size: int) -> Iterator[GridBlock]:
    """The blocks of a ``height`` x ``width`` map, row by row."""
    index = 0
    for row in range(0, height, size):
        for col in range(0, width, size):
            yield GridBlock(index, row, col, min(size, height - row), min(size, width - col))
            index += 1


@dataclass
class EdgePatches:
    """Union-find over patches touching block edges, with their total sizes, values and last blocks."""

    parent: dict[int, int] = field(default_factory=dict)
    size: dict[int, int] = field(default_factory=dict)
    value: dict[int, int] = field(default_factory=dict)
    last_block: dict[int, int] = field(default_factory=dict)

    def add(self, gid: int, size: int, value: int, block: int) -> None:
        """A new patch fragment."""
        self.parent[gid] = gid
        self.size[gid] = size
        self.value[gid] = value
        self.last_block[gid] = block

    def find(self, gid: int) -> int:
        """The root id of a fragment's patch."""
        root = gid
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[gid] != root:
            self.parent[gid], gid = root, self.parent[gid]
        return root

    def union(self, a: int, b: int) -> None:
        """Join two fragments of one patch."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size.pop(rb)
        self.value.pop(rb)
        self.last_block[ra] = max(self.last_block[ra], self.last_block.pop(rb))


@dataclass
class _Halo:
    """Channels (id, value, size) of the row above the current block row and the column left of the block.

    Ids are -1 where there is no pixel (outside the raster, not yet processed, or nodata).
    """

    width: int
    above: IntArray
    below: IntArray
    left: IntArray

    @classmethod
    def empty(cls, width: int) -> _Halo:
        return cls(width, _none((3, width)), _none((3, width)), _none((3, 0)))

    def extended(self, block: GridBlock, core: IntArray) -> IntArray:
        """The block's channels with a one-pixel halo: rows ``row-1 ..``, columns ``col-1 .. col+width``."""
        h, w = block.height, block.width
        ext = _none((3, h + 1, w + 2))
        if block.col == 0:
            self.left = _none((3, h))
        if block.row > 0:
            lo, hi = max(block.col - 1, 0), min(block.col + w + 1, self.width)
            offset = lo - (block.col - 1)
            ext[:, 0, offset : offset + hi - lo] = self.above[:, lo:hi]
        ext[:, 1:, 0] = self.left
        ext[:, 1:, 1 : w + 1] = core
        return ext

    def advance(self, block: GridBlock, core: IntArray, last_in_row: bool) -> None:
        """Remember the block's last row and last column for the blocks after it."""
        self.below[:, block.col : block.col + block.width] = core[:, -1]
        self.left = core[:, :, -1].copy()
        if last_in_row:
            self.above, self.below = self.below, self.above


def _none(shape: tuple[int, ...]) -> IntArray:
    array = np.zeros(shape, dtype=np.int64)
    array[0] = -1
    return array


@dataclass(frozen=True)
class _Pairs:
    """Touching pixel pairs of an extended block with at least one pixel in the block itself.

    ``cur`` is the later pixel in scan order, ``nb`` its neighbour; each channel array is (3, n).
    """

    cur: IntArray
    nb: IntArray
    key: IntArray


def _pairs(block: GridBlock, ext: IntArray, connectivity: Connectivity, width: int, *, same: bool) -> _Pairs:
    """Touching pairs of same-value pixels across the halo (``same``), or of different-value pixels."""
    _, h1, w2 = ext.shape
    core = np.zeros((h1, w2), dtype=bool)
    core[1:, 1:-1] = True
    ids, values = ext[0], ext[1]
    directions = _DIRECTIONS if connectivity == 8 else (_DIRECTIONS[0], _DIRECTIONS[3])
    curs, nbs, keys = [], [], []
    for dy, dx in directions:
        d = _DIRECTIONS.index((dy, dx))
        ys, xs = slice(-dy, h1), slice(max(0, -dx), w2 - max(0, dx))
        nys, nxs = slice(0, h1 + dy), slice(max(0, -dx) + dx, w2 - max(0, dx) + dx)
        in_core, nb_core = core[ys, xs], core[nys, nxs]
        keep = (ids[ys, xs] >= 0) & (ids[nys, nxs] >= 0)
        if same:
            keep &= (values[ys, xs] == values[nys, nxs]) & (in_core != nb_core)
        else:
            keep &= (values[ys, xs] != values[nys, nxs]) & (in_core | nb_core)
        rows, cols = np.nonzero(keep)
        rows += ys.start
        cols += xs.start
        keys.append(((rows + (block.row - 1)).astype(np.int64) * width + cols + (block.col - 1)) * 4 + d)
        curs.append(ext[:, rows, cols])
        nbs.append(ext[:, rows + dy, cols + dx])
    return _Pairs(np.concatenate(curs, axis=1), np.concatenate(nbs, axis=1), np.concatenate(keys))


@dataclass(frozen=True)
class BlockPatches:
    """A block's patches: labels, global ids (edge patches as union-find roots), sizes, values."""

    base: int
    values: ByteArray
    labels: npt.NDArray[np.int32]
    node: IntArray  # by label: global id (the root for edge patches), -1 for label 0 (nodata)
    size: IntArray  # by label: total size in pixels
    value: IntArray  # by label: pixel value
    edge: npt.NDArray[np.bool_]  # by label: touches the block's edge

    def channels(self) -> IntArray:
        """(id, value, size) per pixel, id -1 on nodata."""
        return np.stack([self.node[self.labels], self.values.astype(np.int64), self.size[self.labels]])

    def interior_label(self, ids: IntArray) -> tuple[npt.NDArray[np.bool_], IntArray]:
        """Which global ids are this block's interior patches, and their labels (0 elsewhere)."""
        local = (ids >= self.base) & (ids < self.base + self.node.size)
        labels = np.where(local, ids - self.base, 0)
        return local & ~self.edge[labels], labels


@dataclass(frozen=True)
class _Best:
    """Per patch seen in a block: its biggest neighbour there (id, size, value) and the meeting key."""

    x: IntArray
    y: IntArray
    y_size: IntArray
    y_value: IntArray
    key: IntArray


class BlockSieve:
    """Sieve one band block by block: ``GDALSieveFilter``'s result with one block of pixels in memory."""

    def __init__(
        self,
        read: Callable[[Window], ByteArray],
        height: int,
        width: int,
        *,
        threshold: int,
        connectivity: Connectivity = 4,
        nodata: int | None = 255,
        block_size: int = 512,
    ) -> None:
        if connectivity not in (4, 8):
            raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
        self._read = read
        self.height, self.width = height, width
        self.threshold = threshold
        self.connectivity: Connectivity = connectivity
        self.nodata = nodata
        self.block_size = block_size
        self._n_cols = math.ceil(width / block_size)
        self._stride = block_size * block_size + 1
        self.edges = EdgePatches()
        self._best: dict[int, tuple[int, int, str, int]] = {}  # small edge root -> (size, key, kind, target)
        self._result: dict[int, int] = {}  # small edge root -> new value or _KEEP

    def patches(self, block: GridBlock, *, joined: bool) -> BlockPatches:
        """Label a block's patches; with ``joined``, edge patches carry their root id and total size."""
        values = self._read(Window(block.col, block.row, block.width, block.height))
        valid = values != self.nodata if self.nodata is not None else np.ones(values.shape, dtype=bool)
        labels, count = label_patches(values, valid, self.connectivity)
        edge = np.zeros(count + 1, dtype=bool)
        for side in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
            edge[side] = True
        edge[0] = False
        base = block.index * self._stride
        node = np.arange(count + 1, dtype=np.int64) + base
        node[0] = -1
        size = np.bincount(labels.ravel(), minlength=count + 1).astype(np.int64)
        value = np.zeros(count + 1, dtype=np.int64)
        value[labels.ravel()] = values.ravel()
        if joined:
            for label in np.flatnonzero(edge).tolist():
                root = self.edges.find(base + label)
                node[label] = root
                size[label] = self.edges.size[root]
        return BlockPatches(base, values, labels, node, size, value, edge)

    def _last_in_row(self, block: GridBlock) -> bool:
        return (block.index + 1) % self._n_cols == 0

    def join(self) -> None:
        """Pass 1: join edge patches across block edges; total sizes."""
        halo = _Halo.empty(self.width)
        for block in grid_blocks(self.height, self.width, self.block_size):
            patches = self.patches(block, joined=False)
            for label in np.flatnonzero(patches.edge).tolist():
                self.edges.add(
                    int(patches.node[label]), int(patches.size[label]), int(patches.value[label]), block.index
                )
            core = patches.channels()
            pairs = _pairs(block, halo.extended(block, core), self.connectivity, self.width, same=True)
            for a, b in np.unique(np.stack([pairs.cur[0], pairs.nb[0]], axis=1), axis=0).tolist():
                self.edges.union(a, b)
            halo.advance(block, core, self._last_in_row(block))

    def _neighbours(self, block: GridBlock, halo: _Halo, patches: BlockPatches) -> _Best:
        """Passes 2 and 3: every small patch's biggest neighbour among the pairs of the block and its halo.

        Large patches never merge, so pairs are kept only from the side of a small patch.
        """
        core = patches.channels()
        pairs = _pairs(block, halo.extended(block, core), self.connectivity, self.width, same=False)
        halo.advance(block, core, self._last_in_row(block))
        cur, nb, key = pairs.cur, pairs.nb, pairs.key
        x = np.concatenate([cur[0], nb[0]])
        small = np.concatenate([cur[2], nb[2]]) < self.threshold
        y = np.concatenate([nb, cur], axis=1)[:, small]
        x, key = x[small], np.concatenate([key, key])[small]
        order = np.lexsort((key, -y[2], x))
        x, y, key = x[order], y[:, order], key[order]
        first = np.ones(x.size, dtype=bool)
        first[1:] = x[1:] != x[:-1]
        return _Best(x[first], y[0, first], y[2, first], y[1, first], key[first])

    def _interior_exits(self, patches: BlockPatches, best: _Best) -> tuple[IntArray, IntArray]:
        """Where each small interior patch's chain of biggest neighbours leaves the block's interior.

        Returns (kind, target) by label. Kinds: 1 a value (a large patch was reached), 2 an edge patch
        (target is its root), 0 none (isolated, or a loop of small patches: the patch is kept).
        """
        n = patches.node.size
        kind = np.zeros(n, dtype=np.int64)
        target = np.zeros(n, dtype=np.int64)
        nxt = np.arange(n, dtype=np.int64)
        x_interior, lx = patches.interior_label(best.x)
        y_interior, ly = patches.interior_label(best.y[x_interior])
        lx = lx[x_interior]
        y_size, y_value, y = best.y_size[x_interior], best.y_value[x_interior], best.y[x_interior]
        large = y_size >= self.threshold
        to_value = y_interior & large
        kind[lx[to_value]], target[lx[to_value]] = 1, y_value[to_value]
        to_edge = ~y_interior
        kind[lx[to_edge]], target[lx[to_edge]] = 2, y[to_edge]
        chain = y_interior & ~large
        pending = np.zeros(n, dtype=bool)
        pending[lx[chain]] = True
        nxt[lx[chain]] = ly[chain]
        for _ in range(math.ceil(math.log2(n + 1)) + 1):
            nxt = nxt[nxt]
        reached = pending & ~pending[nxt]
        kind[reached], target[reached] = kind[nxt[reached]], target[nxt[reached]]
        return kind, target

    def _pass_neighbours(self) -> None:
        """Pass 2: the best candidate of every small edge patch, over all blocks."""
        halo = _Halo.empty(self.width)
        for block in grid_blocks(self.height, self.width, self.block_size):
            patches = self.patches(block, joined=True)
            best = self._neighbours(block, halo, patches)
            kind, target = self._interior_exits(patches, best)
            x_interior, _ = patches.interior_label(best.x)
            y_interior, y_label = patches.interior_label(best.y)
            for i in np.flatnonzero(~x_interior).tolist():
                x = int(best.x[i])
                if self.edges.size[x] >= self.threshold:
                    continue
                y, y_size, key = int(best.y[i]), int(best.y_size[i]), int(best.key[i])
                if not y_interior[i]:
                    candidate = (y_size, key, "edge", y)
                elif y_size >= self.threshold:
                    candidate = (y_size, key, "value", int(best.y_value[i]))
                else:
                    k, t = int(kind[y_label[i]]), int(target[y_label[i]])
                    candidate = (y_size, key, ("keep", "value", "edge")[k], t)
                held = self._best.get(x)
                if held is None or (y_size, -key) > (held[0], -held[1]):
                    self._best[x] = candidate

    def _resolve(self) -> None:
        """Follow the chains between small edge patches: each gets a value, or is kept."""
        for start in self._best:
            if start in self._result:
                continue
            path, current = [start], start
            while True:
                held = self._best.get(current)
                if held is None:
                    outcome = _KEEP
                    break
                _, _, kind, target = held
                if kind != "edge":
                    outcome = target if kind == "value" else _KEEP
                    break
                if self.edges.size[target] >= self.threshold:
                    outcome = self.edges.value[target]
                    break
                if target in self._result:
                    outcome = self._result[target]
                    break
                if target in path:
                    outcome = _KEEP
                    break
                path.append(target)
                current = target
            for patch in path:
                self._result[patch] = outcome

    def _edge_outcome(self, root: int) -> int:
        if self.edges.size[root] >= self.threshold:
            return int(self.edges.value[root])
        return self._result.get(root, _KEEP)

    def blocks(self) -> Iterator[tuple[Window, ByteArray, ByteArray]]:
        """Run the passes; yields each block's window, original values and sieved values, in row order."""
        self.join()
        self._pass_neighbours()
        self._resolve()
        halo = _Halo.empty(self.width)
        for block in grid_blocks(self.height, self.width, self.block_size):
            patches = self.patches(block, joined=True)
            best = self._neighbours(block, halo, patches)
            kind, target = self._interior_exits(patches, best)
            new = np.full(patches.node.size, _KEEP, dtype=np.int64)
            small = patches.size < self.threshold
            small[0] = False
            interior = small & ~patches.edge
            new[interior & (kind == 1)] = target[interior & (kind == 1)]
            for label in np.flatnonzero(small & patches.edge).tolist():
                new[label] = self._edge_outcome(int(patches.node[label]))
            exits = np.flatnonzero(interior & (kind == 2))
            outcomes = {root: self._edge_outcome(root) for root in set(target[exits].tolist())}
            new[exits] = [outcomes[root] for root in target[exits].tolist()]
            mapped = new[patches.labels]
            out = np.where(mapped >= 0, mapped, patches.values).astype(patches.values.dtype)
            yield Window(block.col, block.row, block.width, block.height), patches.values, out
