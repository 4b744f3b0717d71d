"""The one rule turning class probabilities into labels, for scikit-learn parity and ONNX inference."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

DECIMALS = 5
"""Probabilities are rounded to this many decimals before the argmax, so float noise between
runtimes (summation order, thread count) cannot flip an exact tie."""


def decide_labels(
    probabilities: npt.NDArray[np.floating], class_order: Sequence[int]
) -> npt.NDArray[np.uint8]:
    """Class values of the largest rounded probability per row; ties go to the first column.

    Args:
        probabilities: shape ``(n, n_classes)``, columns in ``class_order``.
        class_order: class value of each column.
    """
    rounded = np.round(np.asarray(probabilities, dtype=np.float64), DECIMALS)
    winners = np.argmax(rounded, axis=-1)
    return np.asarray(class_order, dtype=np.uint8)[winners]


def top_probability(probabilities: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    """The winning probability per row as a uint8 percentage (0-100)."""
    top = np.max(np.asarray(probabilities, dtype=np.float64), axis=-1)
    return np.clip(np.round(top * 100.0), 0, 100).astype(np.uint8)
