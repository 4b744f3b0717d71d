"""Blocks as tasks on a dask.distributed cluster (``--dask-scheduler ADDRESS`` or ``local:N``).

The model and the reader are scattered to every worker once and reused by all its tasks (the ONNX
session is created lazily, once per worker process). Results come back to the client, which writes them
in block order: the output is byte-identical to a single-process run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Generator, Iterator
from typing import Any

from lulc.errors import InputError, UpstreamError
from lulc.grid import OutputGrid
from lulc.pixels import BlockReader
from service.blocks import BlockResult, classify_block, ordered
from service.runner import ModelRunner

WORKER_WAIT_S = 120.0
"""How long a run waits for a first Dask worker (a cluster's workers fetch the models before they join)."""


class NoWorkersError(UpstreamError):
    """No Dask worker joined the scheduler in time (the service answers 503: retry once workers are up)."""


class SchedulerUnavailableError(NoWorkersError):
    """The Dask scheduler's address resolves but nothing answers there yet (a cluster still starting)."""


@contextlib.contextmanager
def connect(scheduler: str, timeout: float = 20.0) -> Iterator[Any]:
    """A dask.distributed ``Client`` of ``scheduler``: an address, or ``local:N`` (a local cluster of N).

    Raises:
        InputError: a malformed address, or a host that does not resolve.
        SchedulerUnavailableError: nothing answered at the address within ``timeout`` seconds.
    """
    from distributed import Client, LocalCluster

    n_workers = check_scheduler(scheduler)
    if n_workers is not None:
        with (
            LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                preload=["service.dask_preload"],  # Ctrl-C is for lulc, which stops the workers
                silence_logs=logging.ERROR,  # not a warning per task cancelled by a Ctrl-C
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(scheduler, timeout=f"{timeout}s")
    except OSError as exc:  # refused or timed out: a cluster still starting, retry (its host resolved)
        raise SchedulerUnavailableError(f"cannot connect to the Dask scheduler {scheduler!r}: {exc}") from exc
    with client:
        yield client


def check_scheduler(scheduler: str) -> int | None:
    """Check a scheduler's form before any work: ``local:N`` gives N, an address None once its host resolves.

    Raises:
        InputError: ``local:`` without a count of at least 1, no address, or a host that does not resolve.
    """
    if scheduler.startswith("local:"):
        try:
            n_workers = int(scheduler.split(":", 1)[1])
        except ValueError:
            n_workers = 0
        if n_workers < 1:
            raise InputError(f"--dask-scheduler {scheduler!r}: expected local:N with N >= 1")
        return n_workers
    _check_host(scheduler)
    return None


def _check_host(scheduler: str) -> None:
    """Refuse an address whose host does not resolve at once (``lcoal:2``), not after a 20 s timeout."""
    import socket

    from distributed.comm import parse_address, parse_host_port

    try:
        scheme, location = parse_address(scheduler)
        if scheme not in ("tcp", "tls", "ws", "wss"):  # inproc:// (a cluster in this process): no host
            return
        host, _ = parse_host_port(location)
    except ValueError as exc:
        raise InputError(f"--dask-scheduler {scheduler!r}: no address (tcp://HOST:PORT or local:N)") from exc
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        hint = " (local:N starts a local cluster)" if host.lower() != "local" and _near_local(host) else ""
        raise InputError(f"--dask-scheduler {scheduler!r}: unknown host {host!r}{hint}") from None


def _near_local(host: str) -> bool:
    import difflib

    return bool(difflib.get_close_matches(host.lower(), ["local"], n=1, cutoff=0.6))


def run_blocks_dask(
    scheduler: str,
    model: ModelRunner,
    reader: BlockReader,
    grid: OutputGrid,
    confidence: bool,
    layers: frozenset[str] = frozenset(),
    worker_wait: float = WORKER_WAIT_S,
) -> Generator[BlockResult, None, None]:
    """Block results in block order, computed as Dask tasks (a bounded number in flight).

    Raises:
        NoWorkersError: no worker joined within ``worker_wait`` seconds (was a TimeoutError of the scatter).
    """
    with connect(scheduler) as client:
        try:
            client.wait_for_workers(1, timeout=worker_wait)
        except TimeoutError:
            raise NoWorkersError(
                f"no Dask worker joined the scheduler {scheduler} within {worker_wait:g} s: start workers "
                f"(`dask worker {scheduler}`) or use local:N"
            ) from None

        def in_flight() -> int:
            """Four tasks a worker thread, counted as workers join or leave (review: fixed at connect)."""
            workers = client.scheduler_info().get("workers", {}).values()
            return 4 * max(1, sum(int(w.get("nthreads", 1)) for w in workers))

        shared_model, shared_reader, shared_grid = (
            client.scatter(obj, broadcast=True) for obj in (model, reader, grid)
        )

        def submit(block: Any) -> Any:
            return client.submit(
                classify_block,
                shared_model,
                shared_reader,
                shared_grid,
                block,
                confidence,
                layers,
                pure=False,
                retries=0,
            )

        yield from ordered(grid.blocks(), submit, in_flight, on_close=lambda: None)
