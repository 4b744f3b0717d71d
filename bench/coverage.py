"""Are the class sets calibrated in expectation? Per-class coverage over many demo worlds and recipe seeds.

``tests/demo/test_trust.py`` measures the calibrated class sets (``sets.tif``: class-conditional split
conformal prediction, one threshold per class) on one demo world: the share of the 1,500 independent
validation points whose set holds their true class, per class. One draw cannot tell a biased method from
calibration noise: with ~100 calibration samples per class a class's coverage varies by about 3 points from
draw to draw. This script repeats the test's measurement over ``--worlds`` demo worlds
(``demo.world.generate`` with world seeds ``--first-world`` ...) times ``--seeds`` recipe seeds (the
training recipe's ``seed``: its hold-out split, CV folds and the SVM's own randomness), each draw as the
test's ``_run`` does it:
``training.api.train`` (the world's ``training.yaml``, SVM) and ``service.api.classify``
(``probabilities=True``), then ``sets.tif`` and ``probabilities.tif`` sampled at the validation points.

Per class and method, over the draws: the mean coverage, its standard error, the spread of single draws
(standard deviation, min, max) and ``z`` = (mean - nominal) / standard error; a class is flagged as biased
where ``|z| > 2``. Draws of one world share its validation points and calibration samples (a recipe seed only
changes which samples are scored out of fold and which by the model), so with several seeds per world the
standard error is that of the world means (``sd / sqrt(worlds)``), the worlds being the independent units.
The methods compared:

- ``conformal``: the sets of ``sets.tif`` (band 2, the bitmask), an empty set not covering;
- ``global``: one threshold for all classes, the contract's ``min_probability`` on ``probabilities.tif``
  (the test's control: marginal split conformal; calibrated on average over classes, not per class).

Beside them: the spread one calibration predicts, ``sqrt(c (1 - c) (1 / n_cal + 1 / n_val))`` (the test's
tolerance), and the finite-sample expectation of split conformal, ``ceil((n_cal + 1) c) / (n_cal + 1)``.

``python -m bench.coverage --worlds 4 --seeds 2 --size 1024 --out /tmp/bench-coverage`` prints a markdown
table and writes ``OUT/coverage.json`` (every draw's numbers, the machine, UTC start and end; rewritten after
every draw, so an interrupted run keeps what it measured) and ``OUT/coverage.md``. The worlds are generated
under ``OUT/worlds`` and deleted after their draws unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import machine_info, utc_now

METHODS = ("conformal", "global")
BIASED_Z = 2.0


def _log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def _covered(
    order: list[int], truth: np.ndarray[Any, Any], bitmask: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Whether each point's set (bitmask over the class table's order) holds its true class."""
    bits = np.array([1 << order.index(int(v)) for v in truth])
    return np.asarray((bitmask.astype(np.int64) & bits) > 0)


def svm_map(world: Any, seed: int, out: Path) -> tuple[Any, Any]:
    """The SVM trained on ``world``'s recipe, seed ``seed``, and its map with probabilities.

    ``training.api.train``'s result (in ``out/model``) and ``service.api.classify``'s (in ``out/run``).
    """
    from service.api import classify
    from training.api import train

    trained = train(
        world.training_config, points=world.train_points, models=["svm"], seed=seed, out=out / "model"
    )
    mapped = classify(
        trained.model_dir,
        stac=str(world.catalog),
        aoi=json.loads(world.aoi.read_text()),
        datetime=world.datetime_window,
        out=out / "run",
        probabilities=True,
    )
    return trained, mapped


