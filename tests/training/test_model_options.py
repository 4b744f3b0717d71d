"""Model settings a recipe may give: each trains and exports, or is refused in one line before any work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from training.aoa import fit_applicability
from training.errors import ConfigError, PointsError
from training.models import make_estimator
from training.pipeline import train

from .conftest import tutorial_recipe


def _recipe(tutorial: Path, out: Path, params: dict[str, object]) -> Any:
    return tutorial_recipe(tutorial, out, models=["svm"], model_params={"svm": params}, cv={"repeats": 0})


@pytest.mark.parametrize("kernel", ["linear", "poly"])
def test_an_svm_of_another_kernel_exports_with_its_area_of_applicability(
    tutorial: Path, tmp_path: Path, kernel: str
) -> None:
    """A linear or polynomial SVC exports with its DI output.

    skl2onnx writes opset 9 for these: the DI's ReduceSum took its axes as an input (opset 13) and the
    graph was invalid, after all the CV work.
    """
    result = train(_recipe(tutorial, tmp_path / "m", {"kernel": kernel}))
    assert result.metrics["parity"]["test_agreement"] >= 0.9999
    assert result.contract.applicability is not None


def test_an_svm_without_probabilities_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^model 'svm' needs probability: true") as refused:
        make_estimator("svm", 0, 1, {"probability": False})
    assert "\n" not in str(refused.value)


def test_identical_training_samples_are_a_points_error_not_a_crash() -> None:
    features = np.ones((20, 3))
    with pytest.raises(PointsError, match=r"every training sample has the same features"):
        fit_applicability(features, np.arange(20) % 4, [0.1, 0.2, 0.3])


def test_an_svm_without_probabilities_is_refused_with_the_recipe(tutorial: Path, tmp_path: Path) -> None:
    """Before any imagery is read: it was refused only after sampling, when the first model was fitted."""
    with pytest.raises(ConfigError, match=r"model 'svm' needs probability: true"):
        _recipe(tutorial, tmp_path / "m", {"probability": False})
