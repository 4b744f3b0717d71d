"""The decision rule: the fast forms of ``decide_labels`` and ``top_probability`` equal the written rule."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from lulc.class_sets import set_members
from lulc.decision import DECIMALS, decide_labels, percent, top_probability


def _rule_labels(p: npt.NDArray[np.floating], order: list[int]) -> npt.NDArray[np.uint8]:
    """The rule as documented: argmax of the probabilities rounded to 5 decimals, first column on ties."""
    return np.asarray(order, dtype=np.uint8)[np.argmax(np.round(p.astype(np.float64), DECIMALS), axis=-1)]


def _rule_top(p: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    """The row maximum rounded to 5 decimals, then to a whole percent (a half up)."""
    with np.errstate(invalid="ignore"):
        top = np.max(p.astype(np.float64), axis=-1)
        halves = np.rint(top * 10.0**DECIMALS) / 10.0 ** (DECIMALS - 2) + 0.5
        return np.clip(np.floor(halves), 0, 100).astype(np.uint8)


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


def test_one_float32_step_either_side_of_a_value_changes_no_set_no_percent_no_label() -> None:
    """Determinism review: a forest's 0.41 came out as 0.40999988 or 0.41000003 as the thread count changed.

    sets.tif changed with --threads (its minimum was exactly 0.41); a percent at 12.5 could move too.
    """
    below = np.nextafter(np.float32([0.41, 0.125, 0.3]), np.float32(0))
    above = np.nextafter(np.float32([0.41, 0.125, 0.3]), np.float32(1))
    minimum = [0.41, 0.125, 0.3]
    np.testing.assert_array_equal(set_members(below[None], minimum), set_members(above[None], minimum))
    assert set_members(below[None], minimum).all()
    np.testing.assert_array_equal(percent(below), percent(above))
    np.testing.assert_array_equal(percent(below), [41, 13, 30])  # 12.5 % up, as 0.745 is 75
    tied = np.array([[below[0], above[0], 0.1], [above[0], below[0], 0.1]], dtype=np.float32)
    assert decide_labels(tied, [1, 2, 3]).tolist() == [1, 1]  # a tie once rounded: the first column
    # control: unrounded, the set of the step below would leave the class out
    assert not (below[0] >= np.float32(0.41))
