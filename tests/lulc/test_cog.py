"""COG writing: valid COGs, deterministic bytes, and nothing at the final path when writing fails."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

from lulc.cog import (
    CogOptions,
    OverviewLevels,
    Resampling,
    atomic_path,
    halve,
    overview_factors,
    translate_to_cog,
    write_cog,
)
from tests.support.cogs import assert_cog_with_halved_overviews


def _classes(size: int = 1200) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return ((xx // 37 + yy // 53) % 4 + 1).astype(np.uint8)


def test_write_cog_is_a_valid_deterministic_cog(tmp_path: Path) -> None:
    data = _classes()
    kwargs = {
        "crs": "EPSG:32654",
        "transform": from_origin(400000, 4000000, 10, 10),
        "nodata": 255,
        "colormap": {1: (255, 0, 0, 255), 2: (0, 255, 0, 255)},
        "options": CogOptions(overview_resampling="mode"),
    }
    a = write_cog(tmp_path / "a.tif", data, **kwargs)
    b = write_cog(tmp_path / "b.tif", data, **kwargs)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    valid, errors, warnings = cog_validate(str(a))
    assert valid, errors
    assert not warnings
    with rasterio.open(a) as src:
        assert src.block_shapes == [(512, 512)]
        assert src.overviews(1)
        assert src.nodata == 255
        assert src.colormap(1)[2] == (0, 255, 0, 255)
        overview = src.read(1, out_shape=(src.height // 4, src.width // 4))
        assert set(np.unique(overview)) <= {1, 2, 3, 4}  # MODE never invents a class
        np.testing.assert_array_equal(src.read(1), data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif"]


def test_compressing_on_every_core_gives_the_bytes_of_one_thread(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(0, 101, (1800, 2100)).astype(np.uint8)  # noisy: tiles compress to different sizes
    data[:300, :400] = 255
    src = write_cog(
        tmp_path / "src.tif", data, crs="EPSG:32654", transform=from_origin(0, 0, 10, 10), nodata=255
    )
    options = CogOptions(overview_resampling="average", level=1)
    assert options.creation_options()["NUM_THREADS"] == "ALL_CPUS"
    one = replace(options, extra={"NUM_THREADS": "1"})
    four = replace(options, extra={"NUM_THREADS": "4"})
    reference = translate_to_cog(src, tmp_path / "one.tif", one).read_bytes()
    for name, opts in (("all.tif", options), ("four.tif", four)):
        assert translate_to_cog(src, tmp_path / name, opts).read_bytes() == reference
    # the control: the options do reach the driver (another level gives other bytes)
    assert translate_to_cog(src, tmp_path / "l6.tif", replace(one, level=6)).read_bytes() != reference


def test_atomic_path_leaves_the_final_path_untouched_on_failure(tmp_path: Path) -> None:
    final = tmp_path / "out.tif"
    final.write_bytes(b"previous result")

    def interrupted_write() -> None:
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"half a file")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        interrupted_write()
    assert final.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def test_halve_takes_the_mode_the_rounded_mean_or_the_first_of_each_2x2_skipping_nodata() -> None:
    nd = 255
    data = np.array(
        [
            [[1, 1, 2, 3, 7], [2, 4, 3, 2, 7], [nd, nd, 5, nd, nd], [nd, nd, 6, 6, nd]],
        ],
        dtype=np.uint8,
    )
    # 2x2 groups: [1 1 / 2 4], [2 3 / 3 2], [7 / 7] (right edge), [nd nd / nd nd], [5 nd / 6 6], [nd / nd]
    mode = halve(data, "mode", nd)
    assert mode.shape == (1, 2, 3)
    # a tie between 2 and 3 goes to the first in reading order (2, top left)
    assert mode.tolist() == [[[1, 2, 7], [nd, 6, nd]]]
    mean = halve(data, "average", nd)
    # (1+1+2+4)/4 = 2; (2+3+3+2)/4 = 2.5 -> 3 (half up); (5+6+6)/3 = 5.67 -> 6
    assert mean.tolist() == [[[2, 3, 7], [nd, 6, nd]]]
    assert halve(data, "nearest", nd).tolist() == [[[1, 2, 7], [nd, 5, nd]]]
    assert halve(data, "max", nd).tolist() == [[[4, 3, 7], [nd, 6, nd]]]  # the AOA's DI: outside stays out
    with pytest.raises(ValueError, match="bilinear"):
        halve(data, "bilinear", nd)


def _by_the_rule(four: tuple[int, ...], resampling: str, nd: int) -> int:
    """One 2 x 2 (reading order) halved as ``halve``'s docstring says, one pixel at a time."""
    valid = [v for v in four if v != nd]
    if not valid:
        return nd
    if resampling == "nearest":
        return valid[0]
    if resampling == "average":
        return (2 * sum(valid) + len(valid)) // (2 * len(valid))
    if resampling == "max":
        return max(valid)
    votes = [valid.count(v) for v in valid]
    return valid[votes.index(max(votes))]  # the first value (reading order) of the most votes


