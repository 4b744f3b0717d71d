"""Random-forest settings: how many trees and how deep, against inference throughput and accuracy.

Issue 14 asks for a forest at 1 Mpx per CPU second and for the tree-count and depth settings to be measured
(no faster exact ONNX form of a given forest exists: ``bench/tree_forms.py``). A forest's inference cost grows
with its trees (and their depth), its accuracy saturates: this script puts the two side by side, in one
process, on the bench scene.

For each setting (``n_estimators`` x ``max_depth``) a forest is fitted with ``training.models.make_estimator``
on the bench's training samples (``bench.models.training_samples``: 100 truth pixels per class), exported as
``lulc train`` exports it (``training.export.to_onnx``), and

- timed through the service's ``OnnxRunner`` (1 intra-op thread, the runner's chunks) on the features of a
  window at the scene's centre: Mpx per CPU second, the per-core figure of issue 14 (best of ``REPEATS``, the
  settings taking turns);
- scored on independent truth pixels (``--eval-pixels`` random pixels of the truth map, another seed than the
  training samples): overall accuracy with its standard error;
- compared with the default forest (scikit-learn's 100 trees, unlimited depth, which ``lulc train`` keeps, as
  the tutorial does): the share of the timed pixels given the same label.

Where the tutorial's data is beside the repository (``shared/data/lulc_py``), each tree count is also scored
on its 121 real points: 5-fold stratified cross-validation repeated 20 times (the bands and the bench's
indices, sampled at the points).

``python -m bench.forest_settings --size 2000`` prints the JSON result and writes ``WORK/forest-SIZE.json``
and a table, ``RESULTS-DIR/forest-settings.md``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from bench.common import machine_info, utc_now
from bench.models import INDICES, bench_contract, features_of, training_samples
from bench.peers import TUTORIAL
from bench.runtimes import pixels_of
from bench.scene import SCENE_BANDS, Scene, generate
from lulc.gdal_env import gdal_env

TREES = (100, 50, 25, 10)
DEPTHS: tuple[int | None, ...] = (None, 12)
DEFAULT = (100, None)
"""scikit-learn's forest, which ``lulc train`` fits unless told otherwise."""
REPEATS = 3
TARGET_PER_CORE = 1.0
"""Issue 14: a random forest at 1 Mpx per CPU second."""


