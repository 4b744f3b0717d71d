"""The promotion gate: refuse a candidate whose accuracy or any class F1 falls below the deployed model's.

And below the deployment's floors (``LULC_TRAINING_MIN_OVERALL_ACCURACY``, ``LULC_TRAINING_MIN_CLASS_F1``):
set where the model is promoted, not in the recipe the candidate brings, and checked with or without a
deployed model (the first release has none to compare with).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lulc.allowlist import AllowList
from lulc.errors import LulcError
from lulc.local_files import not_utf8
from lulc.stac_io import CheckedHttp
from training.errors import GateError


@dataclass(frozen=True)
class Floors:
    """The least hold-out overall accuracy and class F1 a promoted model may have (None: no floor)."""

    overall_accuracy: float | None = None
    class_f1: float | None = None

    def __bool__(self) -> bool:
        return self.overall_accuracy is not None or self.class_f1 is not None


def _read_text(ref: str) -> tuple[str, str]:
    """Text of a metrics.json / model.json / model directory reference, and the resolved reference."""
    if ref.startswith(("http://", "https://")):
        url = ref if ref.endswith(".json") else ref.rstrip("/") + "/metrics.json"
        try:  # through the one checked fetch: redirects checked hop by hop, retries, timeouts
            return CheckedHttp(AllowList.anything()).get_text(url, "baseline metrics"), url
        except LulcError as exc:
            raise GateError(f"cannot read baseline metrics {url}: {exc}") from exc
    path = Path(ref)
    if path.is_dir():
        path = path / "metrics.json"
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except UnicodeDecodeError as exc:  # "unexpected" before (CLI review)
        raise GateError(f"cannot read baseline metrics: {not_utf8(str(path), exc)}") from exc
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


def below_floors(candidate: dict[str, Any], floors: Floors) -> list[str]:
    """Readable reasons the candidate's hold-out is below the deployment's floors (empty: pass)."""
    reasons: list[str] = []
    if not floors:
        return reasons
    overall = float(candidate["holdout"]["overall_accuracy"])
    if floors.overall_accuracy is not None and overall < floors.overall_accuracy:
        floor = 100 * floors.overall_accuracy
        reasons.append(f"overall accuracy {100 * overall:.1f} % is below the floor of {floor:.1f} %")
    if floors.class_f1 is not None:
        for entry in candidate["holdout"]["per_class"]:
            if float(entry["f1"]) < floors.class_f1:
                reasons.append(
                    f"F1 of class {entry['value']} {entry['name']} is {float(entry['f1']):.3f}, below the "
                    f"floor of {floors.class_f1:.3f}"
                )
    return reasons


def enforce(
    candidate: dict[str, Any],
    baseline_ref: str | None,
    tolerance: float,
    floors: Floors | None = None,
    loaded: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Raise GateError listing every reason, or return the gate's record for metrics.json.

    ``loaded``: the baseline's metrics as ``load_baseline(baseline_ref)`` read them before the training (the
    same document the run was checked against, not a second read of one that may have changed since).
    """
    floors = floors or Floors()
    reasons = below_floors(candidate, floors)
    if reasons:
        raise GateError("promotion gate: " + "; ".join(reasons))
    record: dict[str, Any] = {}
    if floors:
        record["min_overall_accuracy"] = floors.overall_accuracy
        record["min_class_f1"] = floors.class_f1
    if baseline_ref is not None:
        baseline = loaded if loaded is not None else load_baseline(baseline_ref)
        reasons = compare(candidate, baseline, tolerance)
        if reasons:
            raise GateError(
                "promotion gate: the new model is worse than the deployed one "
                f"({baseline.get('model', {}).get('version', '?')}): " + "; ".join(reasons)
            )
        record.update(
            baseline_version=baseline.get("model", {}).get("version"),
            baseline_overall_accuracy=baseline["holdout"]["overall_accuracy"],
            tolerance=tolerance,
        )
    return {**record, "passed": True}
