"""The ``lulc`` program of this environment, run as a user runs it: a separate process, output captured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LULC = Path(sys.executable).parent / "lulc"


def lulc(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``lulc ARGS...`` (text output captured, five minutes at most, the exit code not checked)."""
    return subprocess.run(
        [str(LULC), *map(str, args)], capture_output=True, text=True, timeout=300, check=False
    )
