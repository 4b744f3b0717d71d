"""Checks of a COG the tests write: valid, full resolution as given, overviews the halvings of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rio_cogeo.cogeo import cog_validate

from lulc.cog import Resampling, halve


def assert_cog_with_halved_overviews(
    cog: Path, data: np.ndarray, resampling: Resampling, factors: list[int], nodata: int = 255
) -> None:
    """``cog`` is a valid COG holding ``data``, its overviews ``lulc.cog.halve`` applied in turn."""
    valid, errors, warnings = cog_validate(str(cog))
    assert valid, errors
    assert not warnings
    expected = data[np.newaxis]
    with rasterio.open(cog) as src:
        assert src.overviews(1) == factors
        np.testing.assert_array_equal(src.read(1), data)
        for factor in factors:
            expected = halve(expected, resampling, nodata)
            shape = (-(-data.shape[0] // factor), -(-data.shape[1] // factor))
            np.testing.assert_array_equal(src.read(1, out_shape=shape), expected[0])