def evaluation_pixels(scene: Scene, n: int, seed: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Features and truth classes of ``n`` random pixels of the scene (uniform over its area)."""
    rng = np.random.default_rng(seed + 1_000)
    rows = rng.integers(0, scene.size, n)
    cols = rng.integers(0, scene.size, n)
    with gdal_env(), rasterio.open(scene.truth) as src:
        truth = src.read(1)[rows, cols]
    dn = np.empty((len(SCENE_BANDS), n), dtype=np.uint16)
    for b, name in enumerate(SCENE_BANDS):
        with gdal_env(), rasterio.open(scene.band(name)) as src:
            dn[b] = src.read(1)[rows, cols]
    known = truth != 255
    return features_of(dn[:, known]), truth[known].astype(np.int64)


CV_REPEATS = 20


def tutorial_cv(seed: int, repeats: int = CV_REPEATS) -> list[dict[str, Any]] | str:
    """Repeated stratified 5-fold CV accuracy of each tree count on the tutorial's 121 points, or why not."""
    if not (TUTORIAL / "samples.shp").is_file():
        return f"skipped: {TUTORIAL} is absent"
    import geopandas as gpd
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score

    from lulc.features import compute_features
    from training.models import make_estimator

    points = gpd.read_file(TUTORIAL / "samples.shp")
    with gdal_env(), rasterio.open(TUTORIAL / "s2image.tif") as src:
        reflectance = np.array(list(src.sample([(p.x, p.y) for p in points.geometry])), dtype=np.float32)
    x = compute_features(reflectance.T, list(SCENE_BANDS), list(INDICES))
    y = points["labels"].astype(int).to_numpy()
    folds = RepeatedStratifiedKFold(n_splits=5, n_repeats=repeats, random_state=seed)
    rows = []
    for trees in TREES:
        scores = cross_val_score(make_estimator("rf", seed, 1, {"n_estimators": trees}), x, y, cv=folds)
        rows.append({"n_estimators": trees, "accuracy": round(float(scores.mean()), 4), "folds": len(scores)})
    return rows


def run(
    scene: Scene, pixels: int, eval_pixels: int, seed: int, work: Path, cv_repeats: int = CV_REPEATS
) -> dict[str, Any]:
    """Fit, export, time and score every setting."""
    from service.runner import OnnxRunner
    from training import export
    from training.models import classes_of, make_estimator, quiet_estimators

    x, y = training_samples(scene, seed)
    features = pixels_of(scene, pixels)
    eval_x, eval_y = evaluation_pixels(scene, eval_pixels, seed)
    mpx = features.shape[0] / 1e6
    runners: dict[tuple[int, int | None], Any] = {}
    for trees in TREES:
        for depth in DEPTHS:
            with quiet_estimators():
                forest = make_estimator("rf", seed, 1, {"n_estimators": trees, "max_depth": depth}).fit(x, y)
                graph = export.to_onnx(forest, x.shape[1], "rf")
            contract = bench_contract(f"bench-rf-{trees}-{depth}", "rf", classes_of(forest), seed)
            path = work / f"rf-{trees}-{depth or 'full'}.onnx"
            path.write_bytes(export.embed_contract(graph, contract))
            runners[(trees, depth)] = OnnxRunner(path, threads=1)
            runners[(trees, depth)].predict(features[:8192])  # warm-up
    cpu: dict[tuple[int, int | None], list[float]] = {key: [] for key in runners}
    labels: dict[tuple[int, int | None], Any] = {}
    for _ in range(REPEATS):
        for key, runner in runners.items():
            start = time.process_time()
            labels[key] = runner.predict(features).labels
            cpu[key].append(time.process_time() - start)
    rows = []
    for (trees, depth), runner in runners.items():
        predicted = runner.predict(eval_x).labels
        right = predicted == eval_y
        rows.append(
            {
                "n_estimators": trees,
                "max_depth": depth,
                "mpx_cpu_s": round(mpx / min(cpu[(trees, depth)]), 3),
                "accuracy": round(float(right.mean()), 4),
                "accuracy_se": round(float(right.std(ddof=1) / np.sqrt(right.size)), 4),
                "same_label_as_default": round(float(np.mean(labels[(trees, depth)] == labels[DEFAULT])), 4),
            }
        )
    return {
        "pixels_timed": int(features.shape[0]),
        "evaluation_pixels": int(eval_y.size),
        "training_samples": int(y.size),
        "settings": rows,
        "tutorial_cv": tutorial_cv(seed, cv_repeats),
        "target_per_core": TARGET_PER_CORE,
    }


def table(result: dict[str, Any]) -> str:
    """The result as a Markdown table, with the machine and the command."""
    machine = result["machine"]
    lines = [
        "# Random-forest settings: inference throughput per core and accuracy",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores; onnxruntime "
        f"{machine['libraries'].get('onnxruntime')}, scikit-learn {machine['libraries'].get('scikit-learn')}",
        f"- Load average at start / end: {machine['load_average_at_start']} / "
        f"{result['load_average_at_end']}",
        f"- Command: `{result['command']}`; {result['training_samples']} training samples, "
        f"{result['pixels_timed']:,} pixels timed (1 thread), "
        f"{result['evaluation_pixels']:,} truth pixels scored",
        "",
        "| trees | max depth | Mpx per CPU second | accuracy (SE) | same label as 100 trees |",
        "|---|---|---|---|---|",
    ]
    for row in result["settings"]:
        depth = row["max_depth"] if row["max_depth"] is not None else "none"
        lines.append(
            f"| {row['n_estimators']} | {depth} | {row['mpx_cpu_s']:.3f} | {100 * row['accuracy']:.2f} % "
            f"({100 * row['accuracy_se']:.2f}) | {100 * row['same_label_as_default']:.2f} % |"
        )
    cv = result["tutorial_cv"]
    if isinstance(cv, str):
        lines += ["", f"Tutorial points: {cv}."]
    else:
        repeats = cv[0]["folds"] // 5
        lines += ["", f"Tutorial's 121 points, 5-fold stratified CV repeated {repeats} times:", ""]
        lines += ["| trees | accuracy |", "|---|---|"]
        lines += [f"| {row['n_estimators']} | {100 * row['accuracy']:.2f} % |" for row in cv]
    lines += ["", f"Target (issue 14): {TARGET_PER_CORE} Mpx per CPU second. See `bench/forest_settings.py`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Command line: ``python -m bench.forest_settings --size N``."""
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--pixels", type=int, default=250_000)
    parser.add_argument("--eval-pixels", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cv-repeats", type=int, default=CV_REPEATS, help="tutorial points' 5-fold CV")
    parser.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "work")
    parser.add_argument("--results-dir", type=Path, default=Path(__file__).resolve().parent / "forest-run")
    ns = parser.parse_args()
    work = ns.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "machine": machine_info(),
        "command": f"python -m bench.forest_settings --size {ns.size} --pixels {ns.pixels}"
        + (f" --cv-repeats {ns.cv_repeats}" if ns.cv_repeats != CV_REPEATS else ""),
        "started": utc_now(),
    }
    scene = generate(work / f"scene-{ns.size}", ns.size, ns.seed)
    models = work / f"forests-{ns.size}"
    models.mkdir(exist_ok=True)
    result.update(run(scene, ns.pixels, ns.eval_pixels, ns.seed, models, ns.cv_repeats))
    result["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    result["finished"] = utc_now()
    (work / f"forest-{ns.size}.json").write_text(json.dumps(result, indent=1) + "\n")
    ns.results_dir.mkdir(parents=True, exist_ok=True)
    (ns.results_dir / "forest-settings.md").write_text(table(result), encoding="utf-8")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
