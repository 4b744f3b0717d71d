"""``lulc smooth``: sits' Bayesian smoothing, pixel for pixel, block by block, and what it does to a map."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from lulc.classes import NODATA
from lulc.errors import InputError
from service.bayes_smoothing import LOGITS, BayesSmoothing, decide, pad_to_halo, smooth_block
from service.smooth import smooth_run
from tests.service.products_support import (
    classify_image,
    read_band,
    train_model,
    truth_map,
    two_runs,
    write_image,
)
from tests.support.cli import lulc
from tests.support.stac_validation import assert_valid_stac_file

MAPS = ("classes.tif", "confidence.tif", "probabilities.tif")


def sits_smoother(
    logits: npt.NDArray[np.float64], window: int, smoothness: float, fraction: float
) -> npt.NDArray[np.float64]:
    """The ``bayes_smoother_fraction`` of sits (src/smooth_bayes.cpp) transcribed loop for loop, one class.

    ``logits`` is (rows, cols) with NaN for missing values; mirrored indices past the edges, NA left out,
    the highest ``ceil(fraction * n)`` values, R's ``var`` (n - 1) and ``mean``.
    """
    rows, cols = logits.shape
    leg = window // 2

    def locus(size: int) -> list[int]:
        return [
            leg - i - 1 if i < leg else i - leg if i < size + leg else 2 * size + leg - i - 1
            for i in range(size + 2 * leg)
        ]

    loci, locj = locus(rows), locus(cols)
    out = np.full_like(logits, np.nan)
    for i in range(rows):
        for j in range(cols):
            neigh = [logits[loci[wi + i], locj[wj + j]] for wi in range(window) for wj in range(window)]
            kept = sorted((v for v in neigh if not math.isnan(v)), reverse=True)
            high = kept[: math.ceil(fraction * len(kept))]
            m0 = sum(high) / len(high)
            s0 = sum((v - m0) ** 2 for v in high) / (len(high) - 1)
            w = s0 / (s0 + smoothness)
            out[i, j] = w * logits[i, j] + (1 - w) * m0
    return out


@pytest.mark.parametrize(("window", "fraction"), [(7, 0.5), (5, 1.0), (3, 0.3)])
def test_each_pixel_is_what_sits_computes(window: int, fraction: float) -> None:
    rng = np.random.default_rng(3)
    percent = rng.integers(0, 101, (2, 23, 19)).astype(np.uint8)
    percent[:, 5:8, 4:9] = 97  # a uniform patch: variance 0
    percent[:, rng.random((23, 19)) < 0.1] = NODATA
    params = BayesSmoothing(window=window, neigh_fraction=fraction, smoothness=(20.0, 5.0))
    r = params.halo
    ours = smooth_block(pad_to_halo(percent, (r, r), (r, r)), NODATA, params)
    valid = percent[0] != NODATA
    for k, smoothness in enumerate((20.0, 5.0)):
        logits = np.where(valid, LOGITS[np.minimum(percent[k], 100)], np.nan)
        expected = sits_smoother(logits, window, smoothness, fraction)
        np.testing.assert_allclose(ours[k][valid], expected[valid], rtol=1e-12, atol=1e-12)
        assert np.isnan(ours[k][~valid]).all(), "nodata stays nodata (sits fills it from the neighbours)"


def test_a_uniform_neighbourhood_pulls_an_outlier_to_it_and_a_border_keeps_its_pixels() -> None:
    percent = np.full((2, 9, 9), 90, dtype=np.uint8)
    percent[1] = 10
    percent[:, 4, 4] = (30, 70)  # one pixel of the other class amid a uniform field
    params = BayesSmoothing(window=5)
    labels, _, _ = decide(smooth_block(pad_to_halo(percent, (2, 2), (2, 2)), NODATA, params), [1, 2], NODATA)
    assert (labels == 1).all(), "the lone pixel takes its neighbours' class"
    half = np.zeros((2, 9, 9), dtype=np.uint8)
    half[0, :, :4], half[1, :, :4] = 95, 5
    half[0, :, 4:], half[1, :, 4:] = 5, 95
    labels, _, percent_out = decide(
        smooth_block(pad_to_halo(half, (2, 2), (2, 2)), NODATA, params), [1, 2], NODATA
    )
    assert (labels[:, :4] == 1).all(), "a straight border stays where it is"
    assert (labels[:, 4:] == 2).all(), "a straight border stays where it is"
    assert (np.abs(percent_out.astype(int).sum(axis=0) - 100) <= 1).all(), "percents still add up to 100"


@dataclass(frozen=True)
class Speckled:
    """A run of a noisy image (many small wrong patches) with its probabilities, and the image's truth."""

    run: Path
    truth: npt.NDArray[np.uint8]


