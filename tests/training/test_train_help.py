"""`lulc train --help` shows what a left-out flag means: the recipe's value, else the built-in default."""

from __future__ import annotations

from typing import Any

import typer

from lulc.cli import app
from training.config import CvOptions, TrainingConfig

CV_FLAGS = {"folds": "folds", "repeats": "repeats", "cv_scheme": "scheme", "test_size": "test_size"}


def _default(name: str) -> str:
    fields: Any = CvOptions.model_fields if name in CV_FLAGS else TrainingConfig.model_fields
    value = fields[CV_FLAGS.get(name, name)].get_default(call_default_factory=True)
    return ",".join(value) if isinstance(value, list) else str(value)


def test_every_shown_default_is_the_configs() -> None:
    """README review: `lulc train --help` showed no defaults (and leaving out --models trains rf only)."""
    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    shown = {p.name: p.show_default for p in command.params if isinstance(p.show_default, str)}
    assert {"models", "folds", "repeats", "cv_scheme", "test_size", "seed", "select"} <= shown.keys()
    for name, text in shown.items():
        assert text == f"recipe's, else {_default(name)}", name
