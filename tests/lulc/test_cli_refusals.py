"""Values refused up front in one line, exit 2.

CLI review: each was an "unexpected" error (exit 1), or came only after the work, or left an empty folder.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import lulc_program

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "lulc_py"
LEGACY_MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "pre-move-demo"


def assert_one_line(stderr: str, *words: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_a_negative_seed_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    done = lulc_program("demo-data", tmp_path / "world", "--seed", "-1")
    assert done.returncode == 2
    assert_one_line(done.stderr, "--seed", "greater than or equal to 0")
    assert not (tmp_path / "world").exists()  # it was made, and left empty


def test_a_tiler_allow_entry_of_another_scheme_is_a_settings_error(tmp_path: Path) -> None:
    done = lulc_program("tiler", "--allow", "ftp://maps.example/", "--port", "0")
    assert done.returncode == 2
    assert_one_line(done.stderr, "invalid LULC_TILER_* settings or options: allow", "ftp")
    # CLI review: a JSON list not closed named the class and not the variable either
    done = lulc_program("tiler", "--port", "0", env={"LULC_TILER_ALLOW": "[bad"})
    assert done.returncode == 2
    assert_one_line(done.stderr, "invalid LULC_TILER_* settings or options: allow: Expecting value")


def test_a_url_given_for_a_local_file_is_said_to_be_a_url(tmp_path: Path) -> None:
    """`--image https://host/s2.tif` said "image https:/host/s2.tif does not exist" (pathlib folds "//")."""
    from training.errors import ImageryError
    from training.imagery import open_local_imagery

    cases = [
        (
            ["classify", "--image", "https://maps.example/s2.tif", "--model", "m"],
            "image https://maps.example/s2.tif",
        ),
        (
            [
                "classify",
                "--stac",
                "c.json",
                "--datetime",
                "2024",
                "--aoi",
                "http://maps.example/aoi.geojson",
                "--model",
                "m",
            ],
            "AOI file http://maps.example/aoi.geojson",
        ),
        (["train", "--image", "i.tif", "--points", "s3://bucket/p.gpkg"], "points file s3://bucket/p.gpkg"),
        (
            ["classify", "--image", LEGACY_MODEL / "model.onnx", "--model", "https://m.example/m"],
            "model https://m.example/m",
        ),
        (
            ["assess", "gs://bucket/classes.tif", "--points", "p.gpkg", "--label-field", "l"],
            "map gs://bucket/classes.tif",
        ),
        (["clean", "HTTPS://maps.example/run", "--mmu-ha", "1"], "run folder https://maps.example/run"),
    ]
    for args, words in cases:
        done = lulc_program(*args, "--out", tmp_path / "out")
        assert done.returncode == 2, (args, done.stderr)
        assert_one_line(done.stderr, f"{words} is a URL", "give a file on this machine")
    with pytest.raises(ImageryError, match=r"^image https://maps\.example/s2\.tif is a URL"):
        open_local_imagery("https://maps.example/s2.tif", ["red"], None, None, None)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/lulc_py is absent")
def test_training_refuses_a_negative_seed_and_an_out_below_a_file_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    common = ["train", "--image", SHARED / "s2image.tif", "--points", SHARED / "samples.shp"]
    seed = lulc_program(*common, "--out", tmp_path / "model", "--seed", "-1")
    assert seed.returncode == 2
    assert_one_line(seed.stderr, "seed", "greater than or equal to 0")
    below = lulc_program(*common, "--out", tmp_path / "a-file" / "model")
    assert below.returncode == 2
    assert_one_line(below.stderr, f"is below the file {tmp_path / 'a-file'}")


@pytest.mark.parametrize(("command", "what"), [("serve", "the service"), ("tiler", "the tiler")])
def test_a_busy_port_is_one_line_not_uvicorns_traceback(command: str, what: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = lulc_program(command, "--host", "127.0.0.1", "--port", str(port))
    assert done.returncode == 2
    assert_one_line(done.stderr, f"{what} cannot listen on 127.0.0.1:{port}", "--port")


@pytest.mark.parametrize("after", [0.15, 0.3])
def test_ctrl_c_while_the_command_line_loads_ends_quietly(after: float) -> None:
    """CLI review: a Ctrl-C in the first half second (the imports) printed Python's traceback, rc -2."""
    import signal
    import subprocess
    import time

    from tests.support.cli import LULC

    process = subprocess.Popen(
        [str(LULC), "demo-data", "--help"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal starts it
    )
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode in (0, 130), (process.returncode, stderr)  # 0: it was done already
    assert "Traceback" not in stderr
    assert stderr in ("", "error: interrupted (Ctrl-C); the run's staging files were removed\n"), stderr


def interrupted_demo_data(world: Path, size: int, sigint: Any) -> tuple[int, str]:
    """``lulc demo-data`` started with ``sigint`` as SIGINT's disposition, sent SIGINT once it is writing."""
    import signal
    import subprocess
    import time

    from tests.support.cli import LULC

    process = subprocess.Popen(
        [str(LULC), "demo-data", str(world), "--size", str(size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
    )
    deadline = time.monotonic() + 60
    while not world.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def test_ctrl_c_during_a_run_is_one_line_exit_130(tmp_path: Path) -> None:
    """A Ctrl-C was click's "aborted" after an empty line, exit 1."""
    import signal

    code, stderr = interrupted_demo_data(tmp_path / "world", 2048, signal.SIG_DFL)  # as a terminal starts it
    assert code == 130, stderr
    assert stderr.splitlines()[-1:] == ["error: interrupted (Ctrl-C); the run's staging files were removed"]
    assert "Traceback" not in stderr


def test_misnamed_inputs_say_what_they_are(tmp_path: Path) -> None:
    (tmp_path / "map.tif").write_bytes(b"x")
    cases = [
        (["classify", "--image", tmp_path, "--model", tmp_path, "--datetime", "2024"], "is a folder"),
        (["clean", tmp_path / "map.tif", "--mmu-ha", "1", "--out", tmp_path / "c"], "is a file, not a run"),
        (
            ["classify", "--stac", "c.json", "--aoi", "", "--model", "m", "--datetime", "2024"],
            "name is empty",
        ),
        (["classify", "--stac", "c.json", "--max-cloud-cover", "-1", "--model", "m"], "--max-cloud-cover"),
        (
            ["classify", "--image", tmp_path / "map.tif", "--model", "m", "--dask-scheduler", "local:0"],
            "N >= 1",
        ),
    ]
    for args, words in cases:
        done = lulc_program(*args, *([] if "--out" in args else ["--out", tmp_path / "out"]))
        assert done.returncode == 2, (args, done.stderr)
        assert_one_line(done.stderr, words)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/lulc_py is absent")
def test_a_missing_baseline_fails_before_the_training(tmp_path: Path) -> None:
    done = lulc_program(
        "train", "--image", SHARED / "s2image.tif", "--points", SHARED / "samples.shp",
        "--out", tmp_path / "model", "--baseline", tmp_path / "nope" / "metrics.json",
    )  # fmt: skip
    assert done.returncode == 2
    assert_one_line(done.stderr, "cannot read baseline metrics")
    assert not (tmp_path / "model").exists()


def test_an_ignored_ctrl_c_stays_ignored(tmp_path: Path) -> None:
    """Diff review: a run started with SIGINT ignored (`lulc ... &` in a script) died of a Ctrl-C."""
    import signal

    code, stderr = interrupted_demo_data(tmp_path / "world", 512, signal.SIG_IGN)
    assert code == 0, stderr


def test_an_interrupted_or_refused_world_leaves_the_earlier_world_as_it_was(tmp_path: Path) -> None:
    """CLI review: the earlier world was cleared first: a Ctrl-C or a too large size left an empty folder."""
    import hashlib
    import signal
    import subprocess
    import time

    from tests.support.cli import LULC

    world = tmp_path / "world"
    assert lulc_program("demo-data", world, "--size", "128", "--seed", "1").returncode == 0

    def digest() -> dict[str, str]:
        return {
            str(p.relative_to(world)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(world.rglob("*"))
            if p.is_file()
        }

    before = digest()
    too_large = lulc_program("demo-data", world, "--size", "10000000")
    assert too_large.returncode == 2, too_large.stderr
    assert_one_line(too_large.stderr, "128 to 4096", "10000000")
    process = subprocess.Popen(
        [str(LULC), "demo-data", str(world), "--size", "1024", "--seed", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60  # interrupted while it writes the new world
    while not list(world.glob(".demo-world-*/cogs")) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert digest() == before
    assert not list(world.glob(".demo-world-*"))


def test_lulc_demo_checks_every_folder_it_writes_before_any_work(tmp_path: Path) -> None:
    """CLI review: runs/demo with a user's stats.json was written over; --out / wrote /world and the rest."""
    out = tmp_path / "dm"
    mine = out / "runs" / "demo" / "stats.json"
    mine.parent.mkdir(parents=True)
    mine.write_text("mine")
    done = lulc_program("demo", "--out", out, "--size", "128", "--no-serve")
    assert done.returncode == 2, done.stderr
    assert_one_line(done.stderr, f"--out {out} holds runs but no demo world")
    assert sorted(p.name for p in out.iterdir()) == ["runs"]  # no world, no model
    assert mine.read_text() == "mine"
    root = lulc_program("demo", "--out", "/", "--no-serve")
    assert root.returncode == 2, root.stderr
    assert_one_line(root.stderr, "--out / is the file system's root")
    refusals = (("--seed", "-1", "greater than or equal to 0"), ("--port", "99999", "65535"))
    for option, value, words in refusals:
        refused = lulc_program("demo", "--out", tmp_path / "dm2", option, value)
        assert refused.returncode == 2, refused.stderr
        assert words in refused.stderr, refused.stderr
    assert not (tmp_path / "dm2").exists()


@pytest.mark.parametrize("command", ["serve", "tiler"])
def test_a_host_not_of_this_machine_asks_for_another_host_not_port(command: str) -> None:
    """CLI review: --host 999.1.1.1 said "give another --port"."""
    done = lulc_program(command, "--host", "999.1.1.1", "--port", "18999")
    assert done.returncode == 2, done.stderr
    assert_one_line(done.stderr, "cannot listen on 999.1.1.1:18999", "--host")
    assert "--port" not in done.stderr


def test_tiler_start_up_options_that_cannot_work_are_refused(tmp_path: Path) -> None:
    """CLI review: --runs with a typo or a file started an empty web map; --port 0 printed port 0."""
    a_file = tmp_path / "classes.yaml"
    a_file.write_text("classes: []\n")
    for option, value, words in (
        ("--runs", tmp_path / "nope", "does not exist"),
        ("--runs", a_file, "is not a folder"),
        ("--models", a_file, "is not a folder"),
        ("--port", "0", "greater than or equal to 1"),
    ):
        done = lulc_program("tiler", "--allow", tmp_path, option, value)
        assert done.returncode == 2, done.stderr
        assert_one_line(done.stderr, words)


def test_files_that_are_not_utf8_or_hold_an_impossible_date_are_named(tmp_path: Path) -> None:
    """CLI review: each was "unexpected UnicodeDecodeError" or "unexpected ValueError", naming no file."""
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe classes: []\n")
    feb30 = tmp_path / "feb30.yaml"
    feb30.write_text("datetime: 2024-02-30\n")
    aoi = tmp_path / "aoi.geojson"
    aoi.write_bytes(b"\xff{}")
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_bytes(b'{"type": "\xff"}')
    (model / "metrics.json").write_bytes(b"\xff")
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    image = tmp_path / "x.tif"
    profile = {"driver": "GTiff", "width": 8, "height": 8, "count": 1, "dtype": "uint16", "crs": "EPSG:32633"}
    with rasterio.open(image, "w", **profile, transform=from_origin(500000, 5000000, 10, 10)) as dst:
        dst.write(np.ones((1, 8, 8), dtype=np.uint16))
    cases = [
        # one wording wherever a file is not UTF-8 (lulc.local_files): Python's codec message was in two
        (
            ["train", "--config", binary, "--out", tmp_path / "m"],
            f"config {binary} is not UTF-8 text (byte 0)",
        ),
        (
            ["classify", "--image", image, "--aoi", aoi, "--model", LEGACY_MODEL, "--datetime", "2024"],
            f"AOI file {aoi} is not UTF-8 text (byte 0)",
        ),
        (["train", "--config", feb30, "--out", tmp_path / "m"], "day is out of range for month"),
        (["train", "--config", feb30, "--out", tmp_path / "m"], f"{feb30} is not valid YAML"),
        (
            ["classify", "--image", image, "--model", model, "--out", tmp_path / "run"],
            f"model item {model / 'model.json'} is not UTF-8 text (byte 10)",
        ),
        (  # it said "is not allowed: not an existing file under the allow-list's local folders"
            ["classify", "--stac", binary, "--aoi", "0,0,1,1", "--datetime", "2024", "--model", LEGACY_MODEL],
            f"{binary} is not UTF-8 text (byte 0)",
        ),
    ]
    for args, words in cases:
        done = lulc_program(*args, *([] if "--out" in args else ["--out", tmp_path / "run"]))
        assert done.returncode == 2, (args, done.stderr)
        assert_one_line(done.stderr, words)
    assert not (tmp_path / "m").exists()
    assert not (tmp_path / "run").exists()


def test_an_argument_that_is_not_utf8_is_refused_before_any_work(tmp_path: Path) -> None:
    """CLI review: a non-UTF-8 --out was "unexpected UnicodeEncodeError", exit 1, after all the work."""
    import os
    import subprocess

    from tests.support.cli import LULC

    out = os.fsencode(tmp_path) + b"/runs/\xffc"
    done = subprocess.run(
        [str(LULC), "clean", str(tmp_path / "run"), "--mmu-ha", "1", "--out", out],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert_one_line(done.stderr, "runs/\\xffc' is not UTF-8 text", "rename the file or folder")
    assert not (tmp_path / "runs").exists()


def test_a_fifo_given_as_a_file_is_refused_not_read_for_ever(tmp_path: Path) -> None:
    """CLI review: a FIFO as --config or --aoi hung until killed."""
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for args, words in (
        (["train", "--config", fifo, "--out", tmp_path / "m"], f"{fifo} is not a regular file"),
        (
            [
                "classify",
                "--stac",
                "c.json",
                "--aoi",
                fifo,
                "--model",
                "m",
                "--datetime",
                "2024",
                "--out",
                tmp_path / "r",
            ],
            f"AOI file {fifo} is not a regular file",
        ),
    ):
        done = lulc_program(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert_one_line(done.stderr, words)
