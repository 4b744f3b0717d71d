"""bench/tiles.py runs both servers on the same COG without errors and reports comparable numbers."""

from __future__ import annotations

import pytest

from bench import tiles
from tests.tiler.conftest import Runs


@pytest.mark.slow
def test_tile_benchmark_short_run(tiler_runs: Runs) -> None:
    results = tiles.run(tiler_runs.main / "classes.tif", seconds=1.5, clients=8, rounds=2)
    assert results["rounds"] == 2
    for kind in ("lulc", "titiler"):
        assert results[kind]["errors"] == 0, results[kind]["error_samples"]
        assert results[kind]["requests"] > 0
        assert results[kind]["p95_ms"] >= results[kind]["p50_ms"] > 0
    assert results["same_tile_bytes"], "both servers render the class colours from the COG's colour table"
    assert results["ratio"]["p50"] > 0
