"""A bounded, seeded hyper-parameter search on the grouped CV, and class weights for imbalanced samples.

Each model has a small grid of the values that matter most for land cover (the SVM's C and gamma, a
forest's size, depth and features per split, a tree's depth and leaf size, boosting's rate and leaves).
``--tune`` scores at most ``budget`` candidates of it, drawn by a seeded ``ParameterSampler`` (the recipe's
own parameters are always one of them), each on the same repeated CV splits as the leaderboard: grouped by
polygon where the samples come from polygons, so the search cannot pick values that only memorise them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator

from training.evaluate import Split, cross_validate

GRIDS: dict[str, dict[str, list[Any]]] = {
    "svm": {"C": [0.1, 1.0, 10.0, 100.0, 1000.0], "gamma": ["scale", 0.01, 0.1, 1.0, 10.0]},
    "rf": {"n_estimators": [100, 300], "max_depth": [None, 10, 20], "max_features": ["sqrt", 0.5, None]},
    "dt": {"max_depth": [None, 5, 10, 20], "min_samples_leaf": [1, 2, 5, 10]},
    "hgb": {"learning_rate": [0.03, 0.1, 0.3], "max_leaf_nodes": [15, 31, 63]},
    "lgbm": {"learning_rate": [0.03, 0.1, 0.3], "num_leaves": [15, 31, 63]},
}
"""The values searched per model (parameters of the SVC inside the SVM pipeline, else of the estimator)."""


def candidates(model: str, base: dict[str, Any], budget: int, seed: int) -> list[dict[str, Any]]:
    """The recipe's own parameters first, then up to ``budget - 1`` seeded draws from the model's grid."""
    from sklearn.model_selection import ParameterSampler

    grid = GRIDS.get(model, {})
    drawn: list[dict[str, Any]] = [dict(base)]
    if not grid or budget <= 1:
        return drawn
    size = int(np.prod([len(v) for v in grid.values()]))
    for params in ParameterSampler(grid, n_iter=min(size, budget - 1), random_state=seed):
        candidate = {**base, **params}
        if candidate not in drawn:
            drawn.append(candidate)
    return drawn[:budget]


def tune(
    model: str,
    make: Callable[[dict[str, Any]], BaseEstimator],
    base: dict[str, Any],
    features: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    splits: list[Split],
    scheme: str,
    budget: int,
    seed: int,
    on_candidate: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Score every candidate on ``splits``; the best mean overall accuracy wins (the first of equals).

    Returns the grid, each candidate's parameters and CV summary, and the chosen parameters.
    """
    if not splits:
        raise ValueError("tuning needs cross-validation splits (cv.repeats >= 1)")
    scored = []
    for params in candidates(model, base, budget, seed):
        factory = functools.partial(make, params)
        summary = cross_validate(factory, features, labels, splits, scheme).summary()
        scored.append({"params": params, "cv": summary})
        if on_candidate is not None:
            on_candidate()
    best = max(scored, key=lambda entry: float(entry["cv"]["overall_accuracy"]["mean"]))
    return {
        "grid": GRIDS.get(model, {}),
        "scheme": scheme,
        "budget": budget,
        "candidates": [
            {
                "params": entry["params"],
                "overall_accuracy_mean": entry["cv"]["overall_accuracy"]["mean"],
                "overall_accuracy_sd": entry["cv"]["overall_accuracy"]["sd"],
            }
            for entry in scored
        ],
        "chosen": best["params"],
        "chosen_cv": best["cv"],
    }
