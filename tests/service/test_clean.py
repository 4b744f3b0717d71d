"""``lulc clean``: block-wise sieving gives GDAL's whole-raster result, in bounded memory, as a valid run."""

from __future__ import annotations

import json
import re
import tracemalloc
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import rasterio
import rasterio.features

from lulc.errors import InputError
from service.clean import clean_run, mmu_pixels
from service.sieve import BlockSieve, Connectivity
from tests.service.products_support import file_map, read_band, speckled, two_runs
from tests.support.cli import lulc
from tests.support.stac_validation import assert_valid_stac_file


def block_sieve(
    array: npt.NDArray[np.uint8], threshold: int, connectivity: Connectivity, block: int, nodata: int | None
) -> npt.NDArray[np.uint8]:
    sieve = BlockSieve(
        lambda w: array[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width],
        array.shape[0],
        array.shape[1],
        threshold=threshold,
        connectivity=connectivity,
        nodata=nodata,
        block_size=block,
    )
    out = np.empty_like(array)
    for window, _, values in sieve.blocks():
        out[
            window.row_off : window.row_off + window.height, window.col_off : window.col_off + window.width
        ] = values
    return out


def gdal_sieve(
    array: npt.NDArray[np.uint8], threshold: int, connectivity: Connectivity, nodata: int | None
) -> npt.NDArray[np.uint8]:
    mask = array != nodata if nodata is not None else None
    result: npt.NDArray[np.uint8] = rasterio.features.sieve(
        array, threshold, mask=mask, connectivity=connectivity
    )
    return result


@pytest.mark.parametrize("connectivity", [4, 8])
def test_block_sieve_equals_gdal_on_random_maps(connectivity: Connectivity) -> None:
    """Many maps, thresholds and blocks (down to 3 pixels: chains cross many blocks): 0 pixels differ."""
    rng = np.random.default_rng(connectivity)
    changed = 0
    for trial in range(40):
        shape = (int(rng.integers(5, 90)), int(rng.integers(5, 90)))
        array = speckled(
            rng, shape, int(rng.integers(1, 8)), float(rng.random() * 0.4), int(rng.integers(2, 5))
        )
        threshold = int(rng.integers(2, min(60, shape[0] * shape[1] - 1)))
        nodata = 255 if trial % 5 else None
        expected = gdal_sieve(array, threshold, connectivity, nodata)
        got = block_sieve(array, threshold, connectivity, int(rng.integers(3, 40)), nodata)
        assert np.array_equal(got, expected), f"trial {trial}: {(got != expected).sum()} pixels differ"
        changed += int((expected != array).sum())
    assert changed > 1000  # control: the sieve did change many pixels


def test_ties_and_nodata_follow_gdal() -> None:
    """Equal-size neighbours: the one GDAL meets first wins; nodata never changes nor is a neighbour."""
    array = np.array(
        [
            [1, 1, 1, 2, 2, 2],
            [1, 1, 1, 2, 2, 2],
            [1, 1, 3, 2, 2, 1],
            [255, 255, 255, 255, 255, 255],
            [4, 4, 4, 255, 5, 4],
        ],
        dtype=np.uint8,
    )
    for block in (2, 3, 4, 6):
        got = block_sieve(array, 3, 4, block, 255)
        assert np.array_equal(got, gdal_sieve(array, 3, 4, 255))
    assert got[2, 2] == 1  # the 1s above are met before the 2s to the right: both patches have 8 pixels
    assert got[2, 5] == 2  # a lone 1 beside nodata joins its only neighbour
    assert (got[4, 4], got[4, 5]) == (5, 4)  # two 1-pixel patches, each the other's biggest neighbour: kept
    assert (got[3] == 255).all()


