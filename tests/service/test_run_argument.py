"""``lulc clean`` and ``lulc vectorize`` take a run folder or its ``classes.tif`` (the map ``assess`` takes).

Review of the README walkthrough: given ``runs/demo/classes.tif`` both said "run folder ... does not exist"
although the file exists.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.service.products_support import Runs, read_band, two_runs
from tests.support.cli import lulc


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return two_runs(tmp_path_factory)


def test_clean_and_vectorize_take_the_runs_classes_tif(runs: Runs, tmp_path: Path) -> None:
    classes = runs.first / "classes.tif"
    for name, given in (("by-map", classes), ("by-run", runs.first)):
        cleaned = lulc("clean", given, "--mmu-ha", "0.3", "--out", tmp_path / name)
        assert cleaned.returncode == 0, cleaned.stderr
        vectors = lulc("vectorize", given, "--out", tmp_path / f"{name}.fgb")
        assert vectors.returncode == 0, vectors.stderr
    assert (
        read_band(tmp_path / "by-map" / "classes.tif") == read_band(tmp_path / "by-run" / "classes.tif")
    ).all()
    by_map = json.loads((tmp_path / "by-map.json").read_text())
    by_run = json.loads((tmp_path / "by-run.json").read_text())
    assert by_map["properties"]["lulc:patches"] == by_run["properties"]["lulc:patches"]
    # another file of the folder is still no run
    other = lulc("clean", runs.first / "stats.json", "--mmu-ha", "0.3", "--out", tmp_path / "x")
    assert other.returncode == 2
    assert "is a file, not a run" in other.stderr
    assert other.stderr.count("\n") == 1


def test_a_model_given_by_a_relative_path_is_linked_from_the_item(
    runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative model path is linked from the item's folder.

    CLI review: a model folder without model.json, named relative to the working directory, was linked by
    that path from the item (``derived_from`` ``bad/m/model.onnx``): broken from the item's folder.
    """
    import shutil

    from tests.service.products_support import classify_image

    (tmp_path / "work" / "m").mkdir(parents=True)
    shutil.copy(runs.model, tmp_path / "work" / "m" / "model.onnx")
    monkeypatch.chdir(tmp_path / "work")
    out = classify_image(Path("m"), runs.first.parent / "a.tif", tmp_path / "elsewhere" / "run")
    item = json.loads((out / "item.json").read_text())
    (link,) = [k for k in item["links"] if k["rel"] == "derived_from" and k["title"].startswith("model")]
    assert (out / link["href"]).resolve() == (tmp_path / "work" / "m" / "model.onnx").resolve(), link
