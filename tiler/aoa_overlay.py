"""The area of applicability as a map overlay: diagonal hatching where the model extrapolates.

A tile of a run's ``aoa.tif`` (DI x 100) becomes a transparent PNG with dark diagonal stripes on every pixel
whose DI exceeds the model's threshold, so the class colours stay readable underneath.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydantic import BaseModel, Field

from lulc import applicability

HATCH_RGBA = (30, 30, 30, 170)
"""Colour of the stripes."""
STRIPE = 6
"""Stripe period in screen pixels (half dark, half clear)."""


def outside_mask(
    di_x100: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_], threshold: float
) -> npt.NDArray[np.bool_]:
    """Pixels with a DI above ``threshold`` (``aoa.tif``'s bytes, as ``lulc.applicability`` wrote them)."""
    return valid & applicability.outside(di_x100, threshold)


def hatch_png(outside: npt.NDArray[np.bool_]) -> bytes:
    """A PNG the size of ``outside`` with stripes where it is True, transparent elsewhere."""
    rows, cols = np.indices(outside.shape)
    stripes = ((rows + cols) // (STRIPE // 2)) % 2 == 0
    rgba = np.zeros((*outside.shape, 4), dtype=np.uint8)
    rgba[outside & stripes] = HATCH_RGBA
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


class AoaPoint(BaseModel):
    """One pixel of a run's ``aoa.tif``: its DI and whether the model applies there."""

    di: float | None = Field(description="The pixel's dissimilarity index (null: no DI there, nodata).")
    threshold: float = Field(description="The model's AOA threshold (DI units).")
    inside: bool | None = Field(
        description="Whether the pixel is inside the area of applicability (DI at most the threshold)."
    )


def aoa_point(stored: int | None, threshold: float) -> AoaPoint:
    """The answer for a pixel whose ``aoa.tif`` byte is ``stored`` (None: masked)."""
    if stored is None or stored == applicability.NODATA:
        return AoaPoint(di=None, threshold=threshold, inside=None)
    out = bool(applicability.outside(np.array([stored], dtype=np.uint8), threshold)[0])
    return AoaPoint(di=stored / applicability.SCALE, threshold=threshold, inside=not out)
