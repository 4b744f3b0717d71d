"""A finished model folder replaces an earlier one in two renames; a failure between them loses neither."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.outputs import install


def _model(folder: Path, text: str) -> Path:
    folder.mkdir()
    (folder / "model.onnx").write_text(text)
    (folder / "model.json").write_text(text)
    return folder


def test_a_new_model_replaces_the_earlier_one(tmp_path: Path) -> None:
    out = _model(tmp_path / "model", "old")
    install(_model(tmp_path / ".new", "new"), out)
    assert (out / "model.onnx").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # the earlier one's hidden folder gone


def test_the_earlier_model_comes_back_when_the_new_one_cannot_move_in(tmp_path: Path) -> None:
    """Review: an interrupt or failure between the two renames left no model at --out."""
    out = _model(tmp_path / "model", "old")
    with pytest.raises(FileNotFoundError):
        install(tmp_path / ".vanished", out)  # the second rename fails: nothing to move in
    assert (out / "model.onnx").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
