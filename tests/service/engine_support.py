"""Helpers for the engine tests: small scikit-learn models exported to ONNX with an embedded contract."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lulc.classes import ClassTable
from lulc.contract import METADATA_KEY, Features, Inputs, ModelContract, Outputs, Provenance, Radiometry


def make_contract(
    classes: ClassTable,
    class_order: Sequence[int],
    *,
    bands: Sequence[str],
    indices: Sequence[str] = (),
    resolution: float = 10.0,
    scale: float = 1.0,
    offset: float = 0.0,
    model_type: str = "svm",
    composite: str = "median",
    name: str = "test-model",
    mask_scl: Sequence[int] | None = None,
) -> ModelContract:
    return ModelContract(
        name=name,
        version="1",
        inputs=Inputs(
            bands=list(bands),
            resolution=resolution,
            radiometry=Radiometry(scale=scale, offset=offset),
            composite=composite,
            **({"mask_scl": list(mask_scl)} if mask_scl is not None else {}),
        ),
        features=Features(indices=list(indices)),
        classes=classes,
        outputs=Outputs(class_order=[int(v) for v in class_order]),
        provenance=Provenance(model_type=model_type, seed=0),
    )


def export_onnx(estimator: Any, n_features: int, contract: ModelContract, path: Path) -> Path:
    """Convert a fitted classifier to ONNX (no ZipMap) with the contract in its metadata."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    onx = to_onnx(
        estimator,
        initial_types=[("features", FloatTensorType([None, n_features]))],
        options={id(estimator): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    entry = onx.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = contract.to_json()
    path.write_bytes(onx.SerializeToString())
    return path


def fit_forest(x: npt.NDArray[np.float32], y: npt.NDArray[np.int64], seed: int = 0) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=20, max_depth=10, random_state=seed, n_jobs=1).fit(x, y)
