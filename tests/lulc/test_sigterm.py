"""SIGTERM (``kill``, ``timeout``, a stopped container) unwinds a run: its staging files are removed."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import LULC

RUN = """
import os, signal, sys, time
from pathlib import Path
from lulc.signals import Terminated, stop_cleanly_on_sigterm
from service.output import staging_dir

if sys.argv[2] == "ours":
    stop_cleanly_on_sigterm()
try:
    with staging_dir(Path(sys.argv[1])) as staging:
        (staging / "classes.tmp.tif").write_bytes(bytes(1000))
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
except Terminated:
    sys.exit(143)
"""


def _run(out: Path, handler: str) -> int:
    done = subprocess.run([sys.executable, "-c", RUN, str(out), handler], timeout=60, check=False)
    return done.returncode


def test_a_terminated_run_removes_its_staging_and_the_folder_it_made(tmp_path: Path) -> None:
    # Python's default: killed on the spot, the staging folder left in --out for a day
    assert _run(tmp_path / "default" / "out", "default") == -signal.SIGTERM
    assert any((tmp_path / "default" / "out").iterdir())
    assert _run(tmp_path / "ours" / "out", "ours") == 143
    assert not (tmp_path / "ours").exists(), "staging and the folders made for --out are gone"


def test_every_lulc_command_stops_cleanly_on_sigterm() -> None:
    """``lulc.cli.main`` installs the handler before any command runs."""
    code = (
        "import signal\n"
        "from lulc import cli, signals\n"
        "try:\n"
        "    cli.main(['--version'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(signal.getsignal(signal.SIGTERM) is signals._on_sigterm)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_server_stopped_by_sigterm_or_ctrl_c_ends_by_it_saying_no_error(tmp_path: Path, stop: int) -> None:
    """A server shuts down cleanly, then ends by the signal, without a word of error.

    Diff review: uvicorn re-sends SIGTERM to itself after a clean shutdown; with the run handler in place
    ``lulc tiler`` then printed "error: terminated" (and ``lulc serve`` waited for its job threads). Jobs
    review: after Ctrl-C the process went on (exit 0) and shut the interpreter down under ``lulc serve``'s
    running jobs, each then recorded as an internal error instead of interrupted.
    """
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(LULC), "tiler", "--host", "127.0.0.1", "--port", str(port), "--allow", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal starts it
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    assert answer.status == 200
                break
            except OSError:
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline, "the tiler never answered"
                time.sleep(0.2)
        server.send_signal(stop)
        _, stderr = server.communicate(timeout=30)
    finally:
        server.kill()
    assert "error:" not in stderr, stderr
    assert "Application shutdown complete" in stderr
    assert server.returncode == -stop


HELD = """
import os, signal, sys, time
from pathlib import Path
from lulc.signals import Interrupted, Terminated, held, stop_cleanly_on_sigterm

stop_cleanly_on_sigterm()
done = Path(sys.argv[1])
try:
    with held():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)  # both handlers have run by now: put off, not raised
        with held():
            time.sleep(0.05)
        done.write_text("renamed")  # what the block was for
    sys.exit(0)
except Interrupted:
    sys.exit(130)
except Terminated:
    sys.exit(143)
"""


def test_signals_during_held_wait_for_the_block_and_the_first_one_unwinds_it(tmp_path: Path) -> None:
    """Review: Ctrl-C between the renames that replace a result left it half replaced."""
    marker = tmp_path / "done"
    held = subprocess.run([sys.executable, "-c", HELD, str(marker)], timeout=60, check=False)
    assert held.returncode == 130  # Ctrl-C came first; it unwinds once the block is done
    assert marker.read_text() == "renamed"


def test_a_signal_wrapped_by_an_extensions_import_is_raised_as_itself() -> None:
    """Review: Ctrl-C while onnxruntime initialised came out as ImportError: "not a readable ONNX model"."""
    import pytest

    from lulc.signals import Interrupted, Terminated, raise_wrapped_signal

    for signal_error in (Interrupted, Terminated):
        try:
            try:
                raise signal_error
            except BaseException as inner:
                raise ImportError("initialization failed") from inner
        except ImportError as wrapped:
            with pytest.raises(signal_error):
                raise_wrapped_signal(wrapped)
    raise_wrapped_signal(ImportError("a real one"))  # nothing wrapped: the caller goes on
