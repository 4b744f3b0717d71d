"""Class weights and the bounded, seeded hyper-parameter search on the (grouped) repeated CV."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.api import train
from training.config import CvOptions
from training.evaluate import repeated_splits
from training.models import make_estimator
from training.tuning import GRIDS, candidates, tune


def test_candidates_start_with_the_recipe_and_are_seeded() -> None:
    first = candidates("svm", {"class_weight": "balanced"}, budget=5, seed=3)
    assert first[0] == {"class_weight": "balanced"}
    assert len(first) == 5
    assert all(c["class_weight"] == "balanced" for c in first)
    assert all(c["C"] in GRIDS["svm"]["C"] for c in first[1:])
    assert candidates("svm", {"class_weight": "balanced"}, budget=5, seed=3) == first
    assert candidates("svm", {"class_weight": "balanced"}, budget=5, seed=4) != first
    assert candidates("svm", {}, budget=1, seed=0) == [{}]


def test_tune_keeps_the_candidate_with_the_best_cv_accuracy() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([1, 2, 3], 40)
    features = (labels[:, None] * 0.1 + rng.normal(0, 0.08, size=(labels.size, 4))).astype(np.float32)
    splits, name = repeated_splits(labels, CvOptions(folds=3, repeats=1), seed=0)
    result = tune(
        "dt", lambda p: make_estimator("dt", 0, 1, p), {}, features, labels, splits, name, budget=6, seed=1
    )
    scores = [c["overall_accuracy_mean"] for c in result["candidates"]]
    assert len(scores) == 6
    assert result["chosen"] == result["candidates"][int(np.argmax(scores))]["params"]
    assert result["chosen_cv"]["overall_accuracy"]["mean"] == max(scores)


@pytest.mark.slow
def test_train_with_tune_and_balanced_weights_reports_the_search(lulc_py: Path, tmp_path: Path) -> None:
    run = train(
        image=lulc_py / "s2image.tif",
        bands=["blue", "green", "red", "nir"],
        points=lulc_py / "samples.shp",
        label_field="labels",
        models=["svm"],
        class_weight="balanced",
        tune=True,
        tune_budget=4,
        cv={"folds": 3, "repeats": 2},
        seed=0,
        out=tmp_path / "m",
    )
    entry = run.metrics["leaderboard"][0]
    tuning = entry["tuning"]
    assert len(tuning["candidates"]) == 4
    assert tuning["grid"] == GRIDS["svm"]
    assert entry["params"] == tuning["chosen"]
    assert entry["params"]["class_weight"] == "balanced"
    # tuned on the training part alone: the hold-out's score is of a model nothing was chosen on
    assert tuning["samples"] == run.metrics["samples"]["train"] < 121
    assert "of the training part" in tuning["scheme"]
    best = max(c["overall_accuracy_mean"] for c in tuning["candidates"])
    assert tuning["chosen_cv"]["overall_accuracy"]["mean"] == pytest.approx(best)
    report = (run.out / "report.md").read_text()
    assert "## Tuning" in report
    assert json.loads((run.out / "metrics.json").read_text())["leaderboard"][0]["tuning"] == tuning
