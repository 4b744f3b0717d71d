"""Accuracy done properly: seeded stratified hold-out, repeated (or spatial block) CV, per-class scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score, precision_recall_fscore_support

from lulc.classes import ClassTable
from lulc.decision import decide_labels
from training.config import CvOptions
from training.errors import PointsError
from training.models import classes_of

Split = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]
Factory = Callable[[], BaseEstimator]


def decided_labels(model: BaseEstimator, features: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """The model's labels under the contract's rule: ``decide_labels`` on its probabilities."""
    proba = model.predict_proba(features)
    return decide_labels(proba, classes_of(model)).astype(np.int64)


def _r(value: float) -> float:
    return round(float(value), 6)


def score(
    y_true: npt.NDArray[np.int64], y_pred: npt.NDArray[np.int64], classes: ClassTable
) -> dict[str, Any]:
    """Overall accuracy, kappa, macro F1, per-class scores and the confusion matrix (rows = reference)."""
    values = classes.values
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=values, zero_division=0
    )
    counts = confusion_matrix(y_true, y_pred, labels=values)
    total = max(int(counts.sum()), 1)
    per_class = [
        {
            "value": c.value,
            "name": c.name,
            "producers_accuracy": _r(recall[i]),
            "users_accuracy": _r(precision[i]),
            "precision": _r(precision[i]),
            "recall": _r(recall[i]),
            "f1": _r(f1[i]),
            "support": int(support[i]),
        }
        for i, c in enumerate(classes.classes)
    ]
    present = [i for i in range(len(values)) if support[i] > 0]
    return {
        "overall_accuracy": _r(np.mean(y_true == y_pred)),
        "kappa": _r(cohen_kappa_score(y_true, y_pred, labels=values)),
        "macro_f1": _r(np.mean(f1[present]) if present else 0.0),
        "n": int(y_true.size),
        "per_class": per_class,
        "confusion_matrix": {
            "rows": "reference",
            "columns": "predicted",
            "labels": values,
            "names": classes.names,
            "counts": counts.astype(int).tolist(),
            "percent": [[_r(100.0 * v / total) for v in row] for row in counts],
        },
    }


def check_class_counts(labels: npt.NDArray[np.int64], classes: ClassTable, origin: str) -> None:
    """Raise PointsError if any class present in the table has fewer than 2 usable points."""
    counts = {c.value: int(np.count_nonzero(labels == c.value)) for c in classes.classes}
    few = {classes.by_value(v).name: n for v, n in counts.items() if 0 < n < 2}
    if few:
        raise PointsError(
            f"class(es) {few} in {origin} have fewer than 2 usable points; a stratified split needs "
            "at least 2 per class: add points or drop the class"
        )
    if sum(1 for n in counts.values() if n > 0) < 2:
        raise PointsError(f"{origin} has usable points of fewer than 2 classes: {counts}")


def holdout_split(labels: npt.NDArray[np.int64], test_size: float, seed: int) -> Split:
    """A seeded stratified hold-out split (indices of training and test samples)."""
    from sklearn.model_selection import train_test_split

    n_classes = np.unique(labels).size
    n_test = max(int(np.ceil(test_size * labels.size)), n_classes)
    index = np.arange(labels.size)
    train, test = train_test_split(index, test_size=n_test, stratify=labels, random_state=seed)
    return np.sort(train).astype(np.int64), np.sort(test).astype(np.int64)


def repeated_splits(labels: npt.NDArray[np.int64], cv: CvOptions, seed: int) -> tuple[list[Split], str]:
    """Repeated stratified k-fold or repeated stratified random splits, and a readable name."""
    from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedShuffleSplit

    if cv.repeats == 0:
        return [], "none"
    index = np.zeros(labels.size)
    if cv.scheme == "shuffle":
        splitter: Any = StratifiedShuffleSplit(n_splits=cv.repeats, test_size=cv.test_size, random_state=seed)
        name = f"{cv.repeats} random stratified {100 - 100 * cv.test_size:g}/{100 * cv.test_size:g} splits"
    else:
        smallest = int(min(np.count_nonzero(labels == v) for v in np.unique(labels)))
        folds = max(2, min(cv.folds, smallest))
        splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=cv.repeats, random_state=seed)
        name = f"{folds}-fold stratified CV repeated {cv.repeats}x"
    splits = [(np.asarray(a, np.int64), np.asarray(b, np.int64)) for a, b in splitter.split(index, labels)]
    return splits, name


def spatial_splits(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    labels: npt.NDArray[np.int64],
    block: float,
    folds: int,
    seed: int,
) -> tuple[list[Split], str, int]:
    """Stratified group k-fold where the groups are ``block``-sized squares: neighbours stay together."""
    from sklearn.model_selection import StratifiedGroupKFold

    bx = np.floor(x / block).astype(np.int64)
    by = np.floor(y / block).astype(np.int64)
    _, groups = np.unique(np.stack([bx, by], axis=1), axis=0, return_inverse=True)
    n_groups = int(groups.max()) + 1
    folds = min(folds, n_groups)
    if folds < 2:
        raise PointsError(f"all points fall in one {block:g} m block: spatial block CV needs smaller blocks")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = [
        (np.asarray(a, np.int64), np.asarray(b, np.int64))
        for a, b in splitter.split(np.zeros(labels.size), labels, groups.ravel())
    ]
    return splits, f"{folds}-fold spatial block CV ({block:g} m blocks, {n_groups} blocks)", n_groups


@dataclass(frozen=True)
class CvResult:
    """Scores of one model over several splits."""

    scheme: str
    accuracy: list[float]
    kappa: list[float]
    macro_f1: list[float]

    def summary(self) -> dict[str, Any]:
        """Mean and sample standard deviation of each score, and how many splits were averaged."""

        def stats(values: list[float]) -> dict[str, float]:
            arr = np.asarray(values, dtype=np.float64)
            sd = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
            return {"mean": _r(arr.mean()), "sd": _r(sd)}

        return {
            "scheme": self.scheme,
            "splits": len(self.accuracy),
            "overall_accuracy": stats(self.accuracy),
            "kappa": stats(self.kappa),
            "macro_f1": stats(self.macro_f1),
        }


def cross_validate(
    factory: Factory,
    features: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    splits: list[Split],
    scheme: str,
    on_split: Callable[[], None] | None = None,
) -> CvResult:
    """Fit a fresh model per split and score its decided labels on the split's test part."""
    acc, kappa, f1 = [], [], []
    for train, test in splits:
        model = factory().fit(features[train], labels[train])
        pred = decided_labels(model, features[test])
        truth = labels[test]
        acc.append(float(np.mean(pred == truth)))
        kappa.append(float(cohen_kappa_score(truth, pred)))
        f1.append(float(f1_score(truth, pred, average="macro", labels=np.unique(truth), zero_division=0)))
        if on_split is not None:
            on_split()
    return CvResult(scheme, acc, kappa, f1)


def permutation_importance(
    model: BaseEstimator,
    features: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    names: list[str],
    seed: int,
    repeats: int,
) -> list[dict[str, Any]]:
    """Mean and sd drop of accuracy (decided labels) when each feature is shuffled, largest first."""
    from sklearn.inspection import permutation_importance as sk_importance

    def accuracy(estimator: BaseEstimator, x: npt.NDArray[np.float32], y: npt.NDArray[np.int64]) -> float:
        return float(np.mean(decided_labels(estimator, x) == y))

    result = sk_importance(model, features, labels, scoring=accuracy, n_repeats=repeats, random_state=seed)
    rows = [
        {"feature": name, "mean": _r(result.importances_mean[i]), "sd": _r(result.importances_std[i])}
        for i, name in enumerate(names)
    ]
    return sorted(rows, key=lambda r: (-r["mean"], names.index(r["feature"])))
