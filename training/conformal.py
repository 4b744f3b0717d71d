"""Calibrated class sets by split conformal prediction: for each pixel, the classes that cannot be ruled out.

Calibration (at training time, on the grouped hold-out): each sample's nonconformity score is
``1 - p(true class)``; the threshold ``q`` is the ``ceil((n + 1) * coverage) / n`` empirical quantile of the
scores. At classification a pixel's set holds every class with ``1 - p >= ...``, i.e. ``p >= 1 - q``: it
contains the true class with probability at least ``coverage`` (exchangeability assumed). One class in the
set means a confident pixel; more mean ambiguity; none can happen for pixels unlike any calibration sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

DEFAULT_COVERAGE = 0.9


@dataclass(frozen=True)
class ConformalSets:
    """The score threshold for a nominal coverage, calibrated on ``n`` samples."""

    coverage: float
    threshold: float
    """Nonconformity threshold ``q``: class k is in a pixel's set when ``1 - p_k <= q``."""
    n: int

    @property
    def min_probability(self) -> float:
        """The smallest class probability that keeps a class in the set (``1 - q``)."""
        return 1.0 - self.threshold

    def members(self, probabilities: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Per pixel and class (columns in class order): whether the class is in the pixel's set."""
        proba = np.asarray(probabilities, dtype=np.float64)
        return (1.0 - proba) <= self.threshold


def calibrate(
    probabilities: npt.ArrayLike, truth_columns: npt.ArrayLike, coverage: float = DEFAULT_COVERAGE
) -> ConformalSets:
    """The split-conformal threshold from calibration probabilities and the column of each true class.

    Raises:
        ValueError: coverage outside (0, 1), or too few samples for it (``ceil((n + 1) c) > n``).
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must lie strictly between 0 and 1, got {coverage}")
    proba = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(truth_columns, dtype=np.int64)
    n = int(truth.size)
    rank = int(np.ceil((n + 1) * coverage))
    if rank > n:
        raise ValueError(
            f"{n} calibration samples cannot give {coverage:.0%} coverage (needs at least "
            f"{int(np.ceil(coverage / (1 - coverage)))})"
        )
    scores = np.sort(1.0 - proba[np.arange(n), truth])
    return ConformalSets(coverage=coverage, threshold=float(scores[rank - 1]), n=n)


def set_bands(members: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Band 1: how many classes each pixel's set holds; band 2: the set as a bitmask (bit i = column i).

    At most 8 classes fit the uint8 bitmask; more raise ``ValueError``.
    """
    n_classes = members.shape[-1]
    if n_classes > 8:
        raise ValueError(f"a uint8 bitmask holds at most 8 classes, the model has {n_classes}")
    count = members.sum(axis=-1).astype(np.uint8)
    bits = (members.astype(np.uint16) << np.arange(n_classes, dtype=np.uint16)).sum(axis=-1)
    return count, bits.astype(np.uint8)


def coverage_by_class(
    members: npt.NDArray[np.bool_], truth_columns: npt.ArrayLike, names: Sequence[str]
) -> dict[str, Any]:
    """Share of samples whose set holds their true class, overall and per class, with mean set sizes."""
    truth = np.asarray(truth_columns, dtype=np.int64)
    covered = members[np.arange(truth.size), truth]
    sizes = members.sum(axis=1)
    per_class = [
        {
            "name": name,
            "n": int(np.count_nonzero(truth == i)),
            "coverage": round(float(covered[truth == i].mean()), 6) if np.any(truth == i) else None,
            "mean_set_size": round(float(sizes[truth == i].mean()), 6) if np.any(truth == i) else None,
        }
        for i, name in enumerate(names)
    ]
    return {
        "n": int(truth.size),
        "coverage": round(float(covered.mean()), 6) if truth.size else None,
        "mean_set_size": round(float(sizes.mean()), 6) if truth.size else None,
        "per_class": per_class,
    }
