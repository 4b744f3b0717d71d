"""Conformal class sets as maps store them: which classes a pixel's set holds, as a count and a bitmask.

One rule for training (to count coverage) and classification (``sets.tif``): class k is in a pixel's set
when its probability reaches the class's calibrated minimum. A set may be empty: no class is probable
enough at the nominal coverage (the pixel is unlike the calibration samples of every class); it has count 0
and bitmask 0, and it does not hold the true class.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from lulc.decision import rounded
from lulc.errors import ContractError

MAX_CLASSES = 7
"""Classes a set bitmask holds: 7 bits of a uint8, so a set of every class (127) is never the nodata 255
(8 bits made an 8-class set of all classes read as nodata)."""


def set_members(
    probabilities: npt.NDArray[np.floating], min_probability: float | npt.ArrayLike
) -> npt.NDArray[np.bool_]:
    """Per pixel and column: whether the class is in the set (``p >= min_probability``).

    ``min_probability`` is one value for every class, or one per column. Both are compared rounded to
    ``lulc.decision.DECIMALS`` decimals, as the label rule compares: a forest's probability of exactly a
    calibrated minimum (k / trees) fell on either side of it as ONNX Runtime's thread count changed.
    """
    array = np.asarray(probabilities)
    minimums = _minimums(min_probability, array.shape[-1])
    members = np.empty(array.shape, dtype=np.bool_)
    for column in range(array.shape[-1]):
        members[..., column] = _member(array[..., column], minimums[column])
    return members


def set_bands_of(
    probabilities: npt.NDArray[np.floating],
    min_probability: float | npt.ArrayLike,
    columns: Sequence[int] | None = None,
) -> npt.NDArray[np.uint8]:
    """``set_bands(set_members(probabilities[..., columns], min_probability))``, a column at a time.

    ``columns``: the column of each class, in bit order (default: all, in order). What ``sets.tif`` stores
    of every block: no (pixels x classes) matrix of rounded float64 (12 MiB per 512 px block and thread for
    6 classes), of booleans or of reordered probabilities is made; 1.7x faster on such a block.
    """
    array = np.asarray(probabilities)
    order = list(range(array.shape[-1])) if columns is None else list(columns)
    _check_columns(len(order))
    minimums = _minimums(min_probability, len(order))
    members = (_member(array[..., column], minimums[bit]) for bit, column in enumerate(order))
    return _packed(members, array.shape[:-1])


def _member(column: npt.NDArray[np.floating], minimum: float) -> npt.NDArray[np.bool_]:
    """The one rule: a class is in a pixel's set when its rounded probability reaches the rounded minimum."""
    return rounded(column) >= rounded(minimum)


def _minimums(min_probability: float | npt.ArrayLike, n_classes: int) -> npt.NDArray[np.float64]:
    """One minimum per column (one value given: the same for all)."""
    return np.broadcast_to(np.asarray(min_probability, dtype=np.float64), (n_classes,))


def map_holds(n_classes: int) -> bool:
    """Whether ``sets.tif``'s bitmask holds the sets of a model of ``n_classes`` classes."""
    return n_classes <= MAX_CLASSES


def no_map(n_classes: int) -> str:
    """Why a calibrated model of ``n_classes`` classes gets no ``sets.tif`` (``map_holds`` is false)."""
    return f"no sets.tif: the model's {n_classes} classes are more than a set bitmask holds ({MAX_CLASSES})"


def _check_columns(n_classes: int) -> None:
    if not map_holds(n_classes):
        raise ContractError(f"a uint8 set bitmask holds {MAX_CLASSES} classes, the model has {n_classes}")


def set_bands(members: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint8]:
    """``(2, n)``: how many classes each set holds, and the set as a bitmask (bit i = column i).

    Raises:
        ContractError: more than ``MAX_CLASSES`` columns.
    """
    n_classes = members.shape[-1]
    _check_columns(n_classes)
    array = np.asarray(members, dtype=np.bool_)
    return _packed((array[..., i] for i in range(n_classes)), array.shape[:-1])


def _packed(members: Iterable[npt.NDArray[np.bool_]], shape: tuple[int, ...]) -> npt.NDArray[np.uint8]:
    """``(2, *shape)``: the count and the bitmask of the member columns given, bit i the i-th column.

    Column by column: several times faster than any reduction over 8 columns.
    """
    bits = np.zeros(shape, dtype=np.uint8)
    for bit, column in enumerate(members):
        bits |= column.view(np.uint8) << np.uint8(bit)
    return np.stack([_POPCOUNT[bits], bits])


_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)
"""How many bits each byte has set: a set's size from its bitmask."""
