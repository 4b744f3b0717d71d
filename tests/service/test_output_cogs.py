"""The class and confidence COGs of a run: overviews built as blocks arrive, the same for any block size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from lulc.classes import ClassTable
from lulc.cog import Resampling
from lulc.grid import OutputGrid
from service.output import BlockSink, finish_cogs, layer_specs
from tests.support.cogs import assert_cog_with_halved_overviews

CLASSES = ClassTable.from_labels([1, 2, 3])
SIZE = 1300


def _maps() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    labels = rng.integers(1, 4, (SIZE, SIZE)).astype(np.uint8)
    labels[:, :200] = 255
    confidence = np.where(labels == 255, 255, rng.integers(34, 101, (SIZE, SIZE))).astype(np.uint8)
    return labels, confidence


def _run(folder: Path, block_size: int) -> tuple[Path, Path]:
    folder.mkdir()
    grid = OutputGrid("EPSG:32654", from_origin(400000, 4000000, 10, 10), SIZE, SIZE, block_size)
    labels, confidence = _maps()
    sink = BlockSink(folder, grid, CLASSES, True)
    try:
        for block in grid.blocks():
            rows, cols = slice(block.row, block.row + block.height), slice(block.col, block.col + block.width)
            sink.write(block, labels[rows, cols], confidence[rows, cols])
    finally:
        sink.close()
    classes_cog, confidence_cog, _ = finish_cogs(sink, folder, CLASSES)
    assert confidence_cog is not None
    return classes_cog, confidence_cog


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("sink")
    # 256: every block starts on a multiple of the top overview factor (4), the levels grow block by block;
    # 250: they do not, the levels are built from the finished map in aligned strips.
    return {size: _run(root / str(size), size) for size in (256, 250)}


def test_the_cogs_are_valid_and_hold_the_halved_overviews(runs: dict[int, tuple[Path, Path]]) -> None:
    labels, confidence = _maps()
    resamplings: tuple[Resampling, Resampling] = ("mode", "average")
    for cog, data, resampling in zip(runs[256], (labels, confidence), resamplings, strict=True):
        assert_cog_with_halved_overviews(cog, data, resampling, [2, 4])
    with rasterio.open(runs[256][0]) as src:
        assert src.colormap(1)[1][:3] == CLASSES.classes[0].rgba[:3]
        assert src.tags(1)["CLASS_1"] == CLASSES.classes[0].name
        assert src.descriptions == ("land cover class",)


def test_the_bytes_do_not_depend_on_the_block_size(runs: dict[int, tuple[Path, Path]]) -> None:
    for a, b in zip(runs[256], runs[250], strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_no_staging_file_is_left(runs: dict[int, tuple[Path, Path]]) -> None:
    for cog, _ in runs.values():
        assert sorted(p.name for p in cog.parent.iterdir()) == [
            "classes.qml",
            "classes.tif",
            "classes.tif.aux.xml",
            "confidence.tif",
        ]


def test_the_class_sets_overviews_pair_each_sets_size_with_its_own_bitmask(tmp_path: Path) -> None:
    """sets.tif's band 1 is the number of bits set in band 2 at every overview level, not only at full size.

    Halved band by band, a 2 x 2 of the sets {1}, {2}, {1, 2}, {1, 2} gives size 1 (the tie's first) with
    the bitmask of {1, 2}; the maps below hold that 2 x 2 everywhere down the first column of 2 x 2s.
    """
    grid = OutputGrid("EPSG:32654", from_origin(400000, 4000000, 10, 10), SIZE, SIZE, 256)
    labels, _ = _maps()
    rng = np.random.default_rng(5)
    masks = np.where(labels == 255, 255, rng.choice(np.array([1, 2, 3, 4, 5, 7], np.uint8), labels.shape))
    masks[:, 200:202] = np.tile([[1, 2], [3, 3]], (SIZE // 2, 1))
    sizes = np.where(masks == 255, 255, np.unpackbits(masks[..., None], axis=-1).sum(axis=-1))
    sets = np.stack([sizes, masks]).astype(np.uint8)
    sink = BlockSink(tmp_path, grid, CLASSES, False, layer_specs(frozenset({"sets"}), CLASSES))
    try:
        for block in grid.blocks():
            rows, cols = slice(block.row, block.row + block.height), slice(block.col, block.col + block.width)
            sink.write(block, labels[rows, cols], None, {"sets": sets[:, rows, cols]})
    finally:
        sink.close()
    _, _, layer_cogs = finish_cogs(sink, tmp_path, CLASSES)
    with rasterio.open(layer_cogs["sets.tif"]) as src:
        assert src.overviews(1) == src.overviews(2) == [2, 4]
        for factor in (1, 2, 4):
            shape = (-(-SIZE // factor), -(-SIZE // factor))
            size, mask = src.read(out_shape=(2, *shape))
            valid = mask != 255
            assert np.array_equal(size[valid], np.unpackbits(mask[valid][:, None], axis=1).sum(axis=1))
            assert np.all(size[~valid] == 255)
        assert src.read(out_shape=(2, SIZE // 2, SIZE // 2))[:, 0, 100].tolist() == [2, 3]


def test_a_map_whose_levels_cannot_fit_the_free_disk_is_refused_before_any_block(tmp_path: Path) -> None:
    """CLI review: a continent-sized AOI ended in GDAL's free-space error ("unexpected") after it started."""
    import math
    import shutil

    from rasterio.transform import Affine

    from lulc.cog import overview_factors
    from lulc.errors import LimitError
    from service.output import check_working_space

    free = shutil.disk_usage(tmp_path).free
    side = 2 * math.isqrt(free) + 1024  # its first level alone holds more bytes than are free
    grid = OutputGrid("EPSG:32633", Affine(10.0, 0.0, 0.0, 0.0, -10.0, 0.0), side, side)
    table = ClassTable.from_labels(["water", "land"])
    with pytest.raises(LimitError, match=r"px map needs about [\d,.]+ GiB of working space"):
        BlockSink(tmp_path, grid, table, confidence=True)
    assert list(tmp_path.iterdir()) == []  # no file opened
    small = 4096  # control: 4 bands of levels, 7 MiB
    check_working_space(tmp_path, small, small, overview_factors(small, small, 512), 4)
