"""``lulc --version``: the installed package's version, and nothing else runs (review: there was none)."""

from __future__ import annotations

import subprocess
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
