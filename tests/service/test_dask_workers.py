"""The Dask path as workers come and go: a clear error without any, more tasks as they join (review)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest

from lulc.grid import OutputGrid
from service.blocks import ordered
from service.dask_runner import NoWorkersError, run_blocks_dask


def test_a_scheduler_without_workers_is_a_clear_error_not_a_scatter_timeout() -> None:
    """Review: `error: unexpected TimeoutError: No valid workers found` after 20 s, exit 1."""
    from distributed import LocalCluster

    grid = OutputGrid("EPSG:32633", __import__("rasterio").transform.from_origin(0, 0, 10, 10), 64, 64, 32)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        with pytest.raises(NoWorkersError, match=f"no Dask worker joined the scheduler {address} within 1 s"):
            next(run_blocks_dask(address, None, None, grid, False, worker_wait=1))  # type: ignore[arg-type]


def test_blocks_in_flight_follow_a_limit_that_changes() -> None:
    """The in-flight cap is asked at every refill (it was the worker count at connect, 4 tasks at most)."""
    limits = [1, 1, 3, 3, *[6] * 30]  # one worker thread at first, then more join
    asked: list[int] = []
    in_flight: list[int] = []
    outstanding = 0

    def limit() -> int:
        asked.append(limits[len(asked)])
        return asked[-1]

    class Done(Future[Any]):
        def result(self, timeout: float | None = None) -> Any:
            nonlocal outstanding
            outstanding -= 1  # taken from the queue
            return super().result(timeout)

    def submit(block: Any) -> Future[Any]:
        nonlocal outstanding
        outstanding += 1
        assert outstanding <= asked[-1]  # never more than the limit of the moment
        in_flight.append(outstanding)
        future = Done()
        future.set_result(block)
        return future

    blocks: Any = iter(range(20))  # stand-ins for Block: ordered only hands them to submit
    results = list(ordered(blocks, submit, limit, on_close=lambda: None))
    assert results == list(range(20))  # in order, every block once
    assert in_flight[0] == 1
    assert max(in_flight) == 6, in_flight  # grew with the workers
