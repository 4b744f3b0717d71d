"""Issue 14's side-by-side bench (``python -m bench.peers``) on tiny scenes: it runs and writes sane figures.

Not a timed assertion (performance is measured by ``make bench``): this keeps the script working. The
pyspatialml peer needs its own environment from the package index, so it is left out here with the script's
own ``--no-pyspatialml`` flag; the report must then say so.
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
def peers_run(lulc_py: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("peers")
    command = [
        sys.executable,
        "-m",
        "bench.peers",
        "--size=1024",
        "--tiles=1x2",
        "--no-pyspatialml",
        f"--work={out / 'work'}",
        f"--results-dir={out}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "results.json").read_text()), (out / "RESULTS.md").read_text()


def test_both_scenes_are_measured_against_inference_alone(peers_run: tuple[dict[str, Any], str]) -> None:
    results, _ = peers_run
    assert results["errors"] == {}
    peers = results["peers"]
    tiled, full = peers["scenes"]
    assert (tiled["height"], tiled["width"]) == (406, 2 * 763)  # the tutorial image, 1 row x 2 columns
    assert (full["height"], full["width"]) == (1024, 1024)
    for scene in (tiled, full):
        assert scene["service"]["wall_s"] > 0
        assert scene["service"]["cpu_s"] > 0
        assert 20 < scene["service"]["peak_rss_mib"] < 16 * 1024
        assert scene["floor"]["pixels"] == scene["height"] * scene["width"]
        assert scene["ratios"]["service_over_floor"] > 0
        # The same SVM: our map (decided from the probabilities) and the tutorial's (predict) mostly agree.
        assert scene["agreement"]["service_vs_tutorial"] > 0.9
        assert scene["ratios"]["tutorial_over_service"] > 0
        assert scene["ratios"]["pyspatialml_over_service"] is None
    assert set(peers["targets"]) == {
        "tiled_over_tutorial_ge_4",
        "tiled_over_pyspatialml_ge_4",
        "full_tile_lt_60s",
        "full_tile_rss_lt_1GiB",
        "end_to_end_ge_0.85",
    }
    assert peers["targets"]["tiled_over_pyspatialml_ge_4"] is None  # not measured: not judged
    runtimes = peers["runtimes"]  # per core on the same SVM: ours, ONNX Runtime's operator, scikit-learn
    assert runtimes["pixels"] == 406 * 2 * 763 // 8
    for kind in ("ours_1t", "stock_1t", "sklearn_1t"):
        assert runtimes[kind]["mpx_cpu_s"] > 0
    assert runtimes["ours_label_agreement"] > 0.999
    assert runtimes["target_per_core"] == 2.5
    marginal = peers["marginal"]  # the larger scene has more pixels: its extra CPU per Mpx is a figure
    assert marginal["floor_cpu_s_per_mpx"] > 0
    assert marginal["floor_over_service"] is None or marginal["floor_over_service"] > 0


def test_the_report_says_pyspatialml_was_left_out(peers_run: tuple[dict[str, Any], str]) -> None:
    _, text = peers_run
    assert "| 6. peers | pyspatialml | not run: --no-pyspatialml |" in text
    assert "A / C throughput: wall (per CPU second)" in text
    assert "tutorial-1x2 (1,526 x 406 px" in text
    assert "| 6. peers, the tutorial's SVM per core (77,444 px of tutorial-1x2.tif) | svm: per core" in text
