"""``aoa.tif``: each pixel's dissimilarity index (DI) as a byte, and which pixels are outside the AOA.

The DI is stored x 100 and rounded (254 at most, 255 nodata), so a reader that knows only the model's
threshold decides inside or outside from the byte alone. Rounding alone would blur that near the threshold:
with a threshold of 0.0673 every DI up to 0.075 rounds to 7 = rint(0.0673 x 100) and would read as inside. So
the bytes next to the threshold are set on its side: a stored value is above the threshold's code exactly
when the DI is above the threshold, and the share inside read from the file is the share the service counted.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SCALE = 100.0
"""Stored value per DI unit."""
NODATA = 255
LARGEST = 254
"""The largest stored value: any DI of 2.54 or more."""


def threshold_code(threshold: float) -> int:
    """The stored value of a DI at ``threshold``: above it is outside (253 at most: outside is storable)."""
    return int(min(np.rint(threshold * SCALE), LARGEST - 1))


def encode(di: npt.NDArray[np.floating], threshold: float) -> npt.NDArray[np.uint8]:
    """DI x 100 as bytes, rounded, with the values at the threshold's code on the threshold's right side."""
    code = threshold_code(threshold)
    stored = np.clip(np.rint(di * SCALE), 0, LARGEST)
    outside = di > threshold
    stored[outside & (stored <= code)] = code + 1
    stored[~outside & (stored > code)] = code
    return stored.astype(np.uint8)


def outside(stored: npt.NDArray[np.uint8], threshold: float) -> npt.NDArray[np.bool_]:
    """Pixels of ``aoa.tif`` outside the area of applicability of a model with this ``threshold``."""
    return (stored != NODATA) & (stored > threshold_code(threshold))
