"""Bayesian smoothing of class probabilities, sits' ``sits_smooth`` (method "bayes"), on percent bands.

For each class and pixel (Camara et al., sits; ``bayes_smoother_fraction`` in sits' C++): the logits of the
class's probability in a ``window`` x ``window`` neighbourhood (mirrored at the map's edges, nodata left
out) are sorted, the highest ``ceil(neigh_fraction * n)`` of them give a prior mean ``m0`` and variance
``s0`` (``n - 1`` in the denominator, as R's ``var``), and the pixel's logit ``x0`` becomes
``w * x0 + (1 - w) * m0`` with ``w = s0 / (s0 + smoothness)``: a pixel in a uniform neighbourhood takes its
neighbours' value, one on a border (a large ``s0``) keeps its own. The label is the class of the highest
smoothed logit.

Differences from sits, each for a reason: the probabilities are the run's percent bands, so a pixel's logit
is ``log(p / (1 - p))`` of its percent over 100 (sits divides by the sum of the other classes, which is
``1 - p`` up to the percent rounding), clamped to ``[1e-6, 1 - 1e-6]`` as sits clamps; a pixel of nodata
stays nodata (sits fills it with ``m0``: a map would grow past its AOI); fewer than 2 values kept of a
neighbourhood (``ceil(neigh_fraction * n)`` of its ``n`` valid pixels) leave the pixel as it is (R's ``var``
of one value is ``NA``, and so is sits' result).

Every pixel's result depends on its window's values alone, computed in one fixed order, so a map smoothed
block by block (``halo`` pixels of overlap) is the same to the last bit whatever the block size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from lulc.decision import percent as whole_percent

CLAMP = 1e-6
"""sits' clamp of probabilities 0 and 1 before the logit."""
STRIP_CELLS = 2**20
"""Window cells (pixels x window²) sorted at once: the temporaries of a strip, about 25 bytes a cell, stay
near 25 MiB per worker whatever the window (review: 265 MiB for a 31 x 31 window on 16,384 pixels)."""
MAX_WINDOW = 31
"""Time and memory grow with the window's area; sits' default is 9."""

_PERCENT = np.arange(101, dtype=np.float64) / 100.0
_CLAMPED = np.clip(_PERCENT, CLAMP, 1.0 - CLAMP)
LOGITS = np.log(_CLAMPED / (1.0 - _CLAMPED))
"""The logit of each percent 0..100."""


@dataclass(frozen=True)
class BayesSmoothing:
    """sits' parameters: the window's edge (odd), the share of its highest values, the smoothness."""

    window: int = 9
    neigh_fraction: float = 0.5
    smoothness: tuple[float, ...] = (20.0,)
    """One value for every class, or one per class in class-table order."""

    def __post_init__(self) -> None:
        if self.window < 3 or self.window % 2 == 0 or self.window > MAX_WINDOW:
            raise ValueError(
                f"the window must be an odd number of pixels from 3 to {MAX_WINDOW}, got {self.window}"
            )
        if not (0.0 < self.neigh_fraction <= 1.0):
            raise ValueError(f"the neighbourhood fraction must be in (0, 1], got {self.neigh_fraction:g}")
        if not self.smoothness or not all(math.isfinite(s) and s > 0 for s in self.smoothness):
            raise ValueError(
                f"smoothness must be positive numbers, got {', '.join(map(str, self.smoothness))}"
            )

    @property
    def name(self) -> str:
        """A short name of the settings for item ids: the window, and the others where not sits' defaults."""
        default = BayesSmoothing()
        name = f"bayes{self.window}"
        if self.neigh_fraction != default.neigh_fraction:
            name += f"-f{self.neigh_fraction:g}"
        if self.smoothness != default.smoothness:
            name += "-s" + "_".join(f"{s:g}" for s in self.smoothness)
        return name

    @property
    def halo(self) -> int:
        """Pixels of neighbourhood on each side of a pixel."""
        return self.window // 2

    def smoothness_of(self, n_classes: int) -> npt.NDArray[np.float64]:
        """One smoothness per class."""
        if len(self.smoothness) == 1:
            return np.full(n_classes, self.smoothness[0], dtype=np.float64)
        if len(self.smoothness) != n_classes:
            raise ValueError(
                f"{len(self.smoothness)} smoothness values for {n_classes} classes: give one or one per class"
            )
        return np.asarray(self.smoothness, dtype=np.float64)


