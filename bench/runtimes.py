"""Model runtimes: inference throughput of our ONNX graph vs ONNX Runtime's stock operators vs scikit-learn.

For each model (rf, svm, dt, hgb) one feature matrix (pixels of the scene) goes through
- **ours**: the graph ``lulc train`` exports (``training.export.to_onnx``; for an RBF SVM the dense-algebra
  graph of ``training.svm_graph``), run by the service's ``OnnxRunner`` (its chunking, 1 intra-op thread
  per call unless said otherwise);
- **stock**: skl2onnx's own graph (``graph="stock"``: ``SVMClassifier``, ``TreeEnsembleClassifier``), run the
  same way (for the tree models the two graphs are the same today);
- **scikit-learn** ``predict_proba`` with 1 thread (and 2 where the estimator has a thread knob: rf
  ``n_jobs``, hgb OpenMP through threadpoolctl; svm and dt have none);
- for the tree models, the **other exact forms** of ``bench/tree_forms.py`` (``TreeEnsembleRegressor``,
  ai.onnx.ml 5's ``TreeEnsemble``, Hummingbird's GEMM strategy) with 1 thread, in the same chunks as the
  runner, labels by the same rule: what issue 14 asked to compare, side by side with ours and stock (a form
  whose tensors would exceed ``FORM_MAX_BYTES`` per call is skipped and says so).

Each figure is given twice: wall-clock Mpx/s, and **Mpx per CPU second** (pixels over the process's CPU time
during the call, all its threads together), which is the throughput per busy core and is what the per-core
targets use: on a shared machine another process's load stretches the wall time, much less the CPU time.
Labels of every runtime are decided by the same rule (``lulc.decision.decide_labels``) and compared with
scikit-learn's. Each model runs in a fresh process: ``python -m bench.runtimes --model ... --pixels N``.
"""

from __future__ import annotations

import argparse
import os
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
from lulc.onnx_runtime import onnxruntime

THREADED = {"rf", "hgb"}
PER_CORE_TARGETS = {"svm": 2.5, "rf": 1.0}
"""Issue 14's targets for our graph, Mpx per CPU second (one core busy)."""
REPEATS = 3
"""Timed calls per figure; the best is kept (the machine is shared)."""
FORM_MAX_BYTES = 1 << 28
"""Largest float32 intermediate per call of an alternative form (the GEMM form grows with trees x leaves)."""


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


def _timed(calls: dict[str, Any], mpx: float) -> dict[str, tuple[dict[str, float], Any]]:
    """Best wall Mpx/s and best Mpx per CPU second of each call over ``REPEATS`` rounds, and its result.

    The calls take turns within each round (A B A B ...), so that a drifting load on the shared machine
    falls on all of them alike.
    """
    walls: dict[str, list[float]] = {key: [] for key in calls}
    cpus: dict[str, list[float]] = {key: [] for key in calls}
    values: dict[str, Any] = {}
    for _ in range(REPEATS):
        for key, call in calls.items():
            wall, cpu = time.perf_counter(), time.process_time()
            values[key] = call()
            walls[key].append(time.perf_counter() - wall)
            cpus[key].append(time.process_time() - cpu)
    return {
        key: (
            {
                "mpx_s": round(mpx / min(walls[key]), 3),
                "mpx_cpu_s": round(mpx / max(min(cpus[key]), 1e-9), 3),
            },
            values[key],
        )
        for key in calls
    }


def _onnx_calls(model: BenchModel, features: np.ndarray[Any, Any], threads: int) -> dict[str, Any]:
    """Our graph and the stock graph through the service's runner (warmed up), as timed calls."""
    from service.runner import OnnxRunner

    calls = {}
    for kind, path in (("ours", model.onnx), ("stock", model.stock)):
        runner = OnnxRunner(path, threads=threads)
        runner.predict(features)  # warm-up: the session's memory arena grows to its working size
        calls[kind] = lambda runner=runner: runner.predict(features).labels
    return calls


