"""What "where the map can be trusted" costs: ``lulc classify`` with the AOA and class sets vs without.

One scene, one estimator (``bench.models``' estimator fitted on a hold-out split, its area of applicability
and class sets fitted as ``lulc train`` fits them), exported twice: with the DI output in its ONNX graph and
the class sets in its contract (``trust``), and without either (``plain``, as ``trust: false`` trains it).
Three ``lulc classify`` configurations on the same scene:

- ``with``: the trust model, defaults (``aoa.tif`` and ``sets.tif`` written);
- ``aoa``: the trust model with ``--no-sets`` (``aoa.tif`` only): with it, the cost splits into the AOA's
  (``aoa`` over ``plain``) and the sets' (``with`` over ``aoa``);
- ``without``: the trust model with ``--no-aoa --no-sets`` (no layers written; the runner cuts the DI out of
  the graph, ``service.graph_outputs``, since ONNX Runtime would run it whichever outputs are fetched);
- ``plain``: the plain model (nothing to skip).

Each run is a fresh process; the configurations take turns (with, aoa, without, plain, with, ...)
``--repeats`` times so that a drifting load on the shared machine falls on all alike. The figures are ratios
of the best of each (the medians are given beside them): wall time, CPU time (user + system of the process
and its threads: a busy machine stretches it far less than the wall time) and peak RSS (each process
alone). Issue 13's target: under 20 % extra time together at 10,000 x 10,000 px, memory unchanged (``with``
against ``plain``).

``python -m bench.trust --size 3000`` (``--size 10000`` for the issue's figure) prints the JSON result and
writes it to ``WORK/trust-SIZE.json`` (``--model rf``: ``trust-SIZE-rf.json``); ``run`` is the same for a
runner that already serves the scene.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from bench.classify import agreement, run_service
from bench.common import Measured, emit, file_server, machine_info, ratio, utc_now
from bench.models import BenchModel, train_models, training_samples
from bench.scene import Scene, generate
from lulc.contract import Applicability, contract_from_metadata
from training import export
from training.aoa import DI_OUTPUT, add_dissimilarity_output
from training.evaluate import grouping, holdout_split, permutation_importance
from training.models import make_estimator, quiet_estimators
from training.settings import TrainingSettings
from training.trust import fit_trust

TARGET_TIME_RATIO = 1.2
"""With / without wall time: under 20 % extra."""
TARGET_RSS_RATIO = 1.05
"""With / without peak RSS: "unchanged", within 5 % (the page cache and allocator make RSS wobble)."""
HOLD_OUT = 0.3
FOLDS = 5
COVERAGE = 0.9
IMPORTANCE_REPEATS = 5


def trust_models(scene: Scene, name: str, work: Path, seed: int = 0) -> tuple[Path, Path, dict[str, Any]]:
    """The ``trust`` and ``plain`` ONNX files of one estimator, and facts about its AOA.

    The contract is the one ``bench.models`` writes for ``name``, with the applicability and the class sets
    added for ``trust``. Both are rebuilt every run (seconds), so they always hold the current graphs.
    """
    base = train_models(scene, [name], work / f"models-{scene.size}", seed)[name]
    stored = onnx.load(str(base.onnx))
    contract = contract_from_metadata({p.key: p.value for p in stored.metadata_props}, str(base.onnx))
    features, labels = training_samples(scene, seed)
    names = contract.feature_names
    grouped = grouping(labels, None, contract.classes)
    train, test = holdout_split(labels, HOLD_OUT, seed, grouped)
    with quiet_estimators():
        estimator = make_estimator(name, seed, 1).fit(features[train], labels[train])
        rows = permutation_importance(
            estimator, features[test], labels[test], names, seed, IMPORTANCE_REPEATS
        )
        trust = fit_trust(
            estimator,
            features[train],
            labels[train],
            None,
            features[test],
            labels[test],
            {row["feature"]: float(row["mean"]) for row in rows},
            names,
            contract.classes,
            folds=FOLDS,
            coverage=COVERAGE,
            seed=seed,
            max_reference=TrainingSettings().aoa_max_samples,
        )
        graph = export.to_onnx(estimator, len(names), name)
    plain = base.onnx.with_name(f"{name}-plain.onnx")
    plain.write_bytes(export.embed_contract(graph, contract))
    with_trust = contract.model_copy(
        update={
            "applicability": Applicability(output=DI_OUTPUT, threshold=trust.applicability.threshold),
            "class_sets": trust.class_sets,
        }
    )
    path = base.onnx.with_name(f"{name}-trust.onnx")
    path.write_bytes(export.embed_contract(add_dissimilarity_output(graph, trust.applicability), with_trust))
    facts = {
        "reference_samples": int(trust.applicability.reference.shape[0]),
        "features": len(names),
        "classes": len(contract.classes.classes),
        "aoa_threshold": round(trust.applicability.threshold, 6),
    }
    return path, plain, facts


def _children_cpu() -> float:
    """User + system CPU seconds of every child process waited for so far (``RUSAGE_CHILDREN``)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _best(runs: list[tuple[Measured, float]]) -> dict[str, Any]:
    return {
        "wall_s": round(min(m.wall_s for m, _ in runs), 2),
        "cpu_s": round(min(cpu for _, cpu in runs), 2),
        "peak_rss_mib": min(m.max_rss_mib for m, _ in runs),
        "wall_s_median": round(float(np.median([m.wall_s for m, _ in runs])), 2),
        "cpu_s_median": round(float(np.median([cpu for _, cpu in runs])), 2),
        "wall_s_all": [round(m.wall_s, 2) for m, _ in runs],
        "cpu_s_all": [round(cpu, 2) for _, cpu in runs],
        "peak_rss_mib_all": [m.max_rss_mib for m, _ in runs],
    }


