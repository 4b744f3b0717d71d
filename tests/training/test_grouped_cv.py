"""Splits grouped by polygon: no pixel of a held-out polygon trains the model; lone polygons fall back."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from lulc.classes import ClassTable, LandCoverClass
from training.config import CvOptions
from training.evaluate import Grouping, grouping, holdout_split, repeated_splits, spatial_splits

CLASSES = ClassTable(classes=[LandCoverClass(value=v, name=f"Class {v}", color="#102030") for v in (1, 2, 3)])


def polygons(
    per_class: dict[int, int], pixels: int = 12, seed: int = 0
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Labels, polygon ids and pixel coordinates: ``per_class[v]`` polygons of ``pixels`` pixels each."""
    rng = np.random.default_rng(seed)
    labels, groups, xs, ys = [], [], [], []
    group = 0
    for value, count in per_class.items():
        for _ in range(count):
            cx, cy = rng.uniform(0, 10_000, size=2)
            labels += [value] * pixels
            groups += [group] * pixels
            xs += list(cx + 10 * np.arange(pixels))
            ys += [cy] * pixels
            group += 1
    return (np.array(labels), np.array(groups), np.array(xs, dtype=float), np.array(ys, dtype=float))


def split_polygons(
    groups: npt.NDArray[np.int64], train: npt.NDArray[np.int64], test: npt.NDArray[np.int64]
) -> set[int]:
    """The polygons with pixels on both sides of a split."""
    return set(groups[train].tolist()) & set(groups[test].tolist())


def test_points_only_give_exactly_the_ungrouped_splits() -> None:
    labels = np.repeat([1, 2, 3], 20)
    assert grouping(labels, np.arange(labels.size)).groups is None
    assert grouping(labels, None).groups is None
    plain = holdout_split(labels, 0.3, seed=4)
    same = holdout_split(labels, 0.3, seed=4, grouped=grouping(labels, np.arange(labels.size)))
    assert all(np.array_equal(a, b) for a, b in zip(plain, same, strict=True))


def test_hold_out_and_repeated_cv_keep_every_polygon_on_one_side() -> None:
    labels, groups, _, _ = polygons({1: 6, 2: 5, 3: 7})
    grouped = grouping(labels, groups, CLASSES)
    assert grouped.note is None
    assert grouped.n_groups == 18
    train, test = holdout_split(labels, 0.3, seed=1, grouped=grouped)
    assert split_polygons(groups, train, test) == set()
    assert set(labels[test].tolist()) == {1, 2, 3}
    assert 0.15 < test.size / labels.size < 0.45
    for scheme in ("kfold", "shuffle"):
        splits, name = repeated_splits(labels, CvOptions(scheme=scheme, repeats=3), seed=1, grouped=grouped)
        assert "grouped by polygon" in name
        assert len(splits) >= 3
        for tr, te in splits:
            assert split_polygons(groups, tr, te) == set()
            assert np.intersect1d(tr, te).size == 0
            assert tr.size + te.size == labels.size


def test_the_ungrouped_split_would_cut_polygons() -> None:
    """Control: the same data split by pixels puts pixels of one polygon on both sides."""
    labels, groups, _, _ = polygons({1: 6, 2: 5, 3: 7})
    train, test = holdout_split(labels, 0.3, seed=1)
    assert split_polygons(groups, train, test)


def test_spatial_blocks_never_cut_a_polygon_that_straddles_a_block_edge() -> None:
    labels, groups, x, y = polygons({1: 8, 2: 8, 3: 8}, pixels=30)
    # polygons are 300 m long: with 250 m blocks many straddle an edge
    plain, _, _ = spatial_splits(x, y, labels, 250.0, 4, seed=2)
    assert any(split_polygons(groups, tr, te) for tr, te in plain)
    grouped, name, _ = spatial_splits(x, y, labels, 250.0, 4, seed=2, grouped=grouping(labels, groups))
    assert "spatial block CV" in name
    for tr, te in grouped:
        assert split_polygons(groups, tr, te) == set()


def test_a_class_drawn_as_one_polygon_falls_back_clearly() -> None:
    labels, groups, _, _ = polygons({1: 6, 2: 1, 3: 7})
    grouped = grouping(labels, groups, CLASSES)
    assert grouped.note is not None
    assert "Class 2" in grouped.note
    assert "fewer than 2 polygons" in grouped.note
    assert isinstance(grouped, Grouping)
    assert grouped.groups is not None
    train, test = holdout_split(labels, 0.3, seed=0, grouped=grouped)
    cut = split_polygons(groups, train, test)
    # only the lone polygon of class 2 may be cut; every other polygon stays whole
    assert cut <= set(groups[labels == 2].tolist())


@pytest.mark.parametrize("seed", [0, 1])
def test_grouped_splits_are_seeded(seed: int) -> None:
    labels, groups, _, _ = polygons({1: 6, 2: 5, 3: 7})
    grouped = grouping(labels, groups)
    first = holdout_split(labels, 0.3, seed=seed, grouped=grouped)
    again = holdout_split(labels, 0.3, seed=seed, grouped=grouped)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
