"""ONNX Runtime runs without writing its telemetry (a device id, a process record) into the user's home."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lulc.onnx_runtime import TELEMETRY_VARIABLE

MODEL = Path(__file__).resolve().parents[1] / "data" / "models"


def _home_after(tmp_path: Path, name: str, code: str) -> list[Path]:
    """Files a fresh Python with an empty home (and only PATH besides) leaves in that home."""
    home = tmp_path / name
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}  # no CI variables: ONNX Runtime mutes itself in CI
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120, cwd=tmp_path)
    return [p for p in home.rglob("*") if p.is_file()]


def test_sessions_write_no_telemetry_into_the_home(tmp_path: Path) -> None:
    model = next(MODEL.rglob("*.onnx"))
    session = f"ort.InferenceSession({str(model)!r}, providers=['CPUExecutionProvider'])"
    stock = _home_after(tmp_path, "stock", f"import onnxruntime as ort; {session}")
    if not stock:
        pytest.skip("this onnxruntime writes no telemetry files: nothing to turn off")
    assert any(".onnxruntime" in str(p) for p in stock), stock
    ours = _home_after(
        tmp_path, "ours", f"from lulc.onnx_runtime import onnxruntime; ort = onnxruntime(); {session}"
    )
    assert ours == [], f"written with {TELEMETRY_VARIABLE} set by lulc: {ours}"
