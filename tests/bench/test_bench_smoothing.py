"""``bench/smoothing.py`` on one small noisy demo world: the script keeps working and its numbers add up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_one_noisy_world_is_mapped_smoothed_and_scored(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "bench.smoothing",
        "--size",
        "384",
        "--windows",
        "3,5",
        "--noise",
        "0.03",
    ]
    done = subprocess.run(
        [*command, "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "smoothing.json").read_text())
    assert result["noise"] == 0.03
    (world,) = result["results"]
    source, *smoothed = world["rows"]
    assert [row["window"] for row in smoothed] == [3, 5]
    for row in smoothed:
        assert row["changed_pixels"] > 0
        assert row["cpu_s_per_mpx"] > 0
        assert row["truth_agreement"] > source["truth_agreement"], row  # speckle is what smoothing removes
    assert "| 0 | 3 x 3, fraction 0.5, smoothness 20 |" in (tmp_path / "smoothing.md").read_text()
    assert not (tmp_path / "world-0").exists()  # removed after its world
