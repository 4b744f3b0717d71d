"""The one progress seam: training and classification report stages and steps; a CLI shows a rich bar."""

from __future__ import annotations

from typing import Any, Protocol

from rich.console import Console


class Progress(Protocol):
    """Receives stage starts, steps and notes (training stages, classification blocks, a job's progress)."""

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


class NoteKeeper:
    """Progress that keeps every note (``notes``) and passes everything on to ``inner``.

    A notebook's run shows no bar, and its notes (points dropped, classes left out) were lost with it.
    """

    def __init__(self, inner: Progress | None = None) -> None:
        self.inner: Progress = inner or NullProgress()
        self.notes: list[str] = []

    def start(self, description: str, total: int) -> None:
        """Pass on."""
        self.inner.start(description, total)

    def advance(self, steps: int = 1) -> None:
        """Pass on."""
        self.inner.advance(steps)

    def note(self, message: str) -> None:
        """Keep, and pass on."""
        self.notes.append(message)
        self.inner.note(message)


class RichProgress:
    """Progress as a rich progress bar on a terminal; elsewhere only the notes, each one unwrapped line."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        self.console = console
        self.bar = Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
            transient=False,
        )
        self.task: Any = None
        self.stage: tuple[str, int] | None = None
        self.done = 0

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.bar.stop()
        if exc_type is None:
            self._summarise()
        self.stage = None  # a failed stage's count ("classifying blocks: 0/1") came before its one-line error

    def _summarise(self) -> None:
        """Off a terminal (no bar), one line per finished stage: ``description: done/total``."""
        if self.stage is not None and not self.console.is_terminal:
            self.note(f"{self.stage[0]}: {self.done}/{self.stage[1]}")
        self.stage = None

    def start(self, description: str, total: int) -> None:
        """A new bar for the stage."""
        self._summarise()
        self.stage, self.done = (description, total), 0
        self.task = self.bar.add_task(description, total=total)

    def advance(self, steps: int = 1) -> None:
        """Advance the current bar."""
        self.done += steps
        if self.task is not None:
            self.bar.advance(self.task, steps)

    def note(self, message: str) -> None:
        """Print a line above the bars."""
        self.console.print(message, highlight=False, markup=False, soft_wrap=True)
