"""Whether this process can write in a folder: asked before the work, so a read-only output fails first."""

from __future__ import annotations

import os
from pathlib import Path

from lulc.errors import InputError


def check_writable(folder: Path, named: str, error: type[Exception] = InputError) -> None:
    """Refuse a folder this process cannot make files in or rename files out of.

    ``named`` starts the message (``--out runs/map``); ``error`` is the caller's error type. A read-only
    mount is refused also for root, whom file permissions do not stop.

    Raises:
        error: ``{named}: cannot write in {folder} (read-only or not yours)``.
    """
    if not os.access(folder, os.W_OK | os.X_OK):
        raise error(f"{named}: cannot write in {folder} (read-only or not yours)")


def check_file_writable(path: Path, named: str, error: type[Exception] = InputError) -> None:
    """Refuse, before any work, a file ``path`` whose folder (or nearest existing parent) is not writable.

    CLI review: the write failed after the work, naming the hidden temporary file beside ``path``.
    """
    folder = nearest_existing(path.parent)
    if folder is not None:
        check_writable(folder, named, error)


def nearest_existing(path: Path) -> Path | None:
    """``path`` (made absolute) if it exists, else its nearest existing parent: where it would be made."""
    here = path.absolute()
    return next((p for p in (here, *here.parents) if p.exists()), None)