def model_suffix(name: str) -> str:
    """What a model's results and maps add to their names: nothing for the SVM, else ``-name``."""
    return "" if name == "svm" else f"-{name}"


def run(
    scene: Scene, name: str, base_url: str, work: Path, log: Any, repeats: int = 3, seed: int = 0
) -> dict[str, Any]:
    """The four configurations, taking turns, ``repeats`` times each, on a scene served at ``base_url``."""
    trust_path, plain_path, facts = trust_models(scene, name, work, seed)
    stac_url = f"{base_url}/items.json"
    out = work / f"trust-{scene.size}{model_suffix(name)}"
    configurations = {
        # run_service reads only the ONNX file of a BenchModel
        "with": (BenchModel(name, trust_path, trust_path, trust_path), []),
        "aoa": (BenchModel(name, trust_path, trust_path, trust_path), ["--no-sets"]),
        "without": (BenchModel(name, trust_path, trust_path, trust_path), ["--no-aoa", "--no-sets"]),
        "plain": (BenchModel(name, plain_path, plain_path, plain_path), []),
    }
    runs: dict[str, list[tuple[Measured, float]]] = {key: [] for key in configurations}
    for r in range(repeats):
        for key, (model, extra) in configurations.items():
            before = _children_cpu()
            measured = run_service(scene, model, stac_url, out / key, extra)
            runs[key].append((measured, _children_cpu() - before))
            log(
                f"  {key}, run {r + 1}: {measured.wall_s:.1f} s wall, {runs[key][-1][1]:.1f} s CPU, "
                f"{measured.max_rss_mib:.0f} MiB"
            )
    best = {key: _best(value) for key, value in runs.items()}

    def ratios(a: str, b: str) -> dict[str, float | None]:
        return {
            figure: ratio(best[a][figure], best[b][figure]) for figure in ("wall_s", "cpu_s", "peak_rss_mib")
        }

    cost = ratios("with", "plain")
    return {
        "model": name,
        "size": scene.size,
        "megapixels": scene.megapixels,
        "repeats": repeats,
        "model_facts": facts,
        **best,
        "files": {key: sorted(p.name for p in (out / key).glob("*.tif")) for key in configurations},
        "same_map": {
            key: agreement(out / "with" / "classes.tif", out / key / "classes.tif")["agreement"]
            for key in ("aoa", "without", "plain")
        },
        "ratios": {
            "with_over_plain": cost,
            "without_over_plain": ratios("without", "plain"),
            "with_over_without": ratios("with", "without"),
            "aoa_over_plain": ratios("aoa", "plain"),
            "with_over_aoa": ratios("with", "aoa"),
        },
        "median_ratios": {
            key: {
                figure: ratio(best[a][f"{figure}_median"], best[b][f"{figure}_median"])
                for figure in ("wall_s", "cpu_s")
            }
            for key, (a, b) in {
                "with_over_plain": ("with", "plain"),
                "without_over_plain": ("without", "plain"),
                "aoa_over_plain": ("aoa", "plain"),
                "with_over_aoa": ("with", "aoa"),
            }.items()
        },
        "targets": {
            f"cpu_with_over_plain_lt_{TARGET_TIME_RATIO}": _below(cost["cpu_s"], TARGET_TIME_RATIO),
            f"wall_with_over_plain_lt_{TARGET_TIME_RATIO}": _below(cost["wall_s"], TARGET_TIME_RATIO),
            f"peak_rss_with_over_plain_le_{TARGET_RSS_RATIO}": _below(
                cost["peak_rss_mib"], TARGET_RSS_RATIO + 1e-9
            ),
        },
    }


def _below(value: float | None, limit: float) -> bool | None:
    return None if value is None else value < limit


def main() -> None:
    """Stand-alone: generate (or reuse) the scene, serve it over loopback HTTP, measure, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=3000, help="Scene edge in pixels (the issue: 10000).")
    parser.add_argument("--model", default="svm")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "work")
    ns = parser.parse_args()
    work = ns.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    command = f"python -m bench.trust --size {ns.size} --model {ns.model} --repeats {ns.repeats}"
    result: dict[str, Any] = {"machine": machine_info(), "command": command, "started": utc_now()}
    scene = generate(work / f"scene-{ns.size}", ns.size, ns.seed)
    with file_server(work) as server:
        base_url = f"{server.base_url}/{scene.root.name}"
        scene.write_items(base_url, scene.root / "items.json")
        result.update(
            run(scene, ns.model, base_url, work, lambda m: print(m, flush=True), ns.repeats, ns.seed)
        )
    result["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    result["finished"] = utc_now()
    (work / f"trust-{ns.size}{model_suffix(ns.model)}.json").write_text(json.dumps(result, indent=1) + "\n")
    emit(result)


if __name__ == "__main__":
    main()