def test_mmu_pixels_rounds_up_to_whole_pixels() -> None:
    assert mmu_pixels(0.5, 100.0) == 50
    assert mmu_pixels(0.5, 99.0) == 51
    assert mmu_pixels(0.0, 100.0) == 1


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real classification of a speckled 600 x 640 image (nodata corner), 10 m pixels."""
    return two_runs(tmp_path_factory).first


@pytest.mark.parametrize("connectivity", [4, 8])
def test_clean_run_equals_whole_raster_sieve(run: Path, tmp_path: Path, connectivity: Connectivity) -> None:
    """A map of 10 x 10 blocks of 64 pixels: the cleaned COG equals GDAL's sieve of the whole raster."""
    result = clean_run(run, tmp_path / "clean", mmu_ha=0.5, connectivity=connectivity, block_size=64)
    assert result.threshold_pixels == 50  # 0.5 ha of 10 m pixels
    source = read_band(run / "classes.tif")
    cleaned = read_band(tmp_path / "clean" / "classes.tif")
    expected = gdal_sieve(source, 50, connectivity, 255)
    assert int((cleaned != expected).sum()) == 0
    assert result.changed_pixels == int((source != cleaned).sum()) > 10_000  # control: speckle was removed
    stats = json.loads((tmp_path / "clean" / "stats.json").read_text())
    counts = np.bincount(cleaned.ravel(), minlength=256)
    assert {r["value"]: r["pixels"] for r in stats["classes"]} == {v: int(counts[v]) for v in (1, 2, 3)}
    assert stats["nodata_pixels"] == int(counts[255]) == 2500
    assert stats["mmu"]["threshold_pixels"] == 50


def test_clean_run_item_confidence_and_lineage(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "clean"
    clean_run(run, out, mmu_ha=0.5, block_size=128)
    item = assert_valid_stac_file(out / "item.json")
    source = json.loads((run / "item.json").read_text())
    assert item["properties"]["lulc:mmu_pixels"] == 50
    assert item["properties"]["lulc:product"] == "clean"
    assert item["properties"]["lulc:source"] == json.loads((run / "item.json").read_text())["id"]
    assert "0.5 ha" in item["properties"]["processing:lineage"]
    assert source["id"] in item["properties"]["processing:lineage"]
    link = next(link for link in item["links"] if link["rel"] == "derived_from")
    assert json.loads((out / link["href"]).read_text())["id"] == source["id"]
    assert [c["name"] for c in item["assets"]["classes"]["classification:classes"]] == [
        "open-water",
        "tree-cover",
        "built-up-area",
    ]
    described = [c["description"] for c in item["assets"]["classes"]["classification:classes"]]
    assert described == ["Lakes, rivers and ponds.", "Tree cover", "Built-up area"]  # the source's
    moved = read_band(run / "classes.tif") != read_band(out / "classes.tif")
    confidence = read_band(out / "confidence.tif")
    assert (confidence[moved] == 255).all()
    assert np.array_equal(confidence[~moved], read_band(run / "confidence.tif")[~moved])
    with rasterio.open(out / "classes.tif") as src:
        assert src.tags(1)["CLASS_2"] == "Tree cover"
        assert src.colormap(1)[1][:3] == (0x1F, 0x78, 0xB4)
        assert src.overviews(1)  # a COG
    assert 'label="Tree cover"' in (out / "classes.qml").read_text()  # QGIS's legend
    assert item["assets"]["classes_style"]["href"] == "./classes.qml"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_output_bytes_do_not_depend_on_the_block_size(run: Path, tmp_path: Path) -> None:
    clean_run(run, tmp_path / "a", mmu_ha=0.3, connectivity=8, block_size=64)
    clean_run(run, tmp_path / "b", mmu_ha=0.3, connectivity=8, block_size=512)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def _peak_bytes(path: Path, block: int) -> int:
    with rasterio.open(path) as src:
        tracemalloc.start()
        try:
            sieve = BlockSieve(
                lambda w: src.read(1, window=w), src.height, src.width, threshold=50, block_size=block
            )
            for _ in sieve.blocks():
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def test_peak_memory_follows_the_block_not_the_map(tmp_path: Path) -> None:
    """Quadrupling the map barely moves the peak; doubling the block edge raises it (the control)."""
    rng = np.random.default_rng(3)
    small = file_map(tmp_path / "small.tif", speckled(rng, (512, 512), 16, 0.05, 4))
    large = file_map(tmp_path / "large.tif", speckled(rng, (1024, 1024), 16, 0.05, 4))
    peak_small = _peak_bytes(small, 128)
    peak_large = _peak_bytes(large, 128)
    assert peak_large < 1.5 * peak_small
    assert peak_large < 1024 * 1024 * 4  # less than an int32 label raster of the whole map would take
    assert peak_large < 400 * 128 * 128  # a fixed multiple of the block
    assert _peak_bytes(large, 256) > 2 * peak_large


def test_cli_clean(run: Path, tmp_path: Path) -> None:
    done = lulc(
        "clean",
        run,
        "--mmu-ha",
        "0.5",
        "--connectivity",
        "8",
        "--out",
        tmp_path / "out",
        "--block-size",
        "128",
    )
    assert done.returncode == 0, done.stderr
    assert "(50 pixels) removed" in done.stdout
    assert np.array_equal(
        read_band(tmp_path / "out" / "classes.tif"), gdal_sieve(read_band(run / "classes.tif"), 50, 8, 255)
    )


def test_a_unit_above_every_patch_says_why_nothing_changed(run: Path, tmp_path: Path) -> None:
    """Products review: "0 pixels changed" alone, as if the map had no small patch."""
    with rasterio.open(run / "classes.tif") as src:
        pixels = src.width * src.height
    done = lulc("clean", run, "--mmu-ha", "5000", "--out", tmp_path / "out")  # 500,000 pixels of 10 m
    assert done.returncode == 0, done.stderr
    assert pixels < 500_000
    assert re.search(
        r"removed, 0 pixels changed \(no patch under (\d+) pixels borders one of \1 or more", done.stdout
    )
    assert np.array_equal(read_band(tmp_path / "out" / "classes.tif"), read_band(run / "classes.tif"))


def test_cli_bad_option_is_one_line(run: Path, tmp_path: Path) -> None:
    done = lulc("clean", run, "--mmu-ha", "0.5", "--connectivity", "6", "--out", tmp_path / "out")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --connectivity must be 4 or 8, got 6"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("negative-mmu", "--mmu-ha must be a non-negative"),
        ("tiny-block", "--block-size must be at least 16"),
        ("missing-run", "does not exist"),
        ("empty-folder", "has no classes.tif"),
        ("out-is-run", "is the input run folder"),
        ("no-stats", "has no stats.json"),
    ],
)
def test_bad_input_raises_a_clear_input_error(run: Path, tmp_path: Path, case: str, message: str) -> None:
    source, out, mmu, block = run, tmp_path / "out", 0.5, 64
    if case == "negative-mmu":
        mmu = -1.0
    elif case == "tiny-block":
        block = 4
    elif case == "missing-run":
        source = tmp_path / "nowhere"
    elif case == "empty-folder":
        source = tmp_path / "empty"
        source.mkdir()
    elif case == "out-is-run":
        out = run
    elif case == "no-stats":
        source = tmp_path / "partial"
        source.mkdir()
        for name in ("classes.tif", "item.json"):
            (source / name).write_bytes((run / name).read_bytes())
    with pytest.raises(InputError, match=message):
        clean_run(source, out, mmu_ha=mmu, block_size=block)
    assert not (out / "item.json").exists() or out == run


