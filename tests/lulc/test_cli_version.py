"""``lulc --version``: the installed package's version, and nothing else runs (review: there was none)."""

from __future__ import annotations

import gc
import subprocess
import sys
from importlib.metadata import version

import pytest

from lulc.cli import main
from tests.support.cli import LULC


def test_version_prints_the_installed_packages_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"lulc {version('lulc-stac')}\n"
    done = subprocess.run([str(LULC), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"lulc {version('lulc-stac')}"
    assert done.stderr == ""


def test_the_program_freezes_its_heap_when_done_and_in_process_callers_keep_theirs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Exiting collected every object the imports made (0.15-0.2 s a command): the program freezes them."""
    gc.unfreeze()
    with pytest.raises(SystemExit):
        main(["--version"])
    assert gc.get_freeze_count() == 0  # a caller's own process: still collectable
    monkeypatch.setattr(sys, "argv", ["lulc", "--version"])
    try:
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
