"""The ``lulc`` program of this environment: run in this process (``lulc``), or as a separate process.

``lulc(...)`` runs ``lulc.cli.main`` here, as the program does after its start-up: the same errors, lines
and exit codes, without the second of imports each process pays (the suite ran about 100 such processes).
``lulc_program(...)`` runs the installed program itself, for what only a process shows: its start-up,
signals, a server's port.
"""

from __future__ import annotations

import contextlib
import io
import signal
import subprocess
import sys
from pathlib import Path

LULC = Path(sys.executable).parent / "lulc"


def lulc(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``lulc ARGS...`` run in this process: stdout and stderr captured, the exit code not checked.

    ``lulc.cli.main`` makes SIGTERM and Ctrl-C unwind a run; this process's handlers are put back after.
    """
    from lulc.cli import main

    argv = [str(a) for a in args]
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    return subprocess.CompletedProcess(["lulc", *argv], code, out.getvalue(), err.getvalue())


def lulc_program(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``lulc ARGS...`` as a separate process (text output captured, exit code unchecked)."""
    return subprocess.run(
        [str(LULC), *map(str, args)], capture_output=True, text=True, timeout=300, check=False
    )
