"""bench/tiles.py runs both servers on the same COG without errors and reports comparable numbers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.tiler.conftest import Runs

BENCH = Path(__file__).resolve().parents[2] / "bench" / "tiles.py"


def _load_bench_tiles() -> ModuleType:
    """bench/tiles.py as a module (bench/ is a folder of scripts, not an installed package)."""
    spec = importlib.util.spec_from_file_location("bench_tiles", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tile_benchmark_short_run(tiler_runs: Runs) -> None:
    results = _load_bench_tiles().run(tiler_runs.main / "classes.tif", seconds=1.5, clients=8, rounds=2)
    assert results["rounds"] == 2
    for kind in ("lulc", "titiler"):
        assert results[kind]["errors"] == 0, results[kind]["error_samples"]
        assert results[kind]["requests"] > 0
        assert results[kind]["p95_ms"] >= results[kind]["p50_ms"] > 0
    assert results["same_tile_bytes"], "both servers render the class colours from the COG's colour table"
    assert results["ratio"]["p50"] > 0
