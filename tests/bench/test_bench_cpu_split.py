"""The CPU split of one ``lulc classify`` (``bench/cpu_split.py``) on the demo scene: every step is measured.

Not a timed assertion: this keeps the script working and checks that its parts add up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import rasterio

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO.parent / "shared" / "data" / "lulc_py"


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    if not (TUTORIAL / "s2image.tif").is_file():
        pytest.skip(f"{TUTORIAL} is absent")
    work = tmp_path_factory.mktemp("cpu-split")
    model = work / "model"
    model.mkdir()
    script = "import sys, pathlib; from bench.peers import train_model as t; t(pathlib.Path(sys.argv[1]))"
    trained = subprocess.run(
        [sys.executable, "-c", script, str(model)], capture_output=True, cwd=REPO, timeout=300
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    onnx = model / "svm.onnx"  # the tutorial's SVM, as bench.peers trains and exports it
    out = work / "out"
    command = [sys.executable, "-m", "bench.cpu_split", "--table", "--"]
    command += ["--image", str(TUTORIAL / "s2image.tif"), "--model", str(onnx), "--out", str(out)]
    command += ["--datetime", "2023-05-01"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1]), done.stderr, out


def test_every_step_ran_and_the_parts_add_up(split: tuple[dict[str, Any], str, Path]) -> None:
    result, _, out = split
    steps = result["steps"]
    for label in ("read", "infer", "onnx", "features", "labels", "write", "levels", "cogs"):
        assert steps[label] > 0, label
    assert steps["item"] >= 0  # a few small files to hash: may round to 0.00 s
    assert steps["onnx"] + steps["features"] <= steps["infer"] + 0.01
    assert steps["labels"] <= steps["onnx"] + 0.01
    assert steps["levels"] <= steps["write"] + 0.01
    top = sum(steps[label] for label in ("read", "infer", "write", "cogs", "item", "rest"))
    assert top == pytest.approx(result["cpu_s"], abs=0.05)
    assert steps["rest"] > 0  # imports and model loading at least
    with rasterio.open(out / "classes.tif") as src:  # the run itself was a real one
        assert src.width == 763
        assert src.height == 406


def test_the_table_lists_every_step(split: tuple[dict[str, Any], str, Path]) -> None:
    result, markdown, _ = split
    for label in result["steps"]:
        assert f"{label} |" in markdown
    assert "**process**" in markdown


def test_the_decode_floor_reads_every_window_of_the_scene(tmp_path: Path) -> None:
    """``python -m bench.decode``: the CPU of GDAL's read alone; more pixels to decode cost more."""
    import numpy as np

    rng = np.random.default_rng(0)
    spent = {}
    for name, side in (("small", 256), ("large", 2048)):
        path = tmp_path / f"{name}.tif"
        profile = {"driver": "GTiff", "width": side, "height": side, "count": 4, "dtype": "float32"}
        profile |= {"tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate"}
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(rng.random((4, side, side), dtype=np.float32))
        done = subprocess.run(
            [sys.executable, "-m", "bench.decode", str(path), "--repeats", "2"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
            check=True,
        )
        result = json.loads(done.stdout)
        assert result["repeats"] == 2
        spent[name] = result["decode_cpu_s_best"]
    assert 0 < spent["small"] < spent["large"], spent