def smooth_block(
    percent: npt.NDArray[np.uint8], nodata: int, params: BayesSmoothing
) -> npt.NDArray[np.float64]:
    """Smoothed logits ``(classes, h, w)`` of a block given with its halo, ``(classes, h + 2r, w + 2r)``.

    ``percent`` holds each class's probability in percent (0-100), ``nodata`` where the map has none (in
    every band alike); the halo is the neighbouring blocks' pixels, or the mirror image past the map's
    edge (``pad_to_halo``). Pixels of nodata come out as NaN.
    """
    r = params.halo
    n_classes, rows, cols = percent.shape[0], percent.shape[1] - 2 * r, percent.shape[2] - 2 * r
    smoothness = params.smoothness_of(n_classes)
    valid = percent[0] != nodata
    # a code per pixel: 0 for nodata, which sorts below every percent (1..101)
    codes = np.where(valid, percent.astype(np.int16) + 1, 0).astype(np.uint8)
    code_logits = np.concatenate([[0.0], LOGITS])
    out = np.full((n_classes, rows, cols), np.nan, dtype=np.float64)
    counts = sliding_window_view(valid, (params.window, params.window)).sum(axis=(2, 3)).reshape(-1)
    centre = valid[r : r + rows, r : r + cols].reshape(-1)
    top = np.ceil(params.neigh_fraction * counts).astype(np.int64)
    area = params.window * params.window
    widest = math.ceil(params.neigh_fraction * area)  # no window keeps more of its sorted values
    step = max(1, STRIP_CELLS // (max(cols, 1) * area))
    for k in range(n_classes):
        windows = sliding_window_view(codes[k], (params.window, params.window))
        own_all = LOGITS[percent[k, r : r + rows, r : r + cols].reshape(-1).clip(0, 100)]
        for row in range(0, rows, step):
            strip = slice(row * cols, min(rows, row + step) * cols)
            ordered = np.sort(windows[row : row + step].reshape(-1, area), axis=1, kind="stable")
            highest = code_logits[ordered[:, ::-1][:, :widest]]  # highest first
            n_top = top[strip]
            last = np.maximum(n_top, 1)[:, None] - 1
            # sums from the highest value on, each taken at its window's count: the deviations from the
            # highest keep a uniform window's variance exactly 0
            shifted = highest - highest[:, :1]
            total = np.take_along_axis(np.cumsum(shifted, axis=1), last, axis=1)[:, 0]
            squares = np.take_along_axis(np.cumsum(shifted * shifted, axis=1), last, axis=1)[:, 0]
            size = np.maximum(n_top, 1).astype(np.float64)
            mean = total / size
            variance = np.maximum(squares - total * mean, 0.0) / np.maximum(size - 1.0, 1.0)
            weight = np.where((n_top >= 2) & centre[strip], variance / (variance + smoothness[k]), 1.0)
            smoothed = weight * own_all[strip] + (1.0 - weight) * (mean + highest[:, 0])
            out[k].reshape(-1)[strip] = np.where(centre[strip], smoothed, np.nan)
    return out


def pad_to_halo(
    data: npt.NDArray[np.uint8], before: tuple[int, int], after: tuple[int, int]
) -> npt.NDArray[np.uint8]:
    """``data`` ``(bands, h, w)`` mirrored by ``before`` (rows, cols) and ``after`` pixels, as in sits."""
    return np.pad(data, ((0, 0), (before[0], after[0]), (before[1], after[1])), mode="symmetric")


def decide(
    logits: npt.NDArray[np.float64], values: Sequence[int], nodata: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Labels, top-class percent and every class's percent of smoothed ``logits`` ``(classes, h, w)``.

    The probabilities (inverse logits) are divided by their sum so a pixel's percents still add up to 100
    (up to rounding; sits leaves them as they come): the label, the class of the highest, is the same either
    way. Ties go to the first class in table order. NaN (nodata) pixels get ``nodata`` everywhere.
    """
    missing = np.isnan(logits[0])
    probabilities = 1.0 / (1.0 + np.exp(-np.nan_to_num(logits)))
    probabilities /= probabilities.sum(axis=0, keepdims=True)
    percent = whole_percent(probabilities)  # as every percent map of lulc-stac is rounded (a half up)
    best = np.argmax(logits, axis=0)  # NaN only where every class is NaN (nodata): overwritten below
    labels = np.asarray(values, dtype=np.uint8)[best]
    top = np.take_along_axis(percent, best[None], axis=0)[0]
    labels[missing] = nodata
    top[missing] = nodata
    percent[:, missing] = nodata
    return labels, top, percent
