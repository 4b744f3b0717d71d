"""Where a trained model can be trusted: its area of applicability and its calibrated class sets.

Both are fitted from what the training run already has: the model's training samples and their grouped CV
folds (a polygon's pixels share a fold), its permutation importance, and the grouped hold-out it was not
trained on. The class sets are calibrated on every labelled sample, each scored by a model that did not see
it: a training sample by the model refitted without its fold (out-of-fold), a hold-out sample by the model
itself. The numbers go into the contract; the reference samples of the AOA go into the ONNX graph.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, clone

from lulc.classes import ClassTable
from lulc.contract import ClassSets
from training.aoa import Applicability, fit_applicability
from training.conformal import (
    ConformalSets,
    calibrate,
    coverage_by_class,
    cross_calibrated_members,
    minimum_samples,
)
from training.errors import PointsError
from training.evaluate import grouped_folds
from training.models import classes_of


@dataclass(frozen=True)
class SpatialBlocks:
    """The spatial block of each training sample (``training.evaluate.spatial_blocks``) and its size."""

    ids: npt.NDArray[np.int64]
    size: float
    """Metres."""


@dataclass(frozen=True)
class Trust:
    """The fitted area of applicability and conformal sets, and what the report says of them."""

    applicability: Applicability
    sets: ConformalSets
    """Thresholds per column of the model's probabilities (its class order)."""
    class_sets: ClassSets
    """The same for the contract: per class of the class table, in table order."""
    report: dict[str, Any]


def fold_ids(
    labels: npt.NDArray[np.int64], groups: npt.NDArray[np.int64] | None, folds: int, seed: int
) -> tuple[npt.NDArray[np.int64], str | None]:
    """Each sample's fold in a seeded stratified (group) k-fold of the training part, and a note.

    A polygon's pixels always share a fold, also when its class has a single polygon in the training
    part (where the grouped CV splits such a class's pixels one by one, ``training.evaluate.grouping``):
    here that would score its pixels by models that saw the same polygon, and measure their DI against
    their own neighbours. Such a class is then never seen out of fold (probability 0: in every set) and its
    DI is measured against other polygons; the note names it. The fold count is ``folds``, lowered to the
    fewest polygons of the other classes. A single group (one polygon, or one spatial block) is split
    sample by sample.
    """
    out = np.zeros(labels.size, dtype=np.int64)
    note = None
    if groups is not None and 2 <= np.unique(groups).size < labels.size:
        _, dense = np.unique(groups, return_inverse=True)
        dense = dense.astype(np.int64).ravel()
        per_class = {int(v): np.unique(dense[labels == v]).size for v in np.unique(labels)}
        single = sorted(v for v, n in per_class.items() if n < 2)
        several = [n for n in per_class.values() if n >= 2]
        with warnings.catch_warnings():  # a class of one polygon is in one fold: the note says so
            warnings.filterwarnings("ignore", message="The least populated class in y has only")
            splits = grouped_folds(labels, dense, max(2, min([folds, *several, int(dense.max()) + 1])), seed)
        if single:
            note = (
                f"class value(s) {', '.join(map(str, single))} have one polygon in the training part: kept "
                "whole in one fold, so out of fold no model saw the class (it is in every set) and its DI is "
                "measured against other polygons"
            )
    else:
        from sklearn.model_selection import StratifiedKFold

        counts = {int(v): int(np.count_nonzero(labels == v)) for v in np.unique(labels)}
        if max(counts.values(), default=0) < 2:  # products review: scikit-learn's ValueError, exit 1
            raise PointsError(
                f"the training part holds {labels.size} samples, one of each class: the area of "
                "applicability and the class sets need two of some class in it, to score samples out of "
                "fold; lower --test-size or label more points"
            )
        splitter = StratifiedKFold(
            n_splits=max(2, min(folds, *counts.values())), shuffle=True, random_state=seed
        )
        with warnings.catch_warnings():
            # a class seen once is in one fold (the note says so), not a warning with its source line
            warnings.filterwarnings("ignore", message="The least populated class in y has only")
            splits = list(splitter.split(np.zeros(labels.size), labels))
        single = sorted(v for v, n in counts.items() if n < 2)
        if single:
            note = (
                f"class value(s) {', '.join(map(str, single))} have one sample in the training part: out of "
                "fold no model saw the class (it is in every set); its DI is measured against other samples"
            )
    for fold, (_, test) in enumerate(splits):
        out[test] = fold
    return out, note


