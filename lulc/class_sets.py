"""Conformal class sets as maps store them: which classes a pixel's set holds, as a count and a bitmask.

One rule for training (to count coverage) and classification (``sets.tif``): class k is in a pixel's set
when its probability reaches the class's calibrated minimum. A set may be empty: no class is probable
enough at the nominal coverage (the pixel is unlike the calibration samples of every class); it has count 0
and bitmask 0, and it does not hold the true class.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lulc.decision import rounded
from lulc.errors import ContractError

MAX_CLASSES = 8
"""A uint8 bitmask holds at most 8 classes."""


def set_members(
    probabilities: npt.NDArray[np.floating], min_probability: float | npt.ArrayLike
) -> npt.NDArray[np.bool_]:
    """Per pixel and column: whether the class is in the set (``p >= min_probability``).

    ``min_probability`` is one value for every class, or one per column. Both are compared rounded to
    ``lulc.decision.DECIMALS`` decimals, as the label rule compares: a forest's probability of exactly a
    calibrated minimum (k / trees) fell on either side of it as ONNX Runtime's thread count changed.
    """
    return rounded(probabilities) >= rounded(min_probability)


def set_bands(members: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint8]:
    """``(2, n)``: how many classes each set holds, and the set as a bitmask (bit i = column i).

    Raises:
        ContractError: more than ``MAX_CLASSES`` columns.
    """
    n_classes = members.shape[-1]
    if n_classes > MAX_CLASSES:
        raise ContractError(f"a uint8 set bitmask holds {MAX_CLASSES} classes, the model has {n_classes}")
    columns = np.asarray(members, dtype=np.bool_).view(np.uint8)
    bits = np.zeros(members.shape[:-1], dtype=np.uint8)
    for i in range(n_classes):  # column by column: several times faster than any reduction over 8 columns
        bits |= columns[..., i] << np.uint8(i)
    return np.stack([_POPCOUNT[bits], bits])


_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)
"""How many bits each byte has set: a set's size from its bitmask."""
