"""The ``lulc`` program's entry point: the command line's imports shielded from Ctrl-C.

Importing the command line takes about half a second (NumPy, rasterio, pydantic). A Ctrl-C then printed
Python's traceback, or NumPy's misleading "numpy._core.multiarray failed to import" when it landed in a
C extension's import. SIGINT is held back while the imports run and delivered right after them, where it
ends the program quietly with 130; during a run ``lulc.cli`` turns it into one line, exit 130.
"""

from __future__ import annotations

import signal
import sys


def main() -> None:
    """Import the command line with SIGINT held back, then run it (``lulc.cli.main``)."""
    held = hasattr(signal, "pthread_sigmask")  # POSIX; elsewhere the imports stay interruptible
    try:
        if held:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            from lulc.cli import main as run
        finally:
            if held:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a pending Ctrl-C arrives here
        run()  # ends with sys.exit; a Ctrl-C before it has set its handlers ends below
    except KeyboardInterrupt:
        sys.exit(130)
