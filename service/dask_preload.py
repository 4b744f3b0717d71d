"""Preloaded by each worker of a local Dask cluster (``--dask-scheduler local:N``): Ctrl-C is for ``lulc``.

A terminal sends Ctrl-C to every process of its foreground group: each worker printed a
``KeyboardInterrupt`` traceback (72 lines in all for two) before ``lulc``'s one line. The workers ignore it
now; ``lulc`` unwinds the run and closes the cluster, which stops them.
"""

from __future__ import annotations

import signal
from typing import Any


def dask_setup(worker: Any) -> None:
    """Ignore SIGINT in this worker process (Dask calls this as the worker starts, in its main thread)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
