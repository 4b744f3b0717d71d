"""bench/tiles.py runs both servers on the same COG without errors and reports comparable numbers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.tiler.conftest import Runs

BENCH = Path(__file__).resolve().parents[2] / "bench" / "tiles.py"


@pytest.mark.slow
def test_tile_benchmark_short_run(tiler_runs: Runs) -> None:
    spec = importlib.util.spec_from_file_location("bench_tiles", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.run(tiler_runs.main / "classes.tif", seconds=1.5, clients=8)
    for kind in ("lulc", "titiler"):
        assert results[kind]["errors"] == 0, results[kind]["error_samples"]
        assert results[kind]["requests"] > 0
        assert results[kind]["p95_ms"] >= results[kind]["p50_ms"] > 0
    assert results["same_tile_bytes"], "both servers render the class colours from the COG's colour table"
    assert results["ratio"]["p50"] > 0
