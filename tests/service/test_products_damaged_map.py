"""A run folder whose map is damaged: every product says which file, in one line, exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.service.products_support import Runs, two_runs
from tests.support.cli import lulc


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return two_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def damaged(runs: Runs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of a run whose classes.tif lost its second half (its header and tile index stay)."""
    run = tmp_path_factory.mktemp("damaged") / "run"
    shutil.copytree(runs.first, run)
    data = (run / "classes.tif").read_bytes()
    (run / "classes.tif").write_bytes(data[: len(data) // 2])
    return run


@pytest.mark.parametrize(
    "command",
    [
        ["clean", "{run}", "--mmu-ha", "0.5", "--out", "{tmp}/clean"],
        ["vectorize", "{run}", "--out", "{tmp}/patches.gpkg"],
        ["design", "{run}", "--out", "{tmp}/sample.gpkg"],
        ["change", "{run}", "{other}", "--out", "{tmp}/change"],
    ],
)
def test_a_damaged_map_is_one_line_naming_it(
    damaged: Path, runs: Runs, tmp_path: Path, command: list[str]
) -> None:
    """Review: each printed "unexpected RasterioIOError: Read failed. See previous exception", exit 1."""
    args = [a.format(run=damaged, other=runs.second, tmp=tmp_path) for a in command]
    done = lulc(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()  # CLI review: "cleaning blocks: 0/4" came before the error
    assert len(lines) == 1, done.stderr
    expected = f"error: {damaged / 'classes.tif'} cannot be read, damaged or cut short: "
    assert lines[-1].startswith(expected), lines
    assert list(tmp_path.iterdir()) == []


def test_a_map_without_a_crs_is_one_line_without_rasterios_warning(runs: Runs, tmp_path: Path) -> None:
    """CLI review: rasterio's NotGeoreferencedWarning came first, two more lines on stderr."""
    import rasterio

    run = tmp_path / "run"
    shutil.copytree(runs.first, run)
    with rasterio.open(runs.first / "classes.tif") as src:
        data, profile = src.read(), src.profile
    profile.update(driver="GTiff", crs=None)
    (run / "classes.tif").unlink()
    with rasterio.open(run / "classes.tif", "w", **profile) as dst:
        dst.write(data)
    done = lulc("clean", run, "--mmu-ha", "0.5", "--out", tmp_path / "clean")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"error: {run / 'classes.tif'} has no CRS: every map lulc writes has one (is the file cut short?)"
    ]
