"""The polygon-sampling benchmark on a small scene: every setting runs and gives the same samples.

Not a timed assertion (``python -m bench.polygon_sampling`` measures): this keeps the code working.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_parts_and_all_at_once_are_measured_and_sample_alike(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "bench.polygon_sampling", "--size", "600", "--grid", "3", "--polygon", "150",
        "--batches", "0,30000", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "polygon-sampling.json").read_text())
    assert json.loads(done.stdout.splitlines()[-1]) == result
    whole, parts = result["settings"]
    assert result["same_samples"] is True
    assert whole["digest"] == parts["digest"]
    assert whole["samples"] == parts["samples"] == 9 * 30
    assert parts["blocks_read"] > whole["blocks_read"]  # nine parts of one polygon each, re-reading blocks
    assert parts["traced_peak_mib"] < whole["traced_peak_mib"]
    assert all(row["peak_rss_mib"] > 0 for row in result["settings"])
    assert "| all at once |" in (tmp_path / "out" / "polygon-sampling.md").read_text()
