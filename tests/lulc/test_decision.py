"""The decision rule: the fast forms of ``decide_labels`` and ``top_probability`` equal the written rule."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from lulc.decision import DECIMALS, decide_labels, top_probability


def _rule_labels(p: npt.NDArray[np.floating], order: list[int]) -> npt.NDArray[np.uint8]:
    """The rule as documented: argmax of the probabilities rounded to 5 decimals, first column on ties."""
    return np.asarray(order, dtype=np.uint8)[np.argmax(np.round(p.astype(np.float64), DECIMALS), axis=-1)]


def _rule_top(p: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    with np.errstate(invalid="ignore"):
        return np.clip(np.round(np.max(p.astype(np.float64), axis=-1) * 100.0), 0, 100).astype(np.uint8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_forms_equal_the_rule_on_ties_rounding_edges_and_nan(dtype: type) -> None:
    rng = np.random.default_rng(0)
    p = rng.random((200_000, 6)).astype(dtype)
    p[:1000, 1] = p[:1000, 0]  # exact ties
    p[1000:2000, 1] = p[1000:2000, 0] + dtype(3e-6)  # ties once rounded
    p[2000:3000] = np.round(p[2000:3000], DECIMALS) + dtype(5e-6)  # halfway between two roundings
    p[3000:3010] = np.nan
    p[3010:3020, 3] = np.nan
    p[3020:3030, 2] = 1.5
    p[3030:3040, 2] = -0.2
    p[3040:3050] = np.float32(0.125)  # all equal: the first column wins
    order = [3, 1, 4, 2, 6, 5]
    np.testing.assert_array_equal(decide_labels(p, order), _rule_labels(p, order))
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(top_probability(p), _rule_top(p))
    assert (decide_labels(p[3040:3050], order) == 3).all()
    # control: the rounding matters: a plain argmax gives some of these pixels to the second column
    near = p[1000:2000]
    plain = np.asarray(order, dtype=np.uint8)[np.argmax(near, axis=-1)]
    moved = (plain == 1) & (decide_labels(near, order) == 3)
    assert moved.sum() > 50
