"""Paths of the infra tests and the command-line tools installed in the venv."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
VENV_BIN = ROOT / ".venv" / "bin"


def venv_tool(name: str) -> Path:
    """Path of a command-line tool in the project's venv; skip (with the reason) only if it is absent."""
    path = VENV_BIN / name
    if path.exists():
        return path
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (expected {path}; `make install` installs it)")
    return Path(found)
