"""Blocks as tasks on a dask.distributed cluster (``--dask-scheduler ADDRESS`` or ``local:N``).

The model and the reader are scattered to every worker once and reused by all its tasks (the ONNX
session is created lazily, once per worker process). Results come back to the client, which writes them
in block order: the output is byte-identical to a single-process run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from typing import Any

from lulc.errors import InputError
from lulc.grid import OutputGrid
from lulc.pixels import BlockReader
from service.blocks import BlockResult, classify_block, ordered
from service.runner import ModelRunner


@contextlib.contextmanager
def connect(scheduler: str) -> Iterator[Any]:
    """A dask.distributed ``Client`` of ``scheduler``: an address, or ``local:N`` (a local cluster of N)."""
    from distributed import Client, LocalCluster

    if scheduler.startswith("local:"):
        try:
            n_workers = int(scheduler.split(":", 1)[1])
        except ValueError:
            n_workers = 0
        if n_workers < 1:
            raise InputError(f"--dask-scheduler {scheduler!r}: expected local:N with N >= 1")
        with (
            LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    _check_host(scheduler)
    try:
        client = Client(scheduler, timeout="20s")
    except OSError as exc:
        raise InputError(f"cannot connect to the Dask scheduler {scheduler!r}: {exc}") from exc
    with client:
        yield client


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
) -> Generator[BlockResult, None, None]:
    """Block results in block order, computed as Dask tasks (a bounded number in flight)."""
    with connect(scheduler) as client:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
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

        yield from ordered(grid.blocks(), submit, 4 * n_workers, on_close=lambda: None)
