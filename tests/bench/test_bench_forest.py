"""The random-forest settings benchmark on a tiny scene: it runs end to end and reports every setting.

Not a timed assertion (``python -m bench.forest_settings --size 2000`` measures): this keeps the code working.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT = (100, None)
"""scikit-learn's forest, which ``lulc train`` keeps."""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    work = tmp_path_factory.mktemp("bench-forest")
    command = [
        sys.executable,
        "-m",
        "bench.forest_settings",
        "--size=256",
        "--pixels=4096",
        "--eval-pixels=2000",
        "--cv-repeats=2",  # 10 folds: 100 took 42 s of the smoke's 57
        f"--work={work}",
        f"--results-dir={work}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    written: dict[str, Any] = json.loads((work / "forest-256.json").read_text())
    assert json.loads(done.stdout.splitlines()[-1]) == written
    return written, (work / "forest-settings.md").read_text()


def test_every_setting_is_timed_and_scored(run: tuple[dict[str, Any], str]) -> None:
    result, _ = run
    rows = {(row["n_estimators"], row["max_depth"]): row for row in result["settings"]}
    assert len(rows) == len(result["settings"]) >= 6  # no setting twice
    assert DEFAULT in rows
    assert {depth for _, depth in rows} >= {None, 12}
    assert {trees for trees, _ in rows} >= {100, 25}
    assert rows[DEFAULT]["same_label_as_default"] == 1.0
    for row in rows.values():
        assert row["mpx_cpu_s"] > 0
        assert 0.3 < row["accuracy"] <= 1.0  # six classes: a forest of these samples is far above chance
        assert 0 < row["accuracy_se"] < 0.05
    # the control: the settings are different forests, not one model timed eight times
    assert min(row["same_label_as_default"] for row in rows.values()) < 1.0
    assert result["evaluation_pixels"] > 1000
    assert result["pixels_timed"] >= 4096 * 0.9


def test_the_table_lists_every_setting_with_the_machine(run: tuple[dict[str, Any], str]) -> None:
    result, markdown = run
    assert result["machine"]["cpu"] in markdown
    cv = result["tutorial_cv"]
    rows = 1 + len(result["settings"]) + (0 if isinstance(cv, str) else 1 + len(cv))
    assert markdown.count("\n| ") == rows  # the headers and a row per setting (and per tree count)


def test_the_tutorial_points_score_every_tree_count(run: tuple[dict[str, Any], str]) -> None:
    cv = run[0]["tutorial_cv"]
    if not (REPO.parent / "shared" / "data" / "lulc_py" / "samples.shp").is_file():
        pytest.skip("../shared/data/lulc_py is absent")
    assert [row["n_estimators"] for row in cv] == sorted({row["n_estimators"] for row in cv}, reverse=True)
    for row in cv:
        assert row["folds"] == 10
        assert 0.8 < row["accuracy"] <= 1.0  # Water is never confused, the rest rarely
    assert "5-fold stratified CV repeated 2 times" in run[1]
