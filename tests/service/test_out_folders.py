"""What a command may write into: its own new, empty or earlier folder or file, never anyone else's.

CLI review: ``lulc classify --out ""`` wrote a run's files into the current folder (and ``--out /`` into the
root); ``lulc clean`` and ``lulc change`` wrote over a map's folder (a change took its ``item.json``, a
cleaned map left the old AOA beside new classes); ``lulc vectorize`` replaced a labelled validation sample
without a word; a path below a file ended as "unexpected NotADirectoryError", exit 1.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service.products_support import Runs, two_runs
from tests.support.cli import LULC, lulc
from tests.support.mounts import PRIVATE_MOUNTS, REASON, errors_under_mounts


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return two_runs(tmp_path_factory)


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by its path, with its SHA-256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def one_error_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert done.stderr.rstrip("\n").splitlines()[-1] == errors[0]
    for word in words:
        assert word in errors[0], errors[0]


def classify_args(runs: Runs, image: str) -> list[str]:
    return ["classify", "--image", image, "--model", str(runs.model), "--datetime", "2024-06-01"]


def test_the_current_folder_is_refused_and_left_as_it_was(runs: Runs, tmp_path: Path) -> None:
    here = tmp_path / "work"
    here.mkdir()
    (here / "notes.txt").write_text("mine")
    image = str(runs.first.parent / "a.tif")
    for out in ("", ".", str(here)):
        done = subprocess.run(
            [str(LULC), *classify_args(runs, image), "--out", out],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        one_error_line(done, "is the current folder")
    assert sorted(p.name for p in here.iterdir()) == ["notes.txt"]
    published = lulc("publish", runs.first, "/")
    one_error_line(published, "destination / is the file system's root: name a folder")


def test_publish_refuses_a_folder_of_other_runs_or_a_model(runs: Runs, tmp_path: Path) -> None:
    """Review: a map published into a folder of runs' folders, or a model's, mixed its files with theirs."""
    maps = tmp_path / "maps"
    shutil.copytree(runs.first, maps / "2024")
    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(runs.model, model / "model.onnx")
    before = digest(tmp_path)
    series = f"destination {maps} holds a series of maps"
    one_error_line(lulc("publish", runs.second, maps), series, "not a map")
    one_error_line(lulc("publish", runs.second, model), f"destination {model} holds a model (lulc train)")
    one_error_line(lulc("publish", tmp_path / "nothing", maps), "is not a run folder (no item.json)")
    # CLI review: a series (and a model) as the run was "not a run folder (no item.json)" too
    one_error_line(
        lulc("publish", maps, tmp_path / "out"),
        f"{maps} is a series of maps (lulc classify --every): give one of its periods' folders, "
        f"e.g. {maps}/2024",
    )
    one_error_line(lulc("publish", model, tmp_path / "out"), f"{model} is a model (lulc train), not a run")
    assert digest(tmp_path) == before
    assert lulc("publish", runs.second, maps / "2025").returncode == 0, "a folder of its own, beside them"


def test_every_period_a_series_names_is_a_period_name_and_a_series_is_not_written_among_runs(
    runs: Runs, tmp_path: Path
) -> None:
    """``PERIOD_NAME`` knows a series' folders by the labels ``service.series`` gives its periods.

    A series is not written into a folder of other runs (``--every`` was let in: such a folder counted as a
    series).
    """
    from lulc.errors import InputError
    from service.output import PERIOD_NAME, SERIES, check_out_folder
    from service.series import split_periods

    for every in ("year", "season", "month"):
        for period in split_periods("2020-12-01/2022-02-28", every):
            assert PERIOD_NAME.fullmatch(period.label), period.label
    assert not any(PERIOD_NAME.fullmatch(name) for name in ("2021-13", "2021-ABC", "a", "2021-07-01"))
    shutil.copytree(runs.first, tmp_path / "runs" / "a")
    with pytest.raises(InputError, match=r"holds a set of runs \(one in each subfolder\), not a series"):
        check_out_folder(tmp_path / "runs", SERIES)


def test_a_folder_of_runs_is_not_called_a_series(runs: Runs, tmp_path: Path) -> None:
    """A folder of runs whose subfolders are named as no period is, is not a series.

    Notes: ``lulc publish runs/a runs`` said "destination runs holds a series of maps (lulc classify
    --every)"; so did ``lulc publish runs`` and ``lulc clean runs``.
    """
    folder = tmp_path / "runs"
    shutil.copytree(runs.first, folder / "a")
    before = digest(tmp_path)
    one_error_line(
        lulc("publish", folder / "a", folder),
        f"destination {folder} holds a set of runs (one in each subfolder), not a map",
    )
    one_error_line(
        lulc("publish", folder, tmp_path / "out"),
        f"{folder} is a folder of runs, not a run: give one of them, e.g.",
    )
    one_error_line(
        lulc("clean", folder, "--mmu-ha", "1", "--out", tmp_path / "clean"),
        f"{folder} is a folder of runs (a): give one of them, e.g. {folder / 'a'}",
    )
    assert digest(tmp_path) == before


def test_a_folder_of_other_files_or_another_products_run_is_refused(runs: Runs, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    image = str(runs.first.parent / "a.tif")
    one_error_line(lulc(*classify_args(runs, image), "--out", mine), "holds files of no run (notes.txt)")
    # CLI review: lulc publish wrote the run's files among them
    one_error_line(lulc("publish", runs.first, mine), f"destination {mine} holds files of no run (notes.txt)")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    a_map = tmp_path / "map"
    shutil.copytree(runs.first, a_map)
    before = digest(a_map)
    cleaned = lulc("clean", runs.second, "--mmu-ha", "0.3", "--out", a_map)
    one_error_line(cleaned, "holds a map (lulc classify), not a cleaned map (lulc clean)")
    change = lulc("change", runs.first, runs.second, "--out", a_map)
    one_error_line(change, "holds a map (lulc classify), not a change (lulc change)")
    assert digest(a_map) == before
    # README review: a model folder was "files of no run (confusion_matrix.png, metrics.json, ...)"
    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(runs.model, model / "model.onnx")
    (model / "metrics.json").write_text("{}")
    one_error_line(lulc(*classify_args(runs, image), "--out", model), "holds a model (lulc train), not a map")
    assert sorted(p.name for p in model.iterdir()) == ["metrics.json", "model.onnx"]
    # controls: a rerun into its own folder, a cleaned map into an earlier cleaned map's
    assert lulc(*classify_args(runs, image), "--out", a_map).returncode == 0
    assert lulc("clean", runs.first, "--mmu-ha", "0.3", "--out", tmp_path / "clean").returncode == 0
    again = lulc("clean", runs.second, "--mmu-ha", "0.3", "--out", tmp_path / "clean")
    assert again.returncode == 0, again.stderr


def test_vectorize_replaces_only_its_own_patches_unless_told(runs: Runs, tmp_path: Path) -> None:
    sample = tmp_path / "sample.gpkg"
    designed = lulc("design", runs.first, "--out", sample, "--min-per-class", "5")
    assert designed.returncode == 0, designed.stderr
    before = digest(tmp_path)
    refused = lulc("vectorize", runs.first, "--out", sample)
    one_error_line(refused, f"--out {sample} exists and holds no patches", "--overwrite")
    assert digest(tmp_path) == before  # the labelled sample and its item are untouched
    patches = tmp_path / "patches.gpkg"
    assert lulc("vectorize", runs.first, "--out", patches).returncode == 0
    assert lulc("vectorize", runs.second, "--out", patches).returncode == 0  # a rerun replaces its own
    (tmp_path / "keep.fgb").write_text("not patches")
    assert lulc("vectorize", runs.first, "--out", tmp_path / "keep.fgb", "--overwrite").returncode == 0


@pytest.mark.skipif(sys.platform != "linux", reason="the paths the system refuses are Linux's")
def test_paths_the_system_refuses_are_one_line_exit_2(runs: Runs, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    image = str(runs.first.parent / "a.tif")
    below = lulc(*classify_args(runs, image), "--out", tmp_path / "a-file" / "run")
    one_error_line(below, "Not a directory", str(tmp_path / "a-file" / "run"))
    long_name = lulc(*classify_args(runs, image), "--out", tmp_path / ("x" * 300))
    one_error_line(long_name, "File name too long")


def test_the_python_api_refuses_the_same_folders(runs: Runs, tmp_path: Path) -> None:
    from lulc.errors import InputError
    from service import api

    (tmp_path / "notes.txt").write_text("mine")
    image = runs.first.parent / "a.tif"
    with pytest.raises(InputError, match=r"holds files of no run \(notes.txt\)"):
        api.classify(runs.model, image=image, out=tmp_path, datetime="2024-06-01")
    with pytest.raises(InputError, match="holds files of no run"):
        api.classify_series(runs.model, stac="x.json", aoi=None, datetime="2024", every="year", out=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_series_and_older_runs_are_known_by_what_they_hold(runs: Runs, tmp_path: Path) -> None:
    """Series and cleaned maps of before `lulc:product` are runs of their kind.

    Diff review: a series cut short (no collection.json yet) was refused for its own rerun, a map was let into
    a series folder, and a cleaned map of before `lulc:product` counted as a map.
    """
    import json

    from lulc.errors import InputError
    from service.output import SERIES, check_out_folder, product_in

    series = tmp_path / "years"
    shutil.copytree(runs.first, series / "2024")  # one period done, the collection not written yet
    check_out_folder(series, SERIES)
    with pytest.raises(InputError, match=r"holds a series of maps \(lulc classify --every\), not a map"):
        check_out_folder(series, None)
    with pytest.raises(InputError, match=r"holds a map \(lulc classify\), not a series of maps"):
        check_out_folder(series / "2024", SERIES)
    old_clean = tmp_path / "old-clean"
    shutil.copytree(runs.first, old_clean)
    item = json.loads((old_clean / "item.json").read_text())
    item["properties"]["lulc:mmu_pixels"] = 5
    (old_clean / "item.json").write_text(json.dumps(item))
    assert product_in(old_clean) == "clean"


def test_only_the_systems_refusals_of_a_path_are_bad_input() -> None:
    from rasterio.errors import RasterioIOError

    from lulc.cli import _refused_path

    assert _refused_path(FileNotFoundError(2, "No such file or directory", "/proc/x"))
    assert not _refused_path(RasterioIOError("Read failed. See previous exception for details."))
    assert not _refused_path(OSError("no file named"))


@pytest.mark.skipif(not PRIVATE_MOUNTS, reason=REASON)
def test_a_read_only_out_is_refused_by_its_own_name_before_any_work(tmp_path: Path) -> None:
    """CLI review: the error named the run's staging folder (.lulc-staging-...), found after the start."""
    for name in ("source", "readonly"):
        (tmp_path / name).mkdir()
    mounts = "mount --bind source readonly && mount -o remount,ro,bind readonly"
    lines = errors_under_mounts(
        tmp_path, mounts, "service.output:check_out_folder", ["readonly", "readonly/new/run"]
    )
    refused = f"cannot write in {tmp_path / 'readonly'} (read-only or not yours)"
    assert lines == [
        f"InputError --out readonly: {refused}",
        f"InputError --out readonly/new/run: {refused}",
    ]