def draw(world: Any, seed: int, out: Path) -> dict[str, Any]:
    """One draw: train the SVM (recipe seed ``seed``) on ``world``, map it, score its sets at validation."""
    from demo.report import at_validation_points

    started = time.perf_counter()
    trained, mapped = svm_map(world, seed, out)
    at = at_validation_points(world, mapped.classes.parent)
    sets = trained.contract.class_sets
    if sets is None or sets.class_min_probability is None:
        raise RuntimeError("the model has no class-conditional sets (trust: false?)")
    entries = trained.contract.classes.classes
    order = [c.value for c in entries]
    truth = at["truth"]
    covered = {"conformal": _covered(order, truth, at["sets"][:, 1])}
    column = np.array([order.index(int(v)) for v in truth])
    covered["global"] = at["percent"][np.arange(column.size), column] >= 100 * sets.min_probability
    report = trained.metrics["trust"]["conformal_sets"]
    calibration = {row["name"]: row for row in report["calibration"]["per_class"]}
    cross = {row["name"]: row for row in report["cross_calibrated"]["per_class"]}
    size = at["sets"][:, 0].astype(np.int64)
    classes = []
    for i, entry in enumerate(entries):
        mask = truth == entry.value
        n = int(mask.sum())
        row: dict[str, Any] = {
            "name": entry.name,
            "value": entry.value,
            "n_validation": n,
            "n_calibration": int(calibration[entry.name]["n"]),
            "min_probability": round(float(sets.class_min_probability[i]), 6),
            "cross_calibrated": cross[entry.name]["coverage"],
            "correct": int((at["labels"][mask] == entry.value).sum()),
            "mean_set_size": round(float(size[mask].mean()), 4) if n else None,
            "empty": int((size[mask] == 0).sum()),
        }
        for method in METHODS:
            row[f"covered_{method}"] = int(covered[method][mask].sum())
            row[f"coverage_{method}"] = round(float(covered[method][mask].mean()), 6) if n else None
        classes.append(row)
    return {
        "world": world.seed,
        "seed": seed,
        "size": world.size,
        "nominal": sets.coverage,
        "global_min_probability": round(float(sets.min_probability), 6),
        "n_validation": int(truth.size),
        **{f"coverage_{m}": round(float(covered[m].mean()), 6) for m in METHODS},
        "accuracy": round(float(np.mean(at["labels"] == truth)), 6),
        "seconds": round(time.perf_counter() - started, 1),
        "classes": classes,
    }


def _stats(values: list[float], groups: list[int], nominal: float) -> dict[str, Any]:
    """Mean, spread and standard error of per-draw values; with repeated groups, SE of the group means."""
    x = np.asarray(values, dtype=np.float64)
    sd = float(x.std(ddof=1)) if x.size > 1 else math.nan
    se = sd / math.sqrt(x.size) if x.size > 1 else math.nan
    unique = sorted(set(groups))
    if len(unique) < len(groups):  # several draws per world: the worlds are the independent units
        means = np.array([x[np.asarray(groups) == g].mean() for g in unique])
        se = float(means.std(ddof=1)) / math.sqrt(means.size) if means.size > 1 else math.nan
    mean = float(x.mean())
    return {
        "mean": mean,
        "sd": sd,
        "se": se,
        "min": float(x.min()),
        "max": float(x.max()),
        "z": (mean - nominal) / se if se > 0 else math.nan,
    }


