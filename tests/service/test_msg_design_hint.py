"""``lulc design``'s closing hint: the columns to fill and the command reading them, for a map or a change."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.change import change_runs
from tests.service.products_support import Runs, two_runs
from tests.support.cli import lulc


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return two_runs(tmp_path_factory)


def design_hint(folder: Path, out: Path) -> str:
    """The last line ``lulc design FOLDER --out OUT`` prints."""
    done = lulc("design", str(folder), "--out", str(out), "--target-se", "0.05", "--min-per-class", "5")
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


def test_a_change_sample_names_both_columns_and_lulc_change(runs: Runs, tmp_path: Path) -> None:
    change = change_runs(runs.first, runs.second, tmp_path / "change", block_size=128)
    sample = tmp_path / "change_sample.gpkg"
    hint = design_hint(change.out_dir, sample)
    assert "`label_a` and `label_b` columns" in hint
    assert f"lulc change RUN_A RUN_B --out OUT --points {sample}" in hint
    assert "lulc assess" not in hint
    assert "`label` column" not in hint
    assert "keep change_sample.json beside it" in hint


def test_a_map_sample_names_its_label_column_and_lulc_assess(runs: Runs, tmp_path: Path) -> None:
    sample = tmp_path / "map_sample.fgb"
    hint = design_hint(runs.first, sample)
    assert "keep map_sample.json beside it" in hint
    assert "`label` column" in hint
    assert f"lulc assess MAP.tif --points {sample}" in hint
