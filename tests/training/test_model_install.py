"""A finished model folder replaces an earlier one in two renames; a failure between them loses neither."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.mounts import PRIVATE_MOUNTS, REASON, errors_under_mounts
from training.errors import ConfigError
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


def test_a_versioned_out_below_a_file_is_refused_before_any_work(tmp_path: Path) -> None:
    """Training-inputs review: ``--out afile/{version}`` was checked only after the whole training."""
    from typer.testing import CliRunner

    from lulc.cli import app

    (tmp_path / "afile").write_text("")
    out = f"{tmp_path / 'afile'}/{{version}}"
    result = CliRunner().invoke(app, ["train", "--image", "x.tif", "--points", "missing.gpkg", "--out", out])
    assert isinstance(result.exception, ConfigError), result.output  # not the missing points: before them
    assert (
        str(result.exception) == f"--out {out} is below the file {tmp_path / 'afile'}: give a folder's path"
    )


def test_a_placeholder_other_than_version_is_refused_before_any_work(tmp_path: Path) -> None:
    """CLI review: ``--out models/v-{verison}`` wrote a folder of that name, exit 0."""
    from typer.testing import CliRunner

    from lulc.cli import app

    out = f"{tmp_path}/v-{{verison}}"
    result = CliRunner().invoke(app, ["train", "--image", "x.tif", "--points", "missing.gpkg", "--out", out])
    assert isinstance(result.exception, ConfigError), result.output  # not the missing points: before them
    assert "{verison} in " in str(result.exception)
    assert "only {version} is" in str(result.exception)
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not PRIVATE_MOUNTS, reason=REASON)
def test_a_mount_point_or_a_read_only_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    """Training-inputs review: a volume as --out trained, then failed to move it, leaving a folder beside it.

    A read-only folder failed after the training too. Real mounts, in a private mount namespace.
    """
    for name in ("source", "volume", "readonly"):
        (tmp_path / name).mkdir()
    mounts = "mount --bind source volume && mount --bind source readonly && mount -o remount,ro,bind readonly"
    lines = errors_under_mounts(
        tmp_path, mounts, "training.outputs:check_model_out", ["volume", "readonly/model"]
    )
    assert lines == [
        "ConfigError --out volume is a mount point, which cannot be replaced whole: give a folder inside it, "
        "e.g. --out volume/model",
        f"ConfigError --out readonly/model: cannot write in {tmp_path / 'readonly'} (read-only or not yours)",
    ]