def summarise(draws: list[dict[str, Any]]) -> dict[str, Any]:
    """Per class and method, over the draws: mean coverage, SE, spread, z against nominal, expected spread."""
    nominal = float(draws[0]["nominal"])
    worlds = [int(d["world"]) for d in draws]
    names = [c["name"] for c in draws[0]["classes"]]
    rows = []
    for i, name in enumerate(names):
        per = [d["classes"][i] for d in draws if d["classes"][i]["n_validation"] > 0]
        groups = [int(d["world"]) for d in draws if d["classes"][i]["n_validation"] > 0]
        n_val = np.array([c["n_validation"] for c in per], dtype=np.float64)
        n_cal = np.array([c["n_calibration"] for c in per], dtype=np.float64)
        row: dict[str, Any] = {
            "name": name,
            "draws": len(per),
            "n_validation_mean": float(n_val.mean()),
            "n_validation_min": int(n_val.min()),
            "n_validation_max": int(n_val.max()),
            "n_calibration_mean": float(n_cal.mean()),
            "predicted_sd": float(np.mean(np.sqrt(nominal * (1 - nominal) * (1 / n_cal + 1 / n_val)))),
            "conformal_expectation": float(np.mean(np.ceil((n_cal + 1) * nominal - 1e-9) / (n_cal + 1))),
            "cross_calibrated_mean": float(np.mean([c["cross_calibrated"] for c in per])),
            "accuracy_mean": float(np.mean([c["correct"] / c["n_validation"] for c in per])),
            "mean_set_size": float(np.mean([c["mean_set_size"] for c in per])),
            "pooled": {},
        }
        for method in METHODS:
            row[method] = _stats([c[f"coverage_{method}"] for c in per], groups, nominal)
            row["pooled"][method] = sum(c[f"covered_{method}"] for c in per) / float(n_val.sum())
        rows.append(row)
    overall = {m: _stats([d[f"coverage_{m}"] for d in draws], worlds, nominal) for m in METHODS}
    return {
        "nominal": nominal,
        "draws": len(draws),
        "worlds": sorted(set(worlds)),
        "seeds": sorted({int(d["seed"]) for d in draws}),
        "overall": overall,
        "classes": rows,
        "biased": {m: [r["name"] for r in rows if abs(r[m]["z"]) > BIASED_Z] for m in METHODS},
    }


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def table(result: dict[str, Any]) -> str:
    """The markdown table (and the facts of the run) of a result."""
    s = result["summary"]
    machine = result["machine"]
    several = len(s["worlds"]) < s["draws"]
    lines = [
        f"# Class-set coverage over {s['draws']} draws ({len(s['worlds'])} demo worlds x "
        f"{len(s['seeds'])} recipe seeds), nominal {_pct(s['nominal'])} %",
        "",
        f"- Command: `{result['command']}`",
        f"- UTC: {result['started']} to {result['finished']}",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
        f"{machine['os']}",
        f"- Demo world size {result['size']} px (worlds {s['worlds']}, recipe seeds {s['seeds']}); SVM; "
        f"mean {np.mean([d['seconds'] for d in result['draws']]):.0f} s per draw (training and map)",
        "- mean ± SE over draws"
        + (" (SE of the world means: draws of one world share its points)" if several else "")
        + f"; sd / min-max: single draws; z = (mean - nominal) / SE, biased where |z| > {BIASED_Z:g}",
        "",
        "| Class | val. pts / draw | cal. n | conformal mean ± SE | sd | min-max | z "
        "| global mean ± SE | sd | min-max | z | predicted sd | split-conformal E |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cells(st: dict[str, Any]) -> str:
        return (
            f"{_pct(st['mean'])} ± {_pct(st['se'])} | {_pct(st['sd'])} | {_pct(st['min'])}-{_pct(st['max'])} "
            f"| {st['z']:+.1f}"
        )

    for r in s["classes"]:
        lines.append(
            f"| {r['name']} | {r['n_validation_mean']:.0f} ({r['n_validation_min']}-{r['n_validation_max']}) "
            f"| {r['n_calibration_mean']:.0f} | {cells(r['conformal'])} | {cells(r['global'])} "
            f"| {_pct(r['predicted_sd'])} | {_pct(r['conformal_expectation'])} |"
        )
    n_all = np.mean([d["n_validation"] for d in result["draws"]])
    lines.append(
        f"| **all** | {n_all:.0f} | | {cells(s['overall']['conformal'])} "
        f"| {cells(s['overall']['global'])} | | |"
    )
    lines += [
        "",
        f"Biased (|z| > {BIASED_Z:g}): conformal {s['biased']['conformal'] or 'none'}, "
        f"global {s['biased']['global'] or 'none'}.",
        "",
        "| Class | map accuracy at val. pts | mean set size | cross-calibrated (training report) "
        "| pooled conformal | pooled global |",
        "|---|---|---|---|---|---|",
    ]
    for r in s["classes"]:
        lines.append(
            f"| {r['name']} | {_pct(r['accuracy_mean'])} | {r['mean_set_size']:.2f} "
            f"| {_pct(r['cross_calibrated_mean'])} | {_pct(r['pooled']['conformal'])} "
            f"| {_pct(r['pooled']['global'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Command line: ``python -m bench.coverage --worlds N --seeds M --size S --out DIR``."""
    from demo.world import DEFAULT_SIZE, generate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--worlds", type=int, default=4, help="demo worlds (world seeds first-world ...)")
    parser.add_argument("--first-world", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=2, help="recipe seeds per world (first-seed ...)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="demo world edge, px")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-coverage"))
    parser.add_argument("--keep", action="store_true", help="keep the worlds, models and maps")
    ns = parser.parse_args()
    out = ns.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "command": "python -m bench.coverage " + " ".join(sys.argv[1:]),
        "started": utc_now(),
        "machine": machine_info(),
        "size": ns.size,
        "draws": [],
    }

    def save() -> None:
        result["finished"] = utc_now()
        result["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
        if result["draws"]:
            result["summary"] = summarise(result["draws"])
        (out / "coverage.json").write_text(json.dumps(result, indent=1) + "\n")

    for w in range(ns.first_world, ns.first_world + ns.worlds):
        root = out / "worlds" / f"world-{ns.size}-{w}"
        if root.exists() and not ns.keep:
            shutil.rmtree(root)
        _log(f"world {w}: generating ({ns.size} px)")
        world = generate(root / "world", size=ns.size, seed=w)
        for seed in range(ns.first_seed, ns.first_seed + ns.seeds):
            _log(f"world {w}, recipe seed {seed}: training and mapping")
            d = draw(world, seed, root / f"seed-{seed}")
            result["draws"].append(d)
            save()
            per_class = ", ".join(f"{c['name']} {_pct(c['coverage_conformal'])}" for c in d["classes"])
            _log(f"  {d['seconds']} s; conformal {_pct(d['coverage_conformal'])} % ({per_class})")
        if not ns.keep:
            shutil.rmtree(root)
    save()
    markdown = table(result)
    (out / "coverage.md").write_text(markdown, encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
