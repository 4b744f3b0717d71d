"""Real parts shared by the app and handler tests: a demo world over loopback HTTP, small ONNX models."""

from __future__ import annotations

import atexit
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from lulc.classes import load_class_table
from lulc.contract import Features, Inputs, ModelContract, Outputs, Provenance
from service.model_registry import ModelInfo, describe
from service.runner import ModelRunner, Prediction, load_model
from service.settings import ServiceSettings
from tests.support.http_server import ServerHandle, start_http_server

BANDS = ("blue", "green", "red", "nir", "swir16")
INDICES = ("ndvi",)


@dataclass(frozen=True)
class World:
    """A generated demo world whose COGs and catalog are served over loopback HTTP."""

    root: Path
    server: ServerHandle
    catalog_url: str
    datetime: str
    bounds: tuple[float, float, float, float]
    class_values: tuple[int, ...]

    def aoi(self, size_deg: float = 0.006, dx: float = 0.0, dy: float = 0.0) -> dict[str, Any]:
        """A square AOI of ``size_deg`` degrees around the world's centre (shifted by dx, dy degrees)."""
        west, south, east, north = self.bounds
        cx, cy = (west + east) / 2 + dx, (south + north) / 2 + dy
        h = size_deg / 2
        ring = [[cx - h, cy - h], [cx + h, cy - h], [cx + h, cy + h], [cx - h, cy + h], [cx - h, cy - h]]
        return {"type": "Polygon", "coordinates": [ring]}


_WORLD: dict[str, World] = {}
_LOCK = threading.Lock()


def shared_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """One 256-pixel demo world per test session, served by a loopback HTTP server with Range support."""
    with _LOCK:
        if "world" not in _WORLD:
            from demo.world import generate

            root = tmp_path_factory.mktemp("service-world")
            server = start_http_server(root)
            atexit.register(server.close)
            demo = generate(root, size=256, seed=0, asset_base_url=server.base_url)
            aoi = json.loads(demo.aoi.read_text())
            coords = np.array(aoi["features"][0]["geometry"]["coordinates"][0])
            bounds = (
                float(coords[:, 0].min()),
                float(coords[:, 1].min()),
                float(coords[:, 0].max()),
                float(coords[:, 1].max()),
            )
            values = tuple(load_class_table(demo.classes).values)
            _WORLD["world"] = World(
                root, server, server.url(demo.catalog), demo.datetime_window, bounds, values
            )
        return _WORLD["world"]


def build_model(model_dir: Path, classes_yaml: Path, seed: int = 0, seasons: list[Any] | None = None) -> Path:
    """A small random forest on reflectance-like features, as ``model_dir/model.onnx`` with its contract."""
    from sklearn.ensemble import RandomForestClassifier

    classes = load_class_table(classes_yaml)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.5, size=(600, len(BANDS))).astype(np.float32)
    ndvi = (x[:, 3] - x[:, 2]) / (x[:, 3] + x[:, 2] + 1e-6)
    features = np.column_stack([x, ndvi]).astype(np.float32)
    edges = np.quantile(ndvi, np.linspace(0, 1, len(classes.values) + 1)[1:-1])
    y = np.array(classes.values)[np.searchsorted(edges, ndvi)]
    forest = RandomForestClassifier(n_estimators=5, max_depth=6, random_state=seed, n_jobs=1).fit(features, y)
    contract = ModelContract(
        name="demo-rf",
        version="1",
        inputs=Inputs(bands=list(BANDS), resolution=10.0, seasons=seasons),
        features=Features(indices=list(INDICES)),
        classes=classes,
        outputs=Outputs(class_order=[int(c) for c in forest.classes_]),
        provenance=Provenance(model_type="rf", seed=seed),
    )
    # the training package's own export path: ONNX without ZipMap, contract embedded in the metadata
    from training.export import embed_contract, to_onnx

    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / "model.onnx"
    path.write_bytes(embed_contract(to_onnx(forest, features.shape[1], "rf"), contract))
    return path


def models_dir(base: Path, world: World) -> Path:
    """A models directory with a good model ``demo`` and a corrupt one ``broken``."""
    root = base / "models"
    build_model(root / "demo", world.root / "classes.yaml")
    (root / "broken").mkdir(parents=True)
    (root / "broken" / "model.onnx").write_bytes(b"this is not an ONNX protobuf \x00\x01\x02")
    return root


def service_settings(base: Path, world: World, models: Path, **overrides: Any) -> ServiceSettings:
    """Settings for tests: the world's catalog, loopback allowed, outputs under ``base``."""
    values: dict[str, Any] = {
        "models_dir": models,
        "stac_url": world.catalog_url,
        "allowed_hosts": ["127.0.0.1"],
        "output_dir": base / "work",
        "tiler_url": "http://tiler.test:8001",
        "sync_max_km2": 100.0,
        "max_aoi_km2": 50.0,
        "max_concurrent_jobs": 2,
        "retry_after_seconds": 7,
        "workers": 1,
        "block_size": 256,
    }
    values.update(overrides)
    return ServiceSettings(**values)


class BlockingRunner:
    """A real ONNX runner whose ``predict`` waits for ``gate``: holds a job running, deterministically."""

    def __init__(self, inner: ModelRunner) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.entered = threading.Event()

    @property
    def contract(self) -> Any:
        return self.inner.contract

    @property
    def origin(self) -> str:
        return self.inner.origin

    @property
    def item_href(self) -> str | None:
        return self.inner.item_href

    def predict(self, features: npt.NDArray[np.float32], *, dissimilarity: bool = False) -> Prediction:
        self.entered.set()
        if not self.gate.wait(timeout=60):
            raise TimeoutError("the test never opened the gate")
        return self.inner.predict(features, dissimilarity=dissimilarity)


class SingleModel:
    """A ``ModelProvider`` offering one runner under one id."""

    def __init__(self, model_id: str, runner: ModelRunner) -> None:
        self.model_id = model_id
        self.runner = runner

    def list(self) -> list[ModelInfo]:
        return [describe(self.model_id, self.runner)]

    def get(self, model_id: str) -> ModelRunner:
        from service.model_registry import ModelNotFoundError

        if model_id != self.model_id:
            raise ModelNotFoundError(f"no model {model_id!r}")
        return self.runner


def blocking_provider(models: Path) -> tuple[SingleModel, BlockingRunner]:
    """The ``demo`` model behind a gate."""
    runner = BlockingRunner(load_model(models / "demo"))
    return SingleModel("demo", runner), runner
