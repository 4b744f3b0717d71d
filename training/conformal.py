"""Calibrated class sets by class-conditional (Mondrian) conformal prediction: the classes not ruled out.

Calibration: each calibration sample's nonconformity score is ``1 - p(true class)``, from a model that did
not see the sample. For class k the threshold ``q_k`` is the ``ceil((n_k + 1) * coverage)``-th smallest score
of the ``n_k`` samples of class k; at classification class k is in a pixel's set when ``p_k >= 1 - q_k``.
A pixel of class k then gets a set holding k with probability at least ``coverage``, for every class on its
own (Vovk et al. 2005; exchangeability within each class assumed), not only on average over the classes as
one threshold for all (marginal split conformal, also computed here) gives. A class with fewer than
``ceil(coverage / (1 - coverage))`` samples cannot be calibrated: it is in every set.

A set may be empty (see ``lulc.class_sets``): counted as not covering the true class, as the guarantee
counts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lulc.class_sets import set_members

DEFAULT_COVERAGE = 0.9


@dataclass(frozen=True)
class ConformalSets:
    """Score thresholds for a nominal coverage: one per class (Mondrian), and one for all (marginal)."""

    coverage: float
    threshold: float
    """Marginal threshold ``q`` over all ``n`` calibration samples."""
    n: int
    class_thresholds: tuple[float, ...]
    """Per column (class): ``q_k``; 1.0 (class always in the set) where the class has too few samples."""
    class_n: tuple[int, ...]
    """Calibration samples per column."""
    min_probability: float
    """Marginal: the smallest class probability that keeps a class in the set (``1 - q``), taken as the
    calibration probability itself: ``1 - (1 - p)`` can be one float64 step above ``p`` and drop the very
    sample that set it."""
    class_min_probability: tuple[float, ...]
    """Per column: the smallest probability that keeps the class in the set (``1 - q_k``), likewise."""

    def members(self, probabilities: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Per sample and column: whether the class is in the sample's (class-conditional) set."""
        return set_members(np.asarray(probabilities, dtype=np.float64), self.class_min_probability)


def minimum_samples(coverage: float) -> int:
    """The fewest calibration samples for which a finite threshold exists: ``ceil(coverage / (1 - c))``."""
    return int(np.ceil(coverage / (1.0 - coverage) - 1e-9))


def _quantile(true_probability: npt.NDArray[np.float64], coverage: float) -> float | None:
    """The rank-th largest true-class probability, rank ``ceil((n + 1) * coverage)``, or None beyond ``n``.

    Its score ``1 - p`` is the rank-th smallest score: the split conformal threshold.
    """
    rank = int(np.ceil((true_probability.size + 1) * coverage - 1e-9))
    return float(-np.sort(-true_probability)[rank - 1]) if rank <= true_probability.size else None


def calibrate(
    probabilities: npt.ArrayLike,
    truth_columns: npt.ArrayLike,
    n_classes: int,
    coverage: float = DEFAULT_COVERAGE,
) -> ConformalSets:
    """Class-conditional and marginal thresholds from calibration probabilities and true columns.

    Raises:
        ValueError: coverage outside (0, 1), or too few samples in all for it.
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must lie strictly between 0 and 1, got {coverage}")
    proba = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(truth_columns, dtype=np.int64)
    true_probability = proba[np.arange(truth.size), truth]
    marginal = _quantile(true_probability, coverage)
    if marginal is None:
        raise ValueError(
            f"{truth.size} calibration samples cannot give {coverage:.0%} coverage (needs at least "
            f"{minimum_samples(coverage)})"
        )
    per_class = [_quantile(true_probability[truth == k], coverage) for k in range(n_classes)]
    floors = tuple(0.0 if p is None else p for p in per_class)
    return ConformalSets(
        coverage=coverage,
        threshold=1.0 - marginal,
        n=int(truth.size),
        class_thresholds=tuple(1.0 - p for p in floors),
        class_n=tuple(int(np.count_nonzero(truth == k)) for k in range(n_classes)),
        min_probability=marginal,
        class_min_probability=floors,
    )


def cross_calibrated_members(
    probabilities: npt.ArrayLike,
    truth_columns: npt.ArrayLike,
    folds: npt.ArrayLike,
    n_classes: int,
    coverage: float,
) -> npt.NDArray[np.bool_]:
    """Each sample's set with thresholds calibrated on the other folds: an honest estimate of coverage.

    The sets of the calibration samples themselves would cover at least the nominal share by construction;
    calibrating without a sample's fold shows how far one calibration's coverage strays from it.
    """
    proba = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(truth_columns, dtype=np.int64)
    fold = np.asarray(folds)
    members = np.zeros(proba.shape, dtype=bool)
    for f in np.unique(fold):
        held = fold == f
        sets = calibrate(proba[~held], truth[~held], n_classes, coverage)
        members[held] = sets.members(proba[held])
    return members


def coverage_by_class(
    members: npt.NDArray[np.bool_], truth_columns: npt.ArrayLike, names: Sequence[str]
) -> dict[str, Any]:
    """Share of samples whose set holds their true class, overall and per class, with set sizes.

    ``empty`` is the share of empty sets.
    """
    truth = np.asarray(truth_columns, dtype=np.int64)
    covered = members[np.arange(truth.size), truth]
    sizes = members.sum(axis=1)

    def summary(mask: npt.NDArray[np.bool_]) -> dict[str, Any]:
        n = int(np.count_nonzero(mask))
        if n == 0:
            return {"n": 0, "coverage": None, "mean_set_size": None, "empty": None}
        return {
            "n": n,
            "coverage": round(float(covered[mask].mean()), 6),
            "mean_set_size": round(float(sizes[mask].mean()), 6),
            "empty": round(float(np.mean(sizes[mask] == 0)), 6),
        }

    return {
        **summary(np.ones(truth.size, dtype=bool)),
        "per_class": [{"name": name, **summary(truth == i)} for i, name in enumerate(names)],
    }
