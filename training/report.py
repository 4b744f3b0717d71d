"""The accuracy report: deterministic ``metrics.json``, a readable ``report.md``, ``confusion_matrix.png``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

NOT_SPATIAL = (
    "Caution: no split here is spatial, so samples close to training samples are scored: optimistic where "
    "samples cluster (set `cv.spatial_block`, metres, larger than the range over which land cover looks "
    "alike). These are sample accuracies; the map's own, per area, comes from `lulc assess` on independent "
    "points."
)
"""The report's words when neither the hold-out nor any estimate was drawn by spatial block."""


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    """Canonical JSON: sorted keys, two-space indent, trailing newline; no timestamps anywhere."""
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _trust_lines(metrics: dict[str, Any]) -> list[str]:
    """The area of applicability's threshold, and the class sets' minimum and estimated coverage per class."""
    trust = metrics.get("trust")
    if not trust:
        return []
    aoa, sets = trust["area_of_applicability"], trust["conformal_sets"]
    calibration, estimated = sets["calibration"], sets["cross_calibrated"]
    lines = [
        "## Where the model can be trusted",
        "",
        f"Area of applicability ({aoa['method']}): DI threshold {aoa['threshold']:.4f} (75th percentile + "
        f"1.5 IQR of the training DIs), {aoa['reference_samples']} reference samples in the ONNX graph; "
        f"{_pct(aoa['training_di_inside'])} % of the training samples inside.",
        "",
        f"Class sets ({sets['method']}): nominal coverage {_pct(sets['coverage_nominal'])} % for every "
        f"class, calibrated on {calibration['n']} samples. Calibrated without each sample's fold (an honest "
        f"estimate of how far one calibration strays), the sets cover {_pct(estimated['coverage'])} % "
        f"overall, mean set size {estimated['mean_set_size']:.2f}, {_pct(estimated['empty'])} % empty (no "
        "class probable enough: counted as not covered).",
        "",
    ]
    if trust.get("note"):
        lines += [f"Note: {trust['note']}.", ""]

    def cell(value: float | None, fmt: str = "pct") -> str:
        if value is None:
            return "-"
        return _pct(value) if fmt == "pct" else f"{value:.{fmt}f}"

    lines += _table(
        ["class", "calibration samples", "min. probability", "coverage %", "mean set size", "empty %"],
        [
            [
                row["name"],
                str(row["n"]),
                cell(sets["class_min_probability"][row["name"]], "3"),
                cell(row["coverage"]),
                cell(row["mean_set_size"], "2"),
                cell(row["empty"]),
            ]
            for row in estimated["per_class"]
        ],
    )
    return [*lines, ""]


def _tuning_lines(metrics: dict[str, Any]) -> list[str]:
    """Per tuned model: the grid searched, each candidate's CV accuracy, the values chosen."""
    lines: list[str] = []
    for entry in metrics["leaderboard"]:
        tuning = entry.get("tuning")
        if not tuning:
            continue
        if not lines:
            lines = ["## Tuning", ""]
        grid = "; ".join(f"{k}: {v}" for k, v in tuning["grid"].items()) or "none"
        lines += [
            f"{entry['model']}: {len(tuning['candidates'])} of the grid ({grid}) on {tuning['scheme']}; "
            f"chosen {tuning['chosen']}. The chosen score is the best of several on the same splits, so "
            "optimistic; the hold-out, which tuning never saw, is the estimate to quote.",
            "",
        ]
        lines += _table(
            ["parameters", "CV overall accuracy %"],
            [
                [str(c["params"]), f"{_pct(c['overall_accuracy_mean'])} ± {_pct(c['overall_accuracy_sd'])}"]
                for c in tuning["candidates"]
            ],
        )
        lines.append("")
    return lines


