"""Replacing a run in place: its old item goes before its files, so no item pairs old and new files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.output import move_into_place


def test_a_replacement_dying_between_renames_leaves_no_item_over_mixed_files(tmp_path: Path) -> None:
    """Review: a kill between the renames could leave the old item.json beside the new classes.tif."""
    out, staging = tmp_path / "run", tmp_path / "staging"
    out.mkdir()
    staging.mkdir()
    for name in ("classes.tif", "stats.json", "item.json"):
        (out / name).write_text(f"old {name}")
    (staging / "classes.tif").write_text("new classes.tif")
    (staging / "item.json").write_text(json.dumps({"id": "new"}))
    # stats.json is missing from staging: the replacement fails after classes.tif was renamed
    with pytest.raises(FileNotFoundError):
        move_into_place(staging, out, ["classes.tif", "stats.json", "item.json"])
    assert (out / "classes.tif").read_text() == "new classes.tif"
    assert not (out / "item.json").exists()  # no old description of new files
    # control: a complete replacement ends with the new item
    (staging / "stats.json").write_text("new stats.json")
    move_into_place(staging, out, ["stats.json", "item.json"])
    assert json.loads((out / "item.json").read_text()) == {"id": "new"}
