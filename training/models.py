"""The estimators ``lulc train`` offers, seeded and deterministic, by short name."""

from __future__ import annotations

import contextlib
import importlib.util
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from training.errors import ConfigError

if TYPE_CHECKING:  # scikit-learn takes seconds to import: a refused recipe does not wait for it
    from sklearn.base import BaseEstimator

DESCRIPTIONS = {
    "rf": "Random forest",
    "svm": "SVM (RBF kernel, standardised features)",
    "dt": "Decision tree",
    "hgb": "Histogram gradient boosting",
    "lgbm": "LightGBM",
}


def lightgbm_available() -> bool:
    """Whether LightGBM is installed."""
    return importlib.util.find_spec("lightgbm") is not None


def make_estimator(
    name: str, seed: int, n_jobs: int = 1, params: dict[str, Any] | None = None
) -> BaseEstimator:
    """A fresh, seeded estimator; ``params`` override its defaults (scikit-learn's, as the tutorial)."""
    params = dict(params or {})
    if name == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(**{"random_state": seed, "n_jobs": n_jobs, **params})
    if name == "svm":
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        if params.get("probability", True) is not True:
            # the label rule, the confidence and class sets all decide from class probabilities
            raise ConfigError("model 'svm' needs probability: true (maps decide from class probabilities)")
        svc = SVC(**{"kernel": "rbf", "probability": True, "random_state": seed, **params})
        return Pipeline([("scale", StandardScaler()), ("svc", svc)])
    if name == "dt":
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(**{"random_state": seed, **params})
    if name == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(**{"random_state": seed, **params})
    if name == "lgbm":
        if not lightgbm_available():
            raise ConfigError("model 'lgbm' needs LightGBM, which is not installed (pip install lightgbm)")
        from lightgbm import LGBMClassifier

        defaults = {"random_state": seed, "n_jobs": n_jobs, "deterministic": True, "verbose": -1}
        return LGBMClassifier(**{**defaults, **params})
    raise ConfigError(f"unknown model {name!r}; known: {sorted(DESCRIPTIONS)}")


def params_problem(name: str, params: dict[str, Any]) -> str | None:
    """What is wrong with recipe ``params`` for model ``name``, before any imagery is read; None if nothing.

    An unknown key (``n_estimator``) or a value out of range (``n_estimators: -5``) failed only at the first
    fit, after the sampling, as an "unexpected" error.
    """
    if not params:
        return None
    from sklearn.pipeline import Pipeline

    def final(estimator: Any) -> Any:  # the SVM's SVC, after its scaler
        return estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator

    target = final(make_estimator(name, 0))
    known = set(target.get_params(deep=False))
    unknown = sorted(set(params) - known)
    if unknown and name != "lgbm":  # LightGBM takes any of its own parameters as keywords
        return (
            f"model_params.{name}: unknown parameter(s) {unknown} of {type(target).__name__}; "
            f"known: {sorted(known)}"
        )
    inner = final(make_estimator(name, 0, 1, params))
    try:
        if hasattr(inner, "_parameter_constraints"):  # scikit-learn's own (LightGBM's check at its fit)
            inner._validate_params()  # every parameter checked, as its fit does first
    except (TypeError, ValueError) as exc:
        return f"model_params.{name}: {exc}"
    return None


def classes_of(model: BaseEstimator) -> list[int]:
    """The class value of each probability column of a fitted model."""
    return [int(v) for v in model.classes_]


@contextlib.contextmanager
def quiet_estimators() -> Iterator[None]:
    """Silence known warnings inside training only.

    scikit-learn 1.9 deprecates ``SVC(probability=True)``, whose Platt scaling and pairwise coupling are
    exactly what the exported graph reproduces (``training.svm_graph``); LightGBM chatters about feature
    names.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*(probability|probA_|probB_).*")
        warnings.filterwarnings("ignore", category=UserWarning, message=r".*feature names.*")
        yield