def _polygon_lines(metrics: dict[str, Any]) -> list[str]:
    """Features (polygons, points) and pixels per class, and the optimism of pixel-wise splits."""
    polygons = metrics.get("polygons")
    if not polygons:
        return []
    names = {str(c["value"]): c["name"] for c in metrics["classes"]}
    lines = ["## Polygons", ""]
    lines += _table(
        ["class", "features", "pixels"],
        [
            [names.get(v, v), str(row["features"]), str(row["pixels"])]
            for v, row in polygons["by_class"].items()
        ],
    )
    lines.append("")
    if polygons.get("note"):
        lines += [f"Note: {polygons['note']}", ""]
    if polygons.get("features_without_valid_pixels"):
        lines += [f"Features without a valid pixel: {polygons['features_without_valid_pixels']}", ""]
    optimism = polygons.get("optimism")
    if optimism:
        lines += [
            f"Optimism of splitting pixels at random: {_pct(optimism['pixel_split_cv_accuracy'])} % (pixels "
            f"at random) - {_pct(optimism['grouped_cv_accuracy'])} % (grouped by polygon) = "
            f"{100 * optimism['accuracy_difference']:+.1f} percentage points.",
            "",
        ]
    return lines


def _read(samples: dict[str, Any]) -> str:
    """What was read: "121 points", or the features of a file of polygons and the samples they gave."""
    features, points, pixels = samples.get("features"), samples["points"], samples.get("pixels", 0)
    if features is None or (not pixels and features == points):  # a file of points (or older metrics)
        return f"{points} points read"
    drawn = [f"{points} points" if points else "", f"{pixels} pixels of polygons" if pixels else ""]
    return f"{features} features read ({' and '.join(d for d in drawn if d)} sampled)"


