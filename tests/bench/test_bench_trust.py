"""The AOA + class sets cost benchmark on a tiny scene: it runs end to end and measures what it says.

Not a timed assertion (``python -m bench.trust --size 10000`` measures the cost): this keeps the code working.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("bench-trust")
    command = [sys.executable, "-m", "bench.trust", "--size=256", "--repeats=1", f"--work={work}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    written: dict[str, Any] = json.loads((work / "trust-256.json").read_text())
    assert json.loads(done.stdout.splitlines()[-1]) == written
    return written


def test_the_four_configurations_ran_on_the_same_map(result: dict[str, Any]) -> None:
    files = result["files"]
    assert files["with"] == ["aoa.tif", "classes.tif", "confidence.tif", "sets.tif"]
    assert files["aoa"] == ["aoa.tif", "classes.tif", "confidence.tif"]
    assert files["without"] == ["classes.tif", "confidence.tif"]
    assert files["plain"] == ["classes.tif", "confidence.tif"]
    assert result["same_map"] == {"aoa": 1.0, "without": 1.0, "plain": 1.0}
    facts = result["model_facts"]
    assert facts["reference_samples"] > 0
    assert facts["aoa_threshold"] > 0


def test_the_figures_are_ratios_of_measured_processes(result: dict[str, Any]) -> None:
    for key in ("with", "aoa", "without", "plain"):
        assert result[key]["wall_s"] > 0
        assert result[key]["wall_s"] <= result[key]["wall_s_median"] <= max(result[key]["wall_s_all"])
        # a process's CPU time: more than nothing, at most every core busy for its whole run
        assert 0 < result[key]["cpu_s"] <= result["machine"]["cores"] * result[key]["wall_s"] + 1
        assert 20 < result[key]["peak_rss_mib"] < 16 * 1024  # a real process alone, not the machine
    cost = result["ratios"]["with_over_plain"]
    for figure in ("wall_s", "cpu_s", "peak_rss_mib"):
        assert cost[figure] == pytest.approx(result["with"][figure] / result["plain"][figure], abs=2e-3)
    split = result["median_ratios"]["with_over_aoa"]["cpu_s"]
    assert split == pytest.approx(result["with"]["cpu_s_median"] / result["aoa"]["cpu_s_median"], abs=2e-3)
    assert set(result["targets"]) == {
        "cpu_with_over_plain_lt_1.2",
        "wall_with_over_plain_lt_1.2",
        "peak_rss_with_over_plain_le_1.05",
    }
    assert result["machine"]["cores"] >= 1