@pytest.mark.parametrize("resampling", ["mode", "average", "nearest", "max"])
def test_halve_follows_its_rule_for_every_2x2_of_four_values_and_nodata(resampling: Resampling) -> None:
    nd = 255
    fours = list(itertools.product([0, 1, 2, nd], repeat=4)) + list(
        itertools.product([3, 200, 254], repeat=4)
    )
    data = np.zeros((2, 2, 2 * len(fours)), dtype=np.uint8)
    for i, (a, b, c, d) in enumerate(fours):
        data[:, :, 2 * i : 2 * i + 2] = [[a, b], [c, d]]
    data[1] = data[0][:, ::-1]  # a second band: the same 2 x 2s mirrored left to right
    # band by band: a mode of several bands is one of whole pixels (the next test)
    halved = np.concatenate([halve(data[b : b + 1], resampling, nd) for b in range(2)])
    if resampling != "mode":
        assert np.array_equal(halve(data, resampling, nd), halved)
    expected = [_by_the_rule(four, resampling, nd) for four in fours]
    mirrored = [_by_the_rule((b, a, d, c), resampling, nd) for a, b, c, d in fours[::-1]]
    assert halved[0, 0].tolist() == expected
    assert halved[1, 0].tolist() == mirrored
    if resampling not in ("average", "max"):  # the control: mirrored 2 x 2s change the first and the ties
        assert mirrored[::-1] != expected


def _popcount(values: np.ndarray) -> np.ndarray:
    return np.unpackbits(values[..., None], axis=-1).sum(axis=-1)


@pytest.mark.parametrize("bands", [2, 3, 5])
def test_the_mode_of_several_bands_takes_whole_pixels_never_one_band_from_another(bands: int) -> None:
    """A class-set map (band 1 the set's size, band 2 its bitmask) halved keeps sizes and bitmasks paired.

    Band by band, the 2 x 2 of sets {a}, {b}, {a, b}, {a, b} gives the size 1 (top left, tied with top
    right and first) but the bitmask of {a, b} (the only value seen twice): a size-1 set of two classes.
    """
    nd = 255
    rng = np.random.default_rng(3)
    masks = rng.choice(np.array([1, 2, 3, 4, 6, 7], dtype=np.uint8), size=(64, 64))
    masks[:, :2] = [[1, 2], [3, 3]] * 32  # the docstring's 2 x 2, down the first column of 2 x 2s
    masks[10:20, 30:40] = nd
    data = np.stack([np.where(masks == nd, nd, _popcount(masks)).astype(np.uint8), masks])
    if bands > 2:  # further bands tied to the same pixel (its mask shifted), to cover the wider packings
        more = [np.where(masks == nd, nd, masks + b) for b in range(1, bands - 1)]
        data = np.concatenate([data, np.stack(more)]).astype(np.uint8)
    per_band = np.concatenate([halve(data[b : b + 1], "mode", nd) for b in range(bands)])
    assert per_band[:2, 0, 0].tolist() == [1, 3]  # the control: a mismatch band by band
    halved = data
    for _ in range(3):
        halved = halve(halved, "mode", nd)
        sizes, bitmask = halved[0], halved[1]
        valid = bitmask != nd
        assert np.array_equal(sizes[valid], _popcount(bitmask[valid]))
        assert np.all(sizes[~valid] == nd)
        for b in range(2, bands):
            assert np.array_equal(halved[b][valid], bitmask[valid] + b - 1)
    first = halve(data, "mode", nd)
    assert first[:2, 0, 0].tolist() == [2, 3]  # {a, b}: the pixel seen twice
    # a single band keeps its own rule: the pixel mode of one band is that band's mode
    assert np.array_equal(halve(data[1:2], "mode", nd), per_band[1:2])
    with pytest.raises(ValueError, match="at most 8 bands"):
        halve(np.zeros((9, 4, 4), dtype=np.uint8), "mode", nd)


@pytest.mark.parametrize(("width", "height"), [(300, 200), (513, 100), (1200, 1200), (3000, 700)])
def test_overview_factors_are_the_ones_gdals_cog_driver_makes(
    tmp_path: Path, width: int, height: int
) -> None:
    data = np.ones((height, width), dtype=np.uint8)
    cog = write_cog(
        tmp_path / "a.tif", data, crs="EPSG:32654", transform=from_origin(0, 0, 10, 10), nodata=255
    )
    with rasterio.open(cog) as src:
        assert src.overviews(1) == overview_factors(width, height)


def _staging_profile(size: int) -> dict[str, object]:
    return {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:32654",
        "transform": from_origin(400000, 4000000, 10, 10),
        "nodata": 255,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
    }


