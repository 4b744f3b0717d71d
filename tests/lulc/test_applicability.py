"""aoa.tif's bytes: inside or outside read from them as the service decided it from the exact DI."""

from __future__ import annotations

import numpy as np
import pytest

from lulc import applicability


@pytest.mark.parametrize("threshold", [0.0673, 0.5, 0.995, 1.005, 2.531, 2.6, 4.0])
def test_a_stored_value_is_above_the_threshold_code_exactly_when_the_di_is_above_the_threshold(
    threshold: float,
) -> None:
    rng = np.random.default_rng(0)
    near = threshold + rng.uniform(-0.02, 0.02, 5000)
    di = np.concatenate([near, rng.uniform(0, 5, 5000), [threshold, np.nextafter(threshold, 9), 0.0, 9.0]])
    stored = applicability.encode(di.astype(np.float32), threshold)
    assert stored.dtype == np.uint8
    assert stored.max() <= applicability.LARGEST
    np.testing.assert_array_equal(applicability.outside(stored, threshold), di.astype(np.float32) > threshold)
    # elsewhere the byte is the DI x 100 rounded (clipped at 2.54); next to the threshold one step off at most
    plain = np.clip(np.rint(di.astype(np.float32) * 100), 0, 254)
    assert np.abs(stored - plain).max() <= 1
    far = np.abs(di - threshold) > 0.011
    np.testing.assert_array_equal(stored[far & (threshold < 2.53)], plain[far & (threshold < 2.53)])


def test_nodata_is_never_outside() -> None:
    stored = np.array([applicability.NODATA, 254, 0], dtype=np.uint8)
    assert applicability.outside(stored, 1.0).tolist() == [False, True, False]


def test_rounding_alone_would_read_extrapolated_pixels_as_inside() -> None:
    """The review's case: threshold 0.0673, DI 0.07 rounds to 7, the threshold's own code."""
    di = np.array([0.07, 0.0749], dtype=np.float32)
    assert (np.rint(di * 100) <= np.rint(0.0673 * 100)).all()
    assert applicability.outside(applicability.encode(di, 0.0673), 0.0673).all()
