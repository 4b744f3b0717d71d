"""Model runtimes: inference Mpx/s of rf, svm, dt, hgb in ONNX Runtime vs scikit-learn (1 and 2 threads).

Both sides get the same feature matrix (pixels of the scene) and their labels are decided by the same rule,
``lulc.decision.decide_labels`` on the class probabilities; the agreement is the share of equal labels.
scikit-learn's threads are the estimator's own knob (``n_jobs`` for rf, OpenMP through threadpoolctl for
hgb); svm (libsvm) and dt have none, so their 2-thread figure is not measured. Each model runs in a fresh
process: ``python -m bench.runtimes --model ... --scene ... --pixels N``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from bench.common import bench_worker, emit, run_measured
from bench.models import BenchModel, features_of, load_sklearn
from bench.scene import SCENE_BANDS, Scene
from lulc.decision import decide_labels
from lulc.gdal_env import gdal_env

THREADED = {"rf", "hgb"}


def pixels_of(scene: Scene, n: int) -> np.ndarray[Any, Any]:
    """Features of about ``n`` pixels: a square window at the scene's centre."""
    side = max(16, min(scene.size, int(np.sqrt(n))))
    off = (scene.size - side) // 2
    dn = np.empty((len(SCENE_BANDS), side * side), dtype=np.uint16)
    with gdal_env():
        for b, name in enumerate(SCENE_BANDS):
            with rasterio.open(scene.band(name)) as src:
                dn[b] = src.read(1, window=Window(off, off, side, side)).reshape(-1)
    return np.ascontiguousarray(features_of(dn))


def _timed(call: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def worker(name: str, onnx: Path, sklearn: Path, scene: Scene, n: int) -> dict[str, Any]:
    """Time ONNX Runtime (1, 2 threads) and scikit-learn (1, 2 threads where it has them) on one model."""
    from threadpoolctl import threadpool_limits

    from service.runner import OnnxRunner

    features = pixels_of(scene, n)
    mpx = features.shape[0] / 1e6
    estimator = load_sklearn(sklearn)
    out: dict[str, Any] = {"model": name, "pixels": int(features.shape[0])}
    onnx_labels = None
    for threads in (1, 2):
        runner = OnnxRunner(onnx, threads=threads)
        runner.predict(features[:1024])  # warm-up
        seconds, prediction = _timed(lambda runner=runner: runner.predict(features))
        out[f"onnx_{threads}t_mpx_s"] = round(mpx / seconds, 3)
        onnx_labels = prediction.labels
    order = [int(v) for v in estimator.classes_]
    sk_labels = None
    for threads in (1, 2):
        if threads == 2 and name not in THREADED:
            out["sklearn_2t_mpx_s"] = None
            continue
        if name == "rf":
            estimator.set_params(n_jobs=threads)
        with threadpool_limits(limits=threads):
            seconds, proba = _timed(lambda: estimator.predict_proba(features))
        out[f"sklearn_{threads}t_mpx_s"] = round(mpx / seconds, 3)
        sk_labels = decide_labels(np.asarray(proba), order)
    if onnx_labels is not None and sk_labels is not None:
        out["label_agreement"] = round(float(np.mean(onnx_labels == sk_labels)), 6)
    for threads in (1, 2):
        sk = out.get(f"sklearn_{threads}t_mpx_s") or out.get("sklearn_1t_mpx_s")
        out[f"onnx_over_sklearn_{threads}t"] = round(out[f"onnx_{threads}t_mpx_s"] / sk, 3) if sk else None
    return out


def run(scene: Scene, models: dict[str, BenchModel], pixels: int, log: Any) -> dict[str, Any]:
    """Every model in its own process."""
    rows = []
    for name, model in models.items():
        log(f"  {name}: {pixels} px")
        args = ["--model", name, "--onnx", str(model.onnx), "--sklearn", str(model.sklearn)]
        args += ["--scene", str(scene.root), "--size", str(scene.size), "--pixels", str(pixels)]
        rows.append(run_measured(bench_worker("runtimes", *args)).check().result())
    return {"scene_size": scene.size, "pixels": pixels, "models": rows}


def main() -> None:
    """Worker entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", required=True)
    parser.add_argument("--onnx", type=Path, required=True)
    parser.add_argument("--sklearn", type=Path, required=True)
    parser.add_argument("--scene", type=Path, required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--pixels", type=int, default=250_000)
    ns = parser.parse_args()
    emit(worker(ns.model, ns.onnx, ns.sklearn, Scene(ns.scene, ns.size, 0), ns.pixels))


if __name__ == "__main__":
    main()
