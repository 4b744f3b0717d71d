"""``bench/coverage.py`` on one small demo world: the script keeps working and its numbers add up.

Not a statistical test (``tests/demo/test_trust.py`` is, on one world; the script's many worlds are a bench).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_one_world_is_trained_mapped_and_scored(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench.coverage", "--worlds", "1", "--seeds", "1", "--size", "384"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "coverage.json").read_text())
    (draw,) = result["draws"]
    assert draw["nominal"] == 0.9
    classes = draw["classes"]
    assert sum(c["n_validation"] for c in classes) == draw["n_validation"]
    covered = sum(c["covered_conformal"] for c in classes)
    assert covered / draw["n_validation"] == pytest.approx(draw["coverage_conformal"], abs=1e-6)
    assert 0.6 < draw["coverage_conformal"] <= 1.0
    assert "| **all** |" in (tmp_path / "coverage.md").read_text()
    assert not (tmp_path / "worlds" / "world-384-0").exists()  # removed after its draw without --keep