def out_of_fold_probabilities(
    model: BaseEstimator,
    features: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    fold: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """Each sample's class probabilities (columns in ``model``'s class order) from a refitted copy.

    The copy of ``model`` that gives a sample's probabilities was fitted on the other folds only; a class
    that copy never saw gets probability 0.
    """
    order = classes_of(model)
    out = np.zeros((labels.size, len(order)), dtype=np.float64)
    for f in np.unique(fold):
        held = fold == f
        copy = clone(model).fit(features[~held], labels[~held])
        columns = [order.index(v) for v in classes_of(copy)]
        out[np.ix_(held, columns)] = copy.predict_proba(features[held])
    return out


def _check_calibration_folds(set_fold: npt.NDArray[np.int64], n_test: int, coverage: float) -> None:
    """Refuse, before the fold models are fitted, folds that leave too few samples to calibrate on.

    The class sets' coverage is estimated by calibrating without each fold (the hold-out is one more): every
    such rest needs ``minimum_samples(coverage)``.

    Raises:
        PointsError: the largest fold leaves fewer.
    """
    sizes = [*np.unique(set_fold, return_counts=True)[1].tolist(), n_test]
    rest = set_fold.size + n_test - max(sizes)
    needed = minimum_samples(coverage)
    if rest < needed:
        raise PointsError(
            f"{set_fold.size + n_test} labelled samples leave {rest} to calibrate the class sets on beside "
            f"their largest fold, fewer than {needed} for {coverage:.0%} coverage: label more points"
        )


def fit_trust(
    model: BaseEstimator,
    train_features: npt.NDArray[np.float32],
    train_labels: npt.NDArray[np.int64],
    train_groups: npt.NDArray[np.int64] | None,
    test_features: npt.NDArray[np.float32],
    test_labels: npt.NDArray[np.int64],
    importance: dict[str, float],
    names: list[str],
    classes: ClassTable,
    *,
    folds: int,
    coverage: float,
    seed: int,
    max_reference: int,
    set_folds: int = 50,
    blocks: SpatialBlocks | None = None,
) -> Trust:
    """Fit the AOA on the model's training samples; calibrate class sets on every labelled sample.

    ``max_reference`` bounds the reference samples kept in the graph (a seeded subset of the training
    samples beyond it): each pixel's DI costs one distance per reference sample. The class sets score the
    training samples out of fold in ``max(folds, set_folds)`` folds (as many as the smallest class allows;
    one refit of the model each): a fold model then sees nearly all of the training part, as the shipped
    model does. With 5 folds it saw 80 % and scored the confident classes lower than the shipped model,
    so their thresholds were too low: the demo's forest class was covered 94 % for a nominal 90 %
    (``bench/coverage.py``, 16 demo worlds; 90.7 % with as many folds as samples per class).

    With ``blocks`` (the recipe's spatial block CV) the AOA's folds keep each block whole, as the method
    asks of a model validated by spatial CV: a sample's nearest neighbour of another fold is then never
    its own neighbour on the ground, and the threshold measures how far the model reaches into new places.
    The class sets keep their polygon folds: as many spatial block folds as the blocks of the smallest
    class allow were often 2 or 3, and a class seen in one block was then in every set (review).
    """
    set_fold, note = fold_ids(train_labels, train_groups, max(folds, set_folds), seed)
    n_blocks = np.unique(blocks.ids).size if blocks is not None else 0
    if blocks is None or n_blocks < 2:
        fold, _ = fold_ids(train_labels, train_groups, folds, seed)
        folds_text = "grouped CV folds"
        if blocks is not None:
            folds_text += f"; the training part lies in one {blocks.size:g} m block"
    else:
        fold, _ = fold_ids(train_labels, blocks.ids, folds, seed)
        folds_text = f"spatial block folds, {blocks.size:g} m blocks ({n_blocks} of them)"
        alone = [int(v) for v in np.unique(train_labels) if np.unique(blocks.ids[train_labels == v]).size < 2]
        if alone:
            block_note = (
                f"class value(s) {', '.join(map(str, alone))} lie in one spatial block of the training part: "
                "their DI is measured against samples of other blocks only"
            )
            note = f"{note}; {block_note}" if note else block_note
    _check_calibration_folds(set_fold, test_labels.size, coverage)
    reference, ref_fold = train_features, fold
    if len(train_features) > max_reference:
        keep = np.sort(
            np.random.default_rng(seed).choice(len(train_features), size=max_reference, replace=False)
        )
        reference, ref_fold = train_features[keep], fold[keep]
    weights = [max(0.0, importance.get(name, 0.0)) for name in names]
    applicability = fit_applicability(reference, ref_fold, weights)
    order = classes_of(model)
    probabilities = np.concatenate(
        [
            out_of_fold_probabilities(model, train_features, train_labels, set_fold),
            model.predict_proba(test_features),
        ]
    )
    labels = np.concatenate([train_labels, test_labels])
    truth = np.array([order.index(int(v)) for v in labels], dtype=np.int64)
    sets = calibrate(probabilities, truth, len(order), coverage)
    # the hold-out is one more fold: an honest estimate of each class's coverage calibrates without it
    cal_folds = np.concatenate([set_fold, np.full(test_labels.size, set_fold.max() + 1)])
    estimated = cross_calibrated_members(probabilities, truth, cal_folds, len(order), coverage)
    names_in_order = [classes.by_value(v).name for v in order]
    table_columns = [order.index(c.value) for c in classes.classes]
    class_sets = ClassSets(
        coverage=coverage,
        min_probability=sets.min_probability,
        class_min_probability=[sets.class_min_probability[i] for i in table_columns],
    )
    report = {
        "area_of_applicability": {
            "method": (
                "Meyer & Pebesma 2021: weighted standardised features, nearest sample of another fold "
                f"({folds_text})"
            ),
            "threshold": round(applicability.threshold, 6),
            "mean_distance": round(applicability.mean_distance, 6),
            "reference_samples": len(reference),
            "weights": dict(zip(names, [round(w, 6) for w in weights], strict=True)),
            "training_di_inside": round(
                float(np.mean(applicability.training_di <= applicability.threshold)), 6
            ),
        },
        "conformal_sets": {
            "method": (
                "class-conditional (Mondrian) split conformal prediction, score 1 - p(true class), "
                "calibrated on every labelled sample: training samples out-of-fold (grouped folds, "
                f"{int(set_fold.max()) + 1} of them), "
                "the hold-out by the model"
            ),
            "coverage_nominal": coverage,
            "threshold": round(sets.threshold, 6),
            "class_min_probability": dict(
                zip(names_in_order, [round(p, 6) for p in sets.class_min_probability], strict=True)
            ),
            "calibration": coverage_by_class(sets.members(probabilities), truth, names_in_order),
            "cross_calibrated": coverage_by_class(estimated, truth, names_in_order),
        },
        "note": note,
    }
    return Trust(applicability, sets, class_sets, report)
