"""The progress seam: the pipeline reports stages; the command line shows them as a rich progress bar."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives stage starts, steps and notes from the training pipeline."""

    def start(self, description: str, total: int) -> None:
        """A new stage of ``total`` steps begins."""
        ...

    def advance(self, steps: int = 1) -> None:
        """``steps`` steps of the current stage are done."""
        ...

    def note(self, message: str) -> None:
        """A line worth showing the user (dropped points, leaderboard, choices made)."""
        ...


class NullProgress:
    """Progress that shows nothing (library use, tests)."""

    def start(self, description: str, total: int) -> None:
        """Ignore."""

    def advance(self, steps: int = 1) -> None:
        """Ignore."""

    def note(self, message: str) -> None:
        """Ignore."""