@pytest.fixture(scope="module")
def speckled_run(tmp_path_factory: pytest.TempPathFactory) -> Speckled:
    folder = tmp_path_factory.mktemp("speckled")
    truth = truth_map((600, 640), 40, seed=3)
    image = write_image(folder / "image.tif", truth, 0.09, seed=3, nodata_corner=60)
    run = classify_image(train_model(folder), image, folder / "run", probabilities=True)
    return Speckled(run, truth)


@pytest.fixture(scope="module")
def smoothed(speckled_run: Speckled, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smoothed") / "bayes"
    smooth_run(speckled_run.run, out, BayesSmoothing())
    return out


def test_smoothing_a_speckled_map_brings_it_closer_to_the_truth(
    speckled_run: Speckled, smoothed: Path
) -> None:
    before, after = read_band(speckled_run.run / "classes.tif"), read_band(smoothed / "classes.tif")
    assert np.array_equal(after != NODATA, before != NODATA), "the same pixels are mapped"
    valid = before != NODATA
    truth = speckled_run.truth[valid]
    accuracy_before, accuracy_after = (before[valid] == truth).mean(), (after[valid] == truth).mean()
    assert accuracy_before < 0.95, f"the test needs a speckled map ({accuracy_before:.3f} right)"
    assert accuracy_after > accuracy_before + 0.03, (accuracy_before, accuracy_after)
    stats = json.loads((smoothed / "stats.json").read_text())
    assert stats["smoothing"]["changed_pixels"] == int(np.count_nonzero(before != after))


def test_the_smoothed_run_is_a_valid_run_of_cogs(speckled_run: Speckled, smoothed: Path) -> None:
    item = assert_valid_stac_file(smoothed / "item.json")
    assert item["properties"]["lulc:product"] == "smooth"
    assert item["properties"]["lulc:smoothing"]["window"] == 9
    assert item["id"].endswith("-bayes9"), "sits' defaults name the window only"
    assert item["links"][0]["rel"] == "derived_from"
    for name in MAPS:
        valid, errors, _ = cog_validate(str(smoothed / name), quiet=True)
        assert valid, (name, errors)
    with (
        rasterio.open(smoothed / "probabilities.tif") as src,
        rasterio.open(smoothed / "classes.tif") as labels,
    ):
        percent, classes = src.read(), labels.read(1)
        values = np.array([int(src.tags(b + 1).get("UNITS") == "percent") for b in range(src.count)])
    assert values.all()
    mapped = classes != NODATA
    assert (np.abs(percent[:, mapped].astype(int).sum(axis=0) - 100) <= src.count).all()


def test_the_bytes_do_not_depend_on_the_block_size_or_the_workers(
    speckled_run: Speckled, smoothed: Path, tmp_path: Path
) -> None:
    other = tmp_path / "blocks"
    smooth_run(speckled_run.run, other, BayesSmoothing(), block_size=37, workers=1)
    for name in MAPS:
        assert (other / name).read_bytes() == (smoothed / name).read_bytes(), name


def test_cli_smooth(speckled_run: Speckled, tmp_path: Path) -> None:
    result = lulc("smooth", speckled_run.run, "--out", tmp_path / "s", "--window", "5", "--smoothness", "10")
    assert result.returncode == 0, result.stderr
    assert "Bayesian smoothing in 5 x 5 windows" in result.stdout
    assert json.loads((tmp_path / "s" / "stats.json").read_text())["smoothing"]["smoothness"][0] == 10.0
    source = json.loads((speckled_run.run / "item.json").read_text())["id"]
    item = json.loads((tmp_path / "s" / "item.json").read_text())
    assert item["id"] == f"{source}-bayes5-s10", "the id tells two smoothness settings apart"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "4"], "odd number of pixels from 3 to 31, got 4"),
        (["--window", "99"], "odd number of pixels from 3 to 31, got 99"),
        (["--neigh-fraction", "0"], "neighbourhood fraction must be in (0, 1], got 0"),
        (["--smoothness", "ten"], "--smoothness 'ten' is not a number"),
        (["--smoothness", "-1"], "smoothness must be positive numbers, got -1.0"),
        (["--smoothness", "1,2"], "2 smoothness values for"),
    ],
)
def test_cli_bad_option_is_one_line(
    speckled_run: Speckled, tmp_path: Path, args: list[str], message: str
) -> None:
    result = lulc("smooth", speckled_run.run, "--out", tmp_path / "s", *args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "s").exists()


