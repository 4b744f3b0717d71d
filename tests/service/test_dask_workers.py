"""The Dask path as workers come and go: a clear error without any, more tasks as they join (review)."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from lulc.grid import OutputGrid
from service.blocks import ordered
from service.dask_runner import NoWorkersError, run_blocks_dask
from tests.service.conftest import WORLD_BANDS, EngineWorld
from tests.support.cli import LULC


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


def _cmdline(process: Any) -> list[str]:
    """A ``psutil.Process``'s command line, empty once it is gone."""
    import psutil

    try:
        return list(process.cmdline())
    except psutil.Error:
        return []


def _ignores_sigint(pid: int) -> bool:
    """Whether process ``pid`` ignores SIGINT (its ``SigIgn`` mask in ``/proc``)."""
    import signal

    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


@pytest.mark.slow
def test_ctrl_c_with_a_local_cluster_is_lulcs_one_line(engine_world: EngineWorld, tmp_path: Path) -> None:
    """Review: a terminal's Ctrl-C reaches the whole group: each worker printed its traceback (72 lines)."""
    import os
    import signal
    import subprocess
    import time

    import numpy as np
    import psutil
    import rasterio
    from rasterio.transform import from_origin

    image = tmp_path / "scene.tif"  # 2048 x 2048 px of the model's bands, in 1,024 blocks: a run of seconds
    patch = np.random.default_rng(0).uniform(0.02, 0.4, size=(len(WORLD_BANDS), 256, 256)).astype(np.float32)
    profile = {
        "driver": "GTiff", "width": 2048, "height": 2048, "count": len(WORLD_BANDS), "dtype": "float32",
        "crs": "EPSG:32633", "transform": from_origin(500_000, 5_000_000, 10, 10), "tiled": True,
        "compress": "deflate",
    }  # fmt: skip
    with rasterio.open(image, "w", **profile) as dst:
        dst.descriptions = WORLD_BANDS
        dst.write(np.tile(patch, (1, 8, 8)))
    process = subprocess.Popen(
        [
            str(LULC), "classify", "--image", str(image), "--model", str(engine_world.model),
            "--datetime", "2024-06-01", "--out", str(tmp_path / "out"), "--block-size", "64",
            "--dask-scheduler", "local:1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a group of its own, as a terminal's foreground job
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        workers: list[psutil.Process] = []
        while time.monotonic() < deadline and process.poll() is None:
            workers = [  # not multiprocessing's resource tracker, which ignores SIGINT of its own
                child
                for child in psutil.Process(process.pid).children(recursive=True)
                if "spawn_main" in " ".join(_cmdline(child))
            ]
            if workers and all(_ignores_sigint(w.pid) for w in workers):
                break  # the worker is up (before, none ever ignored it: Ctrl-C then after 60 s)
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "error: interrupted (Ctrl-C); the run's staging files were removed"
    assert "Traceback" not in stderr, stderr
    assert "KeyboardInterrupt" not in stderr, stderr
    assert "WARNING" not in stderr, stderr  # nor a line per task the closing cluster cancelled
    psutil.wait_procs(workers, timeout=30)
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]


def test_a_scheduler_that_does_not_answer_yet_is_an_upstream_error_not_bad_input() -> None:
    """Diff review: a cluster still starting exited 2 (bad input), so its Job failed at once, not retried."""
    import socket

    from lulc.errors import UpstreamError
    from service.dask_runner import SchedulerUnavailableError, connect

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        pytest.raises(SchedulerUnavailableError, match=f"tcp://127.0.0.1:{port}") as failed,
        connect(f"tcp://127.0.0.1:{port}", timeout=1.0),
    ):
        pass
    assert isinstance(failed.value, UpstreamError)