def render_report(metrics: dict[str, Any], imagery_description: str) -> str:
    """Markdown report of a training run."""
    model = metrics["model"]
    hold = metrics["holdout"]
    data = metrics["samples"]
    lines = [
        f"# Model {model['name']} {model['version']} ({model['type']})",
        "",
        f"Imagery: {imagery_description}  ",
        f"Features: {', '.join(metrics['features'])}  ",
        f"Seed: {metrics['seed']}",
        "",
        *[f"Note: {note}" for note in metrics.get("imagery_notes", [])],
        "",
        "## Samples",
        "",
        f"{_read(data)}, {data['used']} used ({data['train']} training, {data['test']} "
        f"hold-out), {len(data['dropped'])} dropped; {data['blocks_read']} image blocks read.",
        "",
    ]
    left_out = metrics.get("classes_left_out")
    if left_out:
        lines += [
            "Classes left out: "
            + "; ".join(f"{c['name']} ({c['value']}): {c['reason']}" for c in left_out)
            + ".",
            "",
        ]
    if data["dropped"]:
        reasons = Counter(d["reason"] for d in data["dropped"])
        lines += [
            "Dropped points by reason: " + ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items())),
            "",
        ]
        lines += _table(
            ["row", "label", "x", "y", "reason"],
            [
                [str(d["index"]), str(d["label"]), f"{d['x']:.6f}", f"{d['y']:.6f}", d["reason"]]
                for d in data["dropped"]
            ],
        )
        lines.append("")
    lines += _polygon_lines(metrics)
    lines += _tuning_lines(metrics)
    lines += _trust_lines(metrics)
    lines += ["## Leaderboard", ""]
    board = metrics["leaderboard"]
    cv_name = board[0]["cv"]["scheme"] if board and board[0].get("cv") else "none"
    if hold.get("scheme"):  # metrics written before it was recorded have none
        lines.append(f"Hold-out: {hold['scheme']}.")
    lines.append(f"Repeated estimate: {cv_name}.")
    if metrics.get("cv_note"):
        lines.append(f"Note: {metrics['cv_note']}.")
    if board and board[0].get("spatial_cv"):
        lines.append(f"Spatial estimate: {board[0]['spatial_cv']['scheme']}.")
    elif not str(hold.get("scheme", "")).startswith("by "):  # science review: not said anywhere
        lines.append(NOT_SPATIAL)
    lines.append("")
    rows = []
    for entry in board:
        cv = entry.get("cv")
        cv_text = (
            f"{_pct(cv['overall_accuracy']['mean'])} ± {_pct(cv['overall_accuracy']['sd'])} "
            f"(mean of {cv['splits']} splits)"
            if cv
            else "-"
        )
        spatial = entry.get("spatial_cv")
        sp_text = (
            f"{_pct(spatial['overall_accuracy']['mean'])} ± {_pct(spatial['overall_accuracy']['sd'])}"
            if spatial
            else "-"
        )
        mark = " (kept)" if entry["model"] == model["type"] else ""
        rows.append([entry["model"] + mark, _pct(entry["holdout_overall_accuracy"]), cv_text, sp_text])
    lines += _table(["model", "hold-out OA %", "repeated OA % (mean ± sd)", "spatial block OA %"], rows)
    selection = metrics.get("selection")
    if selection:  # metrics of models trained before it was recorded have none
        lines += [
            "",
            f"Kept model chosen by {selection['by']}."
            + (f" {selection['note']}." if selection["note"] else ""),
        ]
    lines += [
        "",
        f"## Hold-out accuracy of the kept model ({hold['n']} samples)",
        "",
        f"Overall accuracy {_pct(hold['overall_accuracy'])} %, Cohen's kappa {hold['kappa']:.3f}, "
        f"macro F1 {hold['macro_f1']:.3f}.",
        "",
    ]
    lines += _table(
        ["class", "producer's acc. %", "user's acc. %", "precision", "recall", "F1", "support"],
        [
            [
                f"{c['value']} {c['name']}",
                _pct(c["producers_accuracy"]),
                _pct(c["users_accuracy"]),
                f"{c['precision']:.3f}",
                f"{c['recall']:.3f}",
                f"{c['f1']:.3f}",
                str(c["support"]),
            ]
            for c in hold["per_class"]
        ],
    )
    cm = hold["confusion_matrix"]
    lines += ["", "Confusion matrix (rows reference, columns predicted), counts and % of all:", ""]
    lines += _table(
        ["reference \\ predicted", *cm["names"]],
        [
            [name, *[f"{n} ({p:.1f} %)" for n, p in zip(counts, pcts, strict=True)]]
            for name, counts, pcts in zip(cm["names"], cm["counts"], cm["percent"], strict=True)
        ],
    )
    lines += ["", "![confusion matrix](confusion_matrix.png)", "", "## Permutation feature importance", ""]
    lines += _table(
        ["feature", "accuracy drop (mean)", "sd"],
        [[r["feature"], f"{r['mean']:.4f}", f"{r['sd']:.4f}"] for r in metrics["feature_importance"]],
    )
    parity = metrics["parity"]
    lines += [
        "",
        "## ONNX parity",
        "",
        f"Labels agree on {_pct(parity['test_agreement'])} % of {parity['test_n']} hold-out samples and "
        f"{_pct(parity['pixel_agreement'])} % of {parity['pixel_n']} random image pixels "
        "(same decision rule on both sides).",
        "",
    ]
    return "\n".join(lines)


def plot_confusion(path: Path, holdout: dict[str, Any], title: str) -> None:
    """A heatmap of the hold-out confusion matrix with class names and counts, as PNG.

    Drawn on a bare ``Figure`` (Agg canvas), never through pyplot: the process's plotting backend, such as a
    notebook's inline one, is left as it is.
    """
    import numpy as np
    from matplotlib.figure import Figure

    cm = holdout["confusion_matrix"]
    counts = np.asarray(cm["counts"], dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    n = len(cm["names"])
    fig = Figure(figsize=(2.0 + 0.9 * n, 1.6 + 0.8 * n), dpi=100)
    ax = fig.subplots()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), cm["names"], rotation=30, ha="right")
    ax.set_yticks(range(n), cm["names"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                f"{int(counts[i, j])}",
                ha="center",
                va="center",
                color="white" if share[i, j] > 0.5 else "black",
            )
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
