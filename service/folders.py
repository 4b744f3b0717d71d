"""Folders a run makes for its outputs, and removes again when it leaves them empty."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def made_folders(path: Path) -> Iterator[None]:
    """Make ``path`` and its missing parents; on leaving, remove the ones made here that are empty.

    Only the folders this process made (one made meanwhile by another is not ours), deepest first, up to
    the first that is not empty: a finished run's outputs keep theirs, a failed one leaves no trace.
    """
    made: list[Path] = []
    try:
        for folder in reversed((path, *path.parents)):
            if not folder.exists():
                try:
                    folder.mkdir()
                    made.insert(0, folder)
                except FileExistsError:
                    pass
        yield
    finally:
        for folder in made:
            try:
                folder.rmdir()
            except OSError:
                break
