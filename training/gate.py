"""The promotion gate: refuse a candidate whose accuracy or any class F1 falls below the deployed model's."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from training.errors import GateError


def _read_text(ref: str) -> tuple[str, str]:
    """Text of a metrics.json / model.json / model directory reference, and the resolved reference."""
    if ref.startswith(("http://", "https://")):
        url = ref if ref.endswith(".json") else ref.rstrip("/") + "/metrics.json"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return response.read().decode(), url
        except OSError as exc:
            raise GateError(f"cannot read baseline metrics {url}: {exc}") from exc
    path = Path(ref)
    if path.is_dir():
        path = path / "metrics.json"
    try:
        return path.read_text(), str(path)
    except OSError as exc:
        raise GateError(f"cannot read baseline metrics {path}: {exc}") from exc


def load_baseline(ref: str) -> dict[str, Any]:
    """The deployed model's metrics from a model directory, its metrics.json, or its model.json (MLM item)."""
    text, where = _read_text(ref)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GateError(f"baseline {where} is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and data.get("type") == "Feature":
        href = data.get("assets", {}).get("metrics", {}).get("href")
        if not href:
            raise GateError(f"baseline MLM item {where} has no 'metrics' asset")
        base = where.rsplit("/", 1)[0] if "/" in where else "."
        return load_baseline(href if "://" in href or href.startswith("/") else f"{base}/{href}")
    if not isinstance(data, dict) or "holdout" not in data:
        raise GateError(f"baseline {where} is not a lulc-stac metrics.json (no 'holdout' section)")
    return data


def compare(candidate: dict[str, Any], baseline: dict[str, Any], tolerance: float) -> list[str]:
    """Readable reasons the candidate is worse than the baseline by more than ``tolerance`` (empty: pass)."""
    reasons = []
    new_oa = float(candidate["holdout"]["overall_accuracy"])
    old_oa = float(baseline["holdout"]["overall_accuracy"])
    if new_oa < old_oa - tolerance:
        reasons.append(
            f"overall accuracy fell from {100 * old_oa:.1f} % to {100 * new_oa:.1f} % "
            f"(more than the {100 * tolerance:.1f} pp tolerance)"
        )
    new_f1 = {c["value"]: c for c in candidate["holdout"]["per_class"]}
    for old in baseline["holdout"]["per_class"]:
        new = new_f1.get(old["value"])
        if new is None:
            reasons.append(f"class {old['value']} {old['name']} of the deployed model is missing")
        elif float(new["f1"]) < float(old["f1"]) - tolerance:
            reasons.append(
                f"F1 of class {old['value']} {old['name']} fell from {old['f1']:.3f} to {new['f1']:.3f}"
            )
    return reasons


def enforce(candidate: dict[str, Any], baseline_ref: str, tolerance: float) -> dict[str, Any]:
    """Raise GateError listing every reason, or return the gate's record for metrics.json."""
    baseline = load_baseline(baseline_ref)
    reasons = compare(candidate, baseline, tolerance)
    if reasons:
        raise GateError(
            "promotion gate: the new model is worse than the deployed one "
            f"({baseline.get('model', {}).get('version', '?')}): " + "; ".join(reasons)
        )
    return {
        "baseline_version": baseline.get("model", {}).get("version"),
        "baseline_overall_accuracy": baseline["holdout"]["overall_accuracy"],
        "tolerance": tolerance,
        "passed": True,
    }