@pytest.mark.skipif(not PRIVATE_MOUNTS, reason=REASON)
def test_a_file_out_in_a_read_only_folder_is_refused_by_its_own_name_before_any_work(tmp_path: Path) -> None:
    """CLI review: assess, vectorize and design named their hidden temporary file, after the work."""
    from tests.support.mounts import run_with_mounts

    for name in ("source", "readonly"):
        (tmp_path / name).mkdir()
    mounts = "mount --bind source readonly && mount -o remount,ro,bind readonly"
    code = """
from pathlib import Path
from service.design import check_sample_out
from service.vectorize import check_item_path
from training.assess import check_assessment_out
for check, out in (
    (lambda p: check_assessment_out(p), "readonly/a.json"),
    (lambda p: check_sample_out(p, False), "readonly/new/s.gpkg"),
    (lambda p: check_item_path(p, "patches", False), "readonly/v.gpkg"),
    (lambda p: check_sample_out(p, False), "writable.gpkg"),
):
    try:
        check(Path(out))
    except Exception as exc:
        print(type(exc).__name__, exc)
"""
    done = run_with_mounts(tmp_path, mounts, code)
    assert done.returncode == 0, done.stderr
    refused = f"cannot write in {tmp_path / 'readonly'} (read-only or not yours)"
    assert done.stdout.splitlines() == [
        f"AssessError --out readonly/a.json: {refused}",
        f"InputError --out readonly/new/s.gpkg: {refused}",
        f"InputError --out readonly/v.gpkg: {refused}",
    ]
