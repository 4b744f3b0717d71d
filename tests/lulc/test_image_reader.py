"""A local image's reader keeps a dataset open per thread: the same pixels, picklable, closed when gone."""

from __future__ import annotations

import gc
import os
import pickle
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from lulc.errors import InputError, ReadError
from lulc.grid import OutputGrid
from lulc.pixels.image import ImageBlockReader, open_image_reader

CRS = "EPSG:32633"


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A 4-band float32 image of 300 x 200 px, tiled 64 px, with a nodata corner."""
    rng = np.random.default_rng(3)
    data = rng.uniform(0, 0.5, size=(4, 200, 300)).astype(np.float32)
    data[:, :10, :10] = -1.0
    path = tmp_path / "image.tif"
    profile = {
        "driver": "GTiff", "width": 300, "height": 200, "count": 4, "dtype": "float32", "crs": CRS,
        "transform": from_origin(500_000, 4_000_000, 10, 10), "nodata": -1.0,
        "tiled": True, "blockxsize": 64, "blockysize": 64, "compress": "deflate",
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def reader_of(path: Path) -> ImageBlockReader:
    grid = OutputGrid(CRS, from_origin(500_000, 4_000_000, 10, 10), 300, 200, block_size=64)
    return open_image_reader(path, grid, (1, 2, 3, 4), 1.0, 0.0)


def open_files(path: Path) -> int:
    """How many of this process's file descriptors refer to ``path`` (Linux's /proc)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            continue
    return count


def test_blocks_read_from_several_threads_equal_the_serial_reads(image: Path) -> None:
    reader = reader_of(image)
    blocks = list(reader.grid.blocks())
    serial = [reader.read(block) for block in blocks]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(reader.read, blocks[::-1]))[::-1]
    for one, other in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(one, other)
    assert np.isnan(serial[0][:, :10, :10]).all()
    assert np.isfinite(serial[0][:, 10:, 10:]).all()


def test_a_pickled_reader_reads_the_same_and_the_image_closes_with_its_reader(image: Path) -> None:
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("no /proc on this system to count open files")
    reader = reader_of(image)
    block = next(iter(reader.grid.blocks()))
    first = reader.read(block)
    assert open_files(image) == 1  # kept open for the next block of this thread
    copy = pickle.loads(pickle.dumps(reader))
    np.testing.assert_array_equal(copy.read(block), first)
    assert open_files(image) == 2
    del reader, copy
    gc.collect()
    assert open_files(image) == 0


def test_a_truncated_image_is_a_read_error_naming_the_image_and_the_block(image: Path) -> None:
    reader = reader_of(image)
    blocks = list(reader.grid.blocks())
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])  # the later tiles are gone
    reader.read(blocks[0])
    with pytest.raises(ReadError) as raised:
        reader.read(blocks[-1])
    pattern = rf"cannot read image {re.escape(str(image))} \(rows 192-199, columns 256-299 of the map\): \S"
    assert re.match(pattern, str(raised.value)), str(raised.value)


def test_complex_bands_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "complex.tif"
    profile = {
        "driver": "GTiff", "width": 8, "height": 8, "count": 4, "dtype": "complex64", "crs": CRS,
        "transform": from_origin(500_000, 4_000_000, 10, 10),
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((4, 8, 8), dtype=np.complex64))
    with pytest.raises(InputError, match=r"complex-valued bands \(complex64\)"):
        reader_of(path)
