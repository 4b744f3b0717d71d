"""The promotion gate: an equal model passes, a worse one is refused with a readable reason."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lulc.cli import app
from training.errors import GateError
from training.gate import Floors, compare, enforce


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


def test_floors_refuse_a_model_below_them_without_a_baseline(static_model: Path) -> None:
    metrics = json.loads((static_model / "metrics.json").read_text())
    overall = metrics["holdout"]["overall_accuracy"]
    worst = min(metrics["holdout"]["per_class"], key=lambda c: c["f1"])
    with pytest.raises(GateError, match=r"overall accuracy .* is below the floor") as raised:
        enforce(metrics, None, 0.02, Floors(overall_accuracy=overall + 0.001, class_f1=worst["f1"] + 0.001))
    assert f"F1 of class {worst['value']} {worst['name']}" in str(raised.value)
    record = enforce(metrics, None, 0.02, Floors(overall_accuracy=overall, class_f1=worst["f1"]))
    assert record == {"min_overall_accuracy": overall, "min_class_f1": worst["f1"], "passed": True}
    # floors and a baseline: both checked, both recorded
    both = enforce(metrics, str(static_model), 0.0, Floors(overall_accuracy=0.5))
    assert both["min_overall_accuracy"] == 0.5
    assert both["baseline_version"] == metrics["model"]["version"]


def test_the_deployment_floor_refuses_and_writes_nothing(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``LULC_TRAINING_MIN_OVERALL_ACCURACY`` is the deployment's, not the recipe's: no --baseline needed."""
    monkeypatch.setenv("LULC_TRAINING_MIN_OVERALL_ACCURACY", "0.9999")
    out = tmp_path / "candidate"
    result = CliRunner().invoke(
        app,
        [
            *("train", "--config", str(world / "training.yaml"), "--models", "dt", "--bands", "blue,green"),
            *("--indices", "", "--repeats", "0", "--out", str(out)),
        ],
    )
    assert isinstance(result.exception, GateError), result.output
    assert "is below the floor of 100.0 %" in str(result.exception)
    assert list(tmp_path.iterdir()) == []


def test_a_baseline_url_is_read_through_the_checked_fetch(static_model: Path, tmp_path: Path) -> None:
    """Over loopback HTTP: a model directory's URL reads its metrics.json; a missing one names the status."""
    from tests.support.http_server import start_http_server

    metrics = json.loads((static_model / "metrics.json").read_text())
    server = start_http_server(static_model.parent)
    try:
        record = enforce(metrics, f"{server.base_url}/{static_model.name}/", 0.0)
        assert record["baseline_version"] == metrics["model"]["version"]
        with pytest.raises(GateError, match=r"cannot read baseline metrics .* answered HTTP 404"):
            enforce(metrics, f"{server.base_url}/nowhere/metrics.json", 0.0)
    finally:
        server.close()
    with pytest.raises(GateError, match="cannot read baseline metrics"):
        enforce(metrics, "http://127.0.0.1:9/metrics.json", 0.0)  # nothing listens on the discard port


def test_the_gate_takes_the_baseline_read_before_the_training(static_model: Path) -> None:
    """One read of the baseline: up front (to fail early) and by the gate, it was read twice.

    A store that changed between the two compared the model with another baseline than the run checked.
    """
    metrics = json.loads((static_model / "metrics.json").read_text())
    gone = "http://127.0.0.1:9/metrics.json"  # nothing listens on the discard port: a second read fails
    record = enforce(metrics, gone, 0.0, loaded=json.loads((static_model / "metrics.json").read_text()))
    assert record["baseline_version"] == metrics["model"]["version"]
