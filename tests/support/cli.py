"""The ``lulc`` program of this environment: run in this process (``lulc``), or as a separate process.

``lulc(...)`` runs ``lulc.cli.main`` here, as the program does after its start-up: the same errors, lines
and exit codes, without the second of imports each process pays (the suite ran about 100 such processes).
``lulc_program(...)`` runs the installed program itself, for what only a process shows: its start-up,
signals, a server's port.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

LULC = Path(sys.executable).parent / "lulc"


def lulc(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``lulc ARGS...`` run in this process: stdout and stderr captured, the exit code not checked.

    ``lulc.cli.main`` makes SIGTERM and Ctrl-C unwind a run; this process's handlers are put back after.
    Warnings go to the captured stderr under Python's default filters, as the program shows them (pytest
    would collect them in its summary instead, and a test of "one line on stderr" pass wrongly).
    """
    from lulc.cli import main

    argv = [str(a) for a in args]
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(),
        ):
            warnings.resetwarnings()  # Python's defaults, as the program starts with
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)
            warnings.showwarning = _to_stderr
            main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    return subprocess.CompletedProcess(["lulc", *argv], code, out.getvalue(), err.getvalue())


def _to_stderr(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """Print a warning as Python's default ``showwarning`` does, to ``sys.stderr`` as it is now."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def lulc_program(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``lulc ARGS...`` as a separate process (text output captured, exit code unchecked), ``env`` added."""
    return subprocess.run(
        [str(LULC), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **env} if env else None,
    )