def test_assess_reads_the_cleaned_map_and_sees_the_gain(run: Path, tmp_path: Path) -> None:
    """`lulc assess` on the cleaned map: speckle gone, overall accuracy up on the same points."""
    from tests.service.products_support import truth_map
    from tests.support.points import write_pixel_points
    from training.assess import assess_map, render_assessment

    truth = truth_map((600, 640), 40, seed=1)
    rng = np.random.default_rng(0)
    rows, cols = np.unravel_index(rng.choice(truth.size, 600, replace=False), truth.shape)
    keep = (rows >= 50) | (cols >= 50)  # not in the nodata corner
    rows, cols = rows[keep], cols[keep]
    points = write_pixel_points(tmp_path / "points.gpkg", rows, cols, truth[rows, cols])
    clean_run(run, tmp_path / "clean", mmu_ha=0.5, block_size=128)
    source = assess_map(run / "classes.tif", points, "label")
    cleaned = assess_map(tmp_path / "clean" / "classes.tif", points, "label")
    before, after = source["overall_accuracy"], cleaned["overall_accuracy"]
    assert before < 0.95 < 0.98 < after
    # the cleaned map's item names its source run: assess finds it and reports both and the difference
    assert "accuracy_change" not in source
    assert cleaned["source"]["map"] == str((run / "classes.tif").resolve())
    assert cleaned["source"]["overall_accuracy"] == before
    change = cleaned["accuracy_change"]
    assert change["overall_accuracy"] == pytest.approx(after - before, abs=1e-6)
    assert 0 < change["overall_accuracy_se"] < change["overall_accuracy"] / 2  # the gain is no chance
    assert change["points_changed_to_right"] > change["points_changed_to_wrong"]
    text = render_assessment(cleaned)
    assert f"cleaned from {run / 'classes.tif'}" in text.replace(str(run.resolve()), str(run))


@pytest.mark.parametrize("mmu_ha", [1e305, float("inf"), float("nan"), -1.0])
def test_an_impossible_unit_is_one_input_error(mmu_ha: float) -> None:
    with pytest.raises(InputError, match="--mmu-ha"):
        mmu_pixels(mmu_ha, 100.0)
