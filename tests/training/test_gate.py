"""The promotion gate: an equal model passes, a worse one is refused with a readable reason."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lulc.cli import app
from training.errors import GateError
from training.gate import compare, enforce


def test_equal_model_passes(static_model: Path) -> None:
    metrics = json.loads((static_model / "metrics.json").read_text())
    for ref in (static_model, static_model / "metrics.json", static_model / "model.json"):
        record = enforce(metrics, str(ref), tolerance=0.0)
        assert record["passed"] is True
        assert record["baseline_version"] == metrics["model"]["version"]


def test_small_fall_within_tolerance_passes_and_larger_fails(static_model: Path) -> None:
    baseline = json.loads((static_model / "metrics.json").read_text())
    candidate = copy.deepcopy(baseline)
    candidate["holdout"]["overall_accuracy"] -= 0.01
    candidate["holdout"]["per_class"][2]["f1"] -= 0.05
    assert compare(candidate, baseline, tolerance=0.02) == [
        f"F1 of class 3 Cropland fell from {baseline['holdout']['per_class'][2]['f1']:.3f} to "
        f"{candidate['holdout']['per_class'][2]['f1']:.3f}"
    ]
    assert compare(candidate, baseline, tolerance=0.06) == []


def test_worse_model_is_refused_and_nothing_is_written(
    world: Path, static_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "candidate"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--config",
            str(world / "training.yaml"),
            "--models",
            "dt",
            "--bands",
            "blue,green",
            "--indices",
            "",
            "--repeats",
            "0",
            "--baseline",
            str(static_model),
            "--tolerance",
            "0.02",
            "--out",
            str(out),
        ],
    )
    assert isinstance(result.exception, GateError), result.output
    message = str(result.exception)
    assert "overall accuracy fell from" in message
    assert "F1 of class" in message
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_unreadable_baseline_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GateError, match="cannot read baseline metrics"):
        enforce({}, str(tmp_path / "nowhere"), 0.02)
