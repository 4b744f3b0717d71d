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
    # np.round(p, 5) is rint(p * 1e5) / 1e5; the division keeps the order and the ties, so the argmax
    # of rint(p * 1e5) in float64 is the same (one pass less, in place)
    winners = np.argmax(rounded(probabilities), axis=-1)
    return np.asarray(class_order, dtype=np.uint8)[winners]


def top_probability(probabilities: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    """The winning probability per row as a uint8 percentage (0-100, as ``percent`` rounds)."""
    array = np.asarray(probabilities)
    # the row maximum, column by column (10x faster than max over a short last axis; NaN propagates the
    # same way), widened to float64 after the max: the largest value is the same before and after
    top = array[..., 0].copy()
    for column in range(1, array.shape[-1]):
        np.maximum(top, array[..., column], out=top)
    return percent(top)


def rounded(probabilities: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Probabilities rounded to ``DECIMALS`` decimals, as scaled integers (``p * 10**DECIMALS``), float64.

    Every rule that compares a probability with a value (the label's tie, a class set's minimum, a half
    percent) compares these: a forest's vote share of exactly 0.41 came out of ONNX Runtime one float32 step
    above or below it as its thread count changed, and ``sets.tif`` changed with ``--threads``.
    """
    scaled = np.array(probabilities, dtype=np.float64)
    np.multiply(scaled, 10.0**DECIMALS, out=scaled)
    return np.rint(scaled, out=scaled)


def percent(probabilities: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Probabilities as whole percents (0-100, a half up: 0.745 is 75), from their ``rounded`` values."""
    scaled = rounded(probabilities)
    np.divide(scaled, 10.0 ** (DECIMALS - 2), out=scaled)  # exact at a half: k / 1000 for a whole k
    np.add(scaled, 0.5, out=scaled)
    np.floor(scaled, out=scaled)
    return np.clip(scaled, 0, 100).astype(np.uint8)
