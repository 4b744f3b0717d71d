"""The benchmark runner in quick mode on a tiny scene: it runs end to end and writes complete, sane results.

Not a timed assertion (performance is measured by ``make bench``): this keeps the benchmark code working.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, Path]:
    out = tmp_path_factory.mktemp("bench")
    command = [
        sys.executable,
        str(REPO / "bench" / "run.py"),
        "--size=256",
        "--parts=classify,sampling,runtimes,scaleout",
        "--models=dt",
        "--points=300",
        "--naive-points=40",
        "--runtime-models=dt,svm",
        "--runtime-pixels=4096",
        "--scaleout-model=dt",
        f"--work={out / 'work'}",
        f"--results-dir={out}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    return results, (out / "RESULTS.md").read_text(), out


def test_no_part_failed_or_was_skipped(quick_run: tuple[dict, str, Path]) -> None:
    results, _, _ = quick_run
    assert results["errors"] == {}
    assert results["skipped"] == {}
    assert results["finished"]


def test_machine_is_described(quick_run: tuple[dict, str, Path]) -> None:
    machine = quick_run[0]["machine"]
    assert machine["cores"] >= 1
    assert machine["ram_gib"] > 0
    assert machine["cpu"]
    assert "onnxruntime" in machine["libraries"]
    assert "GDAL" in machine["libraries"]


def test_classification_figures_are_measured(quick_run: tuple[dict, str, Path]) -> None:
    (entry,) = quick_run[0]["classify"]
    assert entry["model"] == "dt"
    assert entry["megapixels"] == pytest.approx(256 * 256 / 1e6)
    assert entry["service"]["mpx_s"] > 0
    assert entry["service"]["wall_s"] > 0
    # A real process's own peak RSS: more than an interpreter, less than the whole machine.
    assert 20 < entry["service"]["peak_rss_mib"] < 16 * 1024
    assert entry["floor"]["pixels"] == 256 * 256
    assert entry["floor"]["mpx_s"] > 0
    (tutorial,) = entry["tutorial"]
    assert tutorial["size"] == 256
    assert tutorial["peak_rss_mib"] > 20
    assert set(tutorial["timings"]) == {"read_s", "features_s", "predict_s", "write_s"}
    assert entry["ratios"]["service_over_floor"] > 0
    assert entry["ratios"]["speedup_over_tutorial"] > 0
    assert set(entry["targets"]) == {
        "service_over_floor_ge_0.8",
        "speedup_over_tutorial_ge_1.5",
        "service_peak_rss_lt_1GiB",
    }
    # Same pixels, same model: the service's map and the tutorial's map agree (dt: no probability rounding).
    assert entry["agreement"]["agreement"] > 0.99


def test_sampling_counts_requests_at_the_server(quick_run: tuple[dict, str, Path]) -> None:
    sampling = quick_run[0]["sampling"]
    grouped, naive = sampling["grouped"], sampling["naive"]
    assert grouped["sampled"] == 300
    assert grouped["blocks_read"] >= 1
    assert grouped["requests"] >= 1
    assert naive["points"] == 40
    assert naive["requests"] >= 1
    assert naive["extrapolated"] is True
    # Both read the same pixels: the naive loop's 40 points are the first 40 of the grouped sampler's 300,
    # and their reflectance sums agree (each rounded to 3 decimals; float32 against float64 arithmetic)
    assert grouped["sampled_first"] == 40
    assert naive["checksum"] > 0
    assert naive["checksum"] == pytest.approx(grouped["checksum_first"], abs=2e-3)
    assert isinstance(sampling["targets"]["requests_bounded_by_blocks"], bool)


def test_scaleout_runs_give_identical_maps(quick_run: tuple[dict, str, Path]) -> None:
    scaleout = quick_run[0]["scaleout"]
    assert set(scaleout["runs"]) == {"dask_local_1", "dask_local_2", "threaded_2_workers"}
    assert all(run["mpx_s"] > 0 for run in scaleout["runs"].values())
    assert scaleout["outputs_byte_identical"] is True


def test_runtimes_compare_our_graph_the_stock_operators_and_sklearn(
    quick_run: tuple[dict, str, Path],
) -> None:
    dt, svm = quick_run[0]["runtimes"]["models"]
    assert (dt["model"], svm["model"]) == ("dt", "svm")
    for row in (dt, svm):
        for key in ("ours_1t", "ours_2t", "stock_1t", "stock_2t", "sklearn_1t"):
            assert row[key]["mpx_s"] > 0
            assert row[key]["mpx_cpu_s"] > 0
        assert row["sklearn_2t"] is None  # neither a decision tree nor libsvm has a thread option
        assert row["ours_label_agreement"] >= 0.9999
        assert row["stock_label_agreement"] >= 0.9999
    assert svm["target_per_core"] == 2.5
    assert dt["target_per_core"] is None
    _, text, _ = quick_run
    assert "svm: per core, Mpx per CPU second (1 thread): ours / ONNX Runtime stock / scikit-learn" in text


def test_results_md_has_the_table(quick_run: tuple[dict, str, Path]) -> None:
    _, text, _ = quick_run
    assert "| Part | Figure | Value | Target | Result |" in text
    for part in ("1. classify dt", "2. sampling", "4. scale-out", "5. model runtimes"):
        assert part in text
    assert "AMD" in text or "Intel" in text or "cores" in text