def test_a_run_without_probabilities_says_how_to_make_them(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    plain = two_runs(tmp_path_factory).first
    with pytest.raises(InputError, match=r"no probabilities\.tif: classify with --probabilities"):
        smooth_run(plain, tmp_path / "s", BayesSmoothing())
    with pytest.raises(InputError, match="is the input run folder"):
        smooth_run(plain, plain, BayesSmoothing())


def test_the_tiler_shows_the_smoothed_map_as_a_layer_of_its_source(
    speckled_run: Speckled, tmp_path: Path
) -> None:
    from tiler.allowlist import AllowList
    from tiler.runs import find_runs

    root = tmp_path / "runs"
    shutil.copytree(speckled_run.run, root / "map")
    smooth_run(root / "map", root / "map-smoothed", BayesSmoothing(window=5))
    (run,) = find_runs(root, AllowList.from_prefixes([str(root)]).check)
    assert run.id == "map"
    assert [layer.kind for layer in run.layers][:2] == ["classes", "smooth"]
    (layer,) = [layer for layer in run.layers if layer.kind == "smooth"]
    assert layer.title == "Smoothed: Bayesian, 5 x 5 window"
    assert Path(layer.url) == root / "map-smoothed" / "classes.tif"


def test_a_damaged_probability_map_is_one_line_naming_it(speckled_run: Speckled, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(speckled_run.run, run)
    data = (run / "probabilities.tif").read_bytes()
    (run / "probabilities.tif").write_bytes(data[: len(data) // 2])
    done = lulc("smooth", run, "--out", tmp_path / "s")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr  # no "smoothing blocks: 0/2" before it
    assert lines[-1].startswith(f"error: {run / 'probabilities.tif'} cannot be read, damaged or cut short: ")
    assert not (tmp_path / "s").exists()


def test_a_map_folder_is_not_overwritten_by_a_smoothed_map(speckled_run: Speckled, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(speckled_run.run, other)
    before = {p.name: p.read_bytes() for p in other.iterdir()}
    done = lulc("smooth", speckled_run.run, "--out", other)
    assert done.returncode == 2
    assert "holds a map (lulc classify), not a smoothed map (lulc smooth)" in done.stderr
    assert {p.name: p.read_bytes() for p in other.iterdir()} == before


def test_assess_compares_the_smoothed_map_with_its_source(
    speckled_run: Speckled, smoothed: Path, tmp_path: Path
) -> None:
    """`lulc assess` on the smoothed map also assesses the map it was made from, on the same points."""
    from tests.support.points import write_pixel_points
    from training.assess import assess_map, render_assessment

    truth = speckled_run.truth
    rng = np.random.default_rng(1)
    rows, cols = np.unravel_index(rng.choice(truth.size, 500, replace=False), truth.shape)
    keep = (rows >= 60) | (cols >= 60)  # not in the nodata corner
    points = write_pixel_points(
        tmp_path / "points.gpkg", rows[keep], cols[keep], truth[rows[keep], cols[keep]]
    )
    result = assess_map(smoothed, points, "label")
    source = speckled_run.run / "classes.tif"
    assert result["source"]["map"] == str(source.resolve())
    assert result["source"]["made"] == "smoothed"
    change = result["accuracy_change"]
    assert change["overall_accuracy"] > 2 * change["overall_accuracy_se"] > 0
    assert f"smoothed from {source.resolve()}: overall accuracy" in render_assessment(result)
