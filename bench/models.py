"""Benchmark models: scikit-learn estimators trained on the scene, exported to ONNX with the contract.

The estimators are ``training.models.make_estimator`` (the same defaults ``lulc train`` uses), the export is
``training.export`` (the same graph, opsets and embedded contract), so the service runs exactly what a
trained model would be. The fitted scikit-learn model is pickled next to the ONNX file for the baselines, and
skl2onnx's own graph (``to_onnx(..., graph="stock")``: ONNX Runtime's ``ai.onnx.ml`` operators, what models
made before issue 14 hold) is written as ``NAME-stock.onnx`` for the runtime comparison.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio

from bench.scene import SCENE_BANDS, Scene
from demo.landscape import CLASS_TABLE
from lulc.classes import ClassTable
from lulc.contract import Features, Inputs, ModelContract, Outputs, Provenance
from lulc.features import compute_features
from lulc.gdal_env import gdal_env
from training import export
from training.models import classes_of, make_estimator, quiet_estimators

INDICES: tuple[str, ...] = ("ndvi", "ndwi")
POINTS_PER_CLASS = 100
EXPORT = 3
"""Version of the export: models cached by an older bench run are trained and exported again."""
SCALE = 1e-4
"""DN to reflectance (the item's ``raster:bands`` scale; baseline 03.01, no offset)."""


@dataclass(frozen=True)
class BenchModel:
    """A trained benchmark model: our ONNX with contract, the stock graph, the pickled scikit-learn twin."""

    name: str
    onnx: Path
    sklearn: Path
    stock: Path


def features_of(dn: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """Features ``(n, 6)`` of DNs ``(4, n)`` exactly as the service computes them (reflectance, indices)."""
    reflectance = dn.astype(np.float32) * np.float32(SCALE)
    return compute_features(reflectance, list(SCENE_BANDS), list(INDICES))


def training_samples(scene: Scene, seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Features and labels of up to ``POINTS_PER_CLASS`` random pixels of every class of the truth map."""
    rng = np.random.default_rng(seed)
    with gdal_env(), rasterio.open(scene.truth) as src:
        truth = src.read(1)
    rows_all: list[int] = []
    cols_all: list[int] = []
    for value in CLASS_TABLE.values:
        rr, cc = np.nonzero(truth == value)
        if rr.size == 0:
            continue
        pick = rng.choice(rr.size, size=min(POINTS_PER_CLASS, rr.size), replace=False)
        rows_all.extend(rr[pick].tolist())
        cols_all.extend(cc[pick].tolist())
    rows, cols = np.asarray(rows_all), np.asarray(cols_all)
    labels = truth[rows, cols].astype(np.int64)
    del truth
    dn = np.empty((len(SCENE_BANDS), rows.size), dtype=np.uint16)
    for b, name in enumerate(SCENE_BANDS):
        with gdal_env(), rasterio.open(scene.band(name)) as src:
            dn[b] = src.read(1)[rows, cols]  # one band at a time: at most one band in memory
    return features_of(dn), labels


def bench_contract(name: str, model_type: str, class_order: list[int], seed: int) -> ModelContract:
    table = ClassTable(classes=[c for c in CLASS_TABLE.classes if c.value in class_order])
    return ModelContract(
        name=name,
        version="bench",
        inputs=Inputs(bands=list(SCENE_BANDS), resolution=10.0),
        features=Features(indices=list(INDICES)),
        classes=table,
        outputs=Outputs(class_order=class_order),
        provenance=Provenance(model_type=model_type, training_data="bench scene truth", seed=seed),
    )


def train_models(scene: Scene, names: list[str], out: Path, seed: int = 0) -> dict[str, BenchModel]:
    """Train and export every model in ``names`` (reused when already there for this scene and seed)."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "models.json"
    identity = {
        "scene": str(scene.root),
        "size": scene.size,
        "seed": seed,
        "points": POINTS_PER_CLASS,
        "export": EXPORT,
    }
    known: dict[str, Any] = json.loads(marker.read_text()) if marker.is_file() else {}
    models: dict[str, BenchModel] = {}
    todo = [n for n in names if known.get(n) != identity]
    samples = training_samples(scene, seed) if todo else None
    for name in names:
        model = BenchModel(name, out / f"{name}.onnx", out / f"{name}.pkl", out / f"{name}-stock.onnx")
        models[name] = model
        if name not in todo and all(p.is_file() for p in (model.onnx, model.sklearn, model.stock)):
            continue
        if samples is None:
            samples = training_samples(scene, seed)
        x, y = samples
        with quiet_estimators():
            estimator = make_estimator(name, seed, 1).fit(x, y)
            onx = export.to_onnx(estimator, x.shape[1], name)
            stock = export.to_onnx(estimator, x.shape[1], name, graph="stock")
        contract = bench_contract(f"bench-{name}", name, classes_of(estimator), seed)
        model.onnx.write_bytes(export.embed_contract(onx, contract))
        model.stock.write_bytes(export.embed_contract(stock, contract))
        model.sklearn.write_bytes(pickle.dumps(estimator))
        known[name] = identity
        marker.write_text(json.dumps(known, indent=1) + "\n")
    return models


def load_sklearn(path: Path) -> Any:
    """The pickled scikit-learn estimator (written by ``train_models`` in this run: trusted)."""
    return pickle.loads(path.read_bytes())