def _form_calls(model: BenchModel, features: np.ndarray[Any, Any], order: list[int]) -> dict[str, Any]:
    """The other exact forms of a tree ensemble (``bench/tree_forms.py``) as timed calls, or why not."""
    import onnx

    ort = onnxruntime()

    from bench.tree_forms import FORMS, intermediate_floats
    from service.runner import CHUNK_ROWS

    stock = onnx.load(str(model.stock))
    calls: dict[str, Any] = {}
    for form, build in FORMS.items():
        graph = build(stock)
        if graph is None:
            continue
        size = 4 * intermediate_floats(graph) * min(CHUNK_ROWS, len(features))
        if size > FORM_MAX_BYTES:
            calls[form] = f"skipped ({size / 2**30:.1f} GiB per call of {CHUNK_ROWS} rows)"
            continue
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])

        def call(session: Any = session) -> Any:
            parts = [
                session.run(["probabilities"], {"features": features[a : a + CHUNK_ROWS]})[0]
                for a in range(0, len(features), CHUNK_ROWS)
            ]
            return decide_labels(np.concatenate(parts), order)

        call()  # warm-up
        calls[form] = call
    return calls


def worker(name: str, model: BenchModel, scene: Scene, n: int) -> dict[str, Any]:
    """Time our graph, the stock graph (1 and 2 threads) and scikit-learn on one model, on scene pixels."""
    return measure(name, model, pixels_of(scene, n))


def measure(name: str, model: BenchModel, features: np.ndarray[Any, Any]) -> dict[str, Any]:
    """Time our graph, the stock graph (1 and 2 threads) and scikit-learn on one model and feature matrix.

    ``name`` picks the per-core target (``PER_CORE_TARGETS``) and whether scikit-learn gets 2 threads.
    """
    from threadpoolctl import threadpool_limits

    mpx = features.shape[0] / 1e6
    estimator = load_sklearn(model.sklearn)
    order = [int(v) for v in estimator.classes_]
    out: dict[str, Any] = {
        "model": name,
        "pixels": int(features.shape[0]),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }
    labels: dict[str, Any] = {}
    forms = _form_calls(model, features, order)
    timed_forms = {form: call for form, call in forms.items() if callable(call)}
    for threads in (1, 2):
        calls = _onnx_calls(model, features, threads)
        for kind, (figures, labels[kind]) in _timed(
            {**calls, **(timed_forms if threads == 1 else {})}, mpx
        ).items():
            out[f"{kind}_{threads}t"] = figures
    for threads in (1, 2):
        if threads == 2 and name not in THREADED:
            out["sklearn_2t"] = None
            continue
        if name == "rf":
            estimator.set_params(n_jobs=threads)
        with threadpool_limits(limits=threads):
            figures, proba = _timed({"sklearn": lambda: estimator.predict_proba(features)}, mpx)["sklearn"]
        out[f"sklearn_{threads}t"] = figures
        labels["sklearn"] = decide_labels(np.asarray(proba), order)
    for kind in ("ours", "stock"):
        out[f"{kind}_label_agreement"] = round(float(np.mean(labels[kind] == labels["sklearn"])), 6)
    out["forms"] = {
        form: {
            "1t": out.pop(f"{form}_1t"),
            "label_agreement": round(float(np.mean(labels[form] == labels["sklearn"])), 6),
        }
        if callable(call)
        else {"skipped": call}
        for form, call in forms.items()
    }
    out["ours_over_stock_per_core"] = round(out["ours_1t"]["mpx_cpu_s"] / out["stock_1t"]["mpx_cpu_s"], 3)
    out["ours_over_sklearn_per_core"] = round(out["ours_1t"]["mpx_cpu_s"] / out["sklearn_1t"]["mpx_cpu_s"], 3)
    out["target_per_core"] = PER_CORE_TARGETS.get(name)
    out["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    return out


def run(scene: Scene, models: dict[str, BenchModel], pixels: int, log: Any) -> dict[str, Any]:
    """Every model in its own process."""
    rows = []
    for name, model in models.items():
        log(f"  {name}: {pixels} px")
        args = ["--model", name, "--onnx", str(model.onnx), "--sklearn", str(model.sklearn)]
        args += ["--stock", str(model.stock), "--scene", str(scene.root), "--size", str(scene.size)]
        args += ["--pixels", str(pixels)]
        rows.append(run_measured(bench_worker("runtimes", *args)).check().result())
    return {"scene_size": scene.size, "pixels": pixels, "models": rows}


def main() -> None:
    """Worker entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", required=True)
    parser.add_argument("--onnx", type=Path, required=True)
    parser.add_argument("--stock", type=Path, required=True)
    parser.add_argument("--sklearn", type=Path, required=True)
    parser.add_argument("--scene", type=Path, required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--pixels", type=int, default=250_000)
    ns = parser.parse_args()
    model = BenchModel(ns.model, ns.onnx, ns.sklearn, ns.stock)
    emit(worker(ns.model, model, Scene(ns.scene, ns.size, 0), ns.pixels))


if __name__ == "__main__":
    main()
