"""The ``lulc`` program's entry point: the command line's imports under a Ctrl-C guard.

Importing the command line takes about half a second (NumPy, rasterio, pydantic); a Ctrl-C then printed
Python's traceback (once NumPy's misleading "failed to import" error) instead of ending quietly, exit 130,
as a Ctrl-C during a run does.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Import the command line, then run it (``lulc.cli.main``)."""
    try:
        from lulc.cli import main as run
    except KeyboardInterrupt:
        sys.exit(130)
    run()