def _levels_of(
    folder: Path, data: np.ndarray, block: int, resampling: Resampling = "mode"
) -> tuple[Path, OverviewLevels]:
    folder.mkdir()
    base = folder / "map.tif"
    profile = _staging_profile(data.shape[0])
    factors = overview_factors(data.shape[1], data.shape[0])
    levels = OverviewLevels(base, profile, factors, resampling)
    with rasterio.open(base, "w", **profile) as dst:
        dst.write_colormap(1, {1: (255, 0, 0, 255), 2: (0, 255, 0, 255)})
        dst.update_tags(1, CLASS_1="water")
        for row in range(0, data.shape[0], block):
            for col in range(0, data.shape[1], block):
                tile = data[np.newaxis, row : row + block, col : col + block]
                dst.write(tile, window=Window(col, row, tile.shape[2], tile.shape[1]))
                levels.add(row, col, tile)
    levels.close()
    return base, levels


@pytest.mark.parametrize("resampling", ["mode", "nearest"])
def test_overviews_built_block_by_block_are_copied_into_a_valid_cog(
    tmp_path: Path, resampling: Resampling
) -> None:
    data = _classes(1500)
    data[:100, :130] = 255  # nodata in a corner
    data[1000:1003, ::3] = 4  # thin lines: the mode and the top-left pixel differ there
    base, levels = _levels_of(tmp_path / "blocks", data, 256, resampling)
    # The COG's own setting says mode: with levels given, they are copied whatever it says.
    options = CogOptions(overview_resampling="mode")
    a = translate_to_cog(base, tmp_path / "a.tif", options, levels.paths)
    b = translate_to_cog(base, tmp_path / "b.tif", options, levels.paths)
    assert a.read_bytes() == b.read_bytes()
    assert_cog_with_halved_overviews(a, data, resampling, [2, 4])
    with rasterio.open(a) as src:
        assert src.colormap(1)[2] == (0, 255, 0, 255)
        assert src.tags(1)["CLASS_1"] == "water"
    # the control: the two resamplings do give different overviews of these pixels
    assert (halve(data[np.newaxis], "mode", 255) != halve(data[np.newaxis], "nearest", 255)).any()
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".vrt"] == []


def test_levels_do_not_depend_on_the_block_size(tmp_path: Path) -> None:
    data = _classes(1500)
    _, levels_a = _levels_of(tmp_path / "512", data, 512)
    _, levels_b = _levels_of(tmp_path / "4", data, 1500 // 3)  # 500: a multiple of the top factor 4
    for a, b in zip(levels_a.paths, levels_b.paths, strict=True):
        with rasterio.open(a) as ra, rasterio.open(b) as rb:
            np.testing.assert_array_equal(ra.read(), rb.read())
    with pytest.raises(ValueError, match="not aligned"):
        OverviewLevels(tmp_path / "x.tif", _staging_profile(1500), [2, 4], "mode").add(0, 2, data[None])


MEMORY_PROBE = """
import sys
from pathlib import Path
import numpy as np, rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window
from lulc.cog import CogOptions, OverviewLevels, overview_factors, translate_to_cog
from lulc.gdal_env import gdal_env

def peak_mib():
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024

folder, size = Path(sys.argv[1]), int(sys.argv[2])
profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "uint8",
    "crs": "EPSG:32654", "transform": from_origin(400000, 4000000, 10, 10), "nodata": 255, "tiled": True,
    "blockxsize": 512, "blockysize": 512, "compress": "zstd"}
factors = overview_factors(size, size)
rng = np.random.default_rng(0)
with gdal_env():
    levels = OverviewLevels(folder / "map.tif", profile, factors, "nearest")
    with rasterio.open(folder / "map.tif", "w", **profile) as dst:
        for row in range(0, size, 512):
            for col in range(0, size, 512):
                block = rng.integers(1, 5, (1, 512, 512), dtype=np.uint8)  # noisy: compresses poorly
                dst.write(block, window=Window(col, row, 512, 512))
                levels.add(row, col, block)
    levels.close()
before = peak_mib()
translate_to_cog(folder / "map.tif", folder / "cog.tif", CogOptions(), levels.paths)
print(round(peak_mib() - before, 1))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc (Linux)")
def test_a_cog_translation_does_not_cache_the_files_it_reads(tmp_path: Path) -> None:
    """The translation reads its local map and levels without GDAL's per-file cache (kept for HTTP reads).

    With ``VSI_CACHE`` on, the cache keeps what it read: this 6,144² map's translation then raised the peak
    RSS by 19 MiB; without, by 0 (measured).
    """
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(tmp_path), "6144"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert float(done.stdout.strip()) < 8.0, done.stdout
    with rasterio.open(tmp_path / "cog.tif") as src:
        assert src.overviews(1) == overview_factors(6144, 6144)
