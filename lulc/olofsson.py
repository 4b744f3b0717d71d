"""Area-weighted accuracy and area estimates from a stratified sample (Olofsson et al. 2014, RSE 148).

Also the sample size and allocation of a stratified design, and the reader of the design a ``lulc design``
sample carries in the STAC item beside it (``lulc:design``), which ``lulc assess`` and ``lulc change`` use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lulc.errors import InputError
from lulc.local_files import read_json

Z95 = 1.96
"""Normal quantile of a two-sided 95 % confidence interval."""

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Estimate:
    """Estimates from a sample stratified by map class; index ``i`` is a map class, ``j`` a reference class.

    Areas are in the units of the map areas given (pixels, hectares, ...).
    """

    weights: Array
    proportions: Array
    overall_accuracy: float
    overall_accuracy_se: float
    users_accuracy: Array
    users_accuracy_se: Array
    producers_accuracy: Array
    producers_accuracy_se: Array
    area: Array
    area_se: Array

    @property
    def area_ci95(self) -> Array:
        """Half-width of the 95 % confidence interval of each class area."""
        return Z95 * self.area_se


def estimate(counts: npt.ArrayLike, map_area: npt.ArrayLike) -> Estimate:
    """Olofsson et al. (2014) estimators.

    Args:
        counts: sample counts ``n_ij``, rows = map class, columns = reference class (same class order).
        map_area: mapped area of each class (its stratum size), same order.

    Every stratum with mapped area needs at least 2 sample points (the variance divides by ``n_i - 1``):
    callers refuse fewer with ``thin_strata`` first; here a stratum of one point adds no variance (as a
    stratum sampled whole does), it is not refused.
    A user's accuracy without sample points in its stratum, or a producer's accuracy of a class with no
    estimated reference area, is undefined: NaN (with its standard error), not 0.
    """
    n = np.asarray(counts, dtype=np.float64)
    area_map = np.asarray(map_area, dtype=np.float64)
    total = area_map.sum()
    w = area_map / total
    n_i = n.sum(axis=1)
    _check_sampled(n_i, area_map)
    safe_n = np.where(n_i > 0, n_i, 1.0)
    q = n / safe_n[:, None]  # n_ij / n_i.
    p = w[:, None] * q
    p_col = p.sum(axis=0)
    diag = np.diag(p)
    dof = np.where(n_i > 1, n_i - 1, np.inf)
    ua = np.divide(np.diag(n), n_i, out=np.zeros(len(n)), where=n_i > 0)  # 0 where undefined, until the end
    pa = np.divide(diag, p_col, out=np.zeros(len(n)), where=p_col > 0)
    oa = float(diag.sum())
    var_oa = float(np.sum(w**2 * ua * (1 - ua) / dof))
    var_ua = ua * (1 - ua) / dof
    # Producer's accuracy (eq. 7), with N_i. the mapped area and N^_.j the estimated reference area.
    n_hat_col = np.sum(area_map[:, None] / safe_n[:, None] * n, axis=0)
    var_pa = np.zeros(len(n))
    for j in range(len(n)):
        if n_hat_col[j] == 0:
            continue
        first = area_map[j] ** 2 * (1 - pa[j]) ** 2 * ua[j] * (1 - ua[j]) / dof[j]
        others = [i for i in range(len(n)) if i != j]
        second = pa[j] ** 2 * sum(area_map[i] ** 2 * q[i, j] * (1 - q[i, j]) / dof[i] for i in others)
        var_pa[j] = (first + second) / n_hat_col[j] ** 2
    var_p_col = np.sum((w[:, None] ** 2) * q * (1 - q) / dof[:, None], axis=0)
    no_users, no_producers = n_i == 0, p_col == 0
    return Estimate(
        weights=w,
        proportions=p,
        overall_accuracy=oa,
        overall_accuracy_se=float(np.sqrt(var_oa)),
        users_accuracy=np.where(no_users, np.nan, ua),
        users_accuracy_se=np.where(no_users, np.nan, np.sqrt(var_ua)),
        producers_accuracy=np.where(no_producers, np.nan, pa),
        producers_accuracy_se=np.where(no_producers, np.nan, np.sqrt(var_pa)),
        area=total * p_col,
        area_se=total * np.sqrt(var_p_col),
    )


def cochran_sample_size(weights: npt.ArrayLike, users_accuracy: npt.ArrayLike, target_se: float) -> int:
    """Overall sample size for a target standard error of overall accuracy (Olofsson et al. 2014, eq. 13).

    ``n = (sum_i W_i S_i / S(O))^2`` with ``S_i = sqrt(U_i (1 - U_i))`` the anticipated standard deviation of
    stratum ``i`` (``U_i`` its anticipated user's accuracy). Cochran's formula assumes Neyman allocation.
    """
    w = np.asarray(weights, dtype=np.float64)
    u = np.asarray(users_accuracy, dtype=np.float64)
    return max(1, math.ceil(float(np.sum(w * np.sqrt(u * (1 - u))) / target_se) ** 2 - 1e-9))


def allocate(total: int, stratum_sizes: npt.ArrayLike, minimum: int) -> npt.NDArray[np.int64]:
    """Points per stratum: at least ``minimum`` each, the rest proportional to stratum size (Olofsson 2014).

    Strata whose proportional share falls below ``minimum`` get ``minimum``; the remaining points go to the
    others in proportion to their size (largest remainders, so the counts sum to ``total`` whenever the
    minimums fit). No stratum gets more points than it has units; empty strata get none.
    """
    sizes = np.asarray(stratum_sizes, dtype=np.int64)
    present = sizes > 0
    fixed = np.zeros(sizes.shape, dtype=bool)
    while True:
        floor = np.where(fixed, np.minimum(minimum, sizes), 0)
        free = present & ~fixed
        rest = max(total - int(floor.sum()), 0)
        share = np.zeros(sizes.shape, dtype=np.float64)
        if free.any():
            share[free] = rest * sizes[free] / sizes[free].sum()
        under = free & (share < np.minimum(minimum, sizes))
        if not under.any():
            break
        fixed |= under
    counts = floor + np.floor(share).astype(np.int64)
    remainder = share - np.floor(share)
    missing = max(total - int(counts.sum()), 0)
    if missing and free.any():
        order = np.argsort(-remainder, kind="stable")
        counts[order[:missing]] += 1
    return np.asarray(np.minimum(counts, sizes), dtype=np.int64)


def _check_sampled(points: Array, sizes: Array) -> None:
    """Refuse strata with mapped area and no point: the estimators would drop their area from every estimate.

    Raises:
        InputError: naming the strata (positions).
    """
    empty = np.flatnonzero((sizes > 0) & (points == 0))
    if empty.size:
        raise InputError(
            f"strata {[int(i) for i in empty]} have mapped area but no sample point: their area would drop "
            "out of every estimate (the callers name them: lulc assess, lulc change)"
        )


def thin_strata(points: npt.ArrayLike, units: npt.ArrayLike) -> list[int]:
    """The strata whose variance cannot be estimated: mapped, fewer than 2 points, not sampled whole.

    ``units`` are each stratum's size in sampling units (pixels), ``points`` its sample. With one point a
    stratum's variance reads as 0 (and with none its area drops out of every estimate): the interval would
    claim a precision nothing measured. A stratum sampled whole is known exactly.
    """
    n = np.asarray(points, dtype=np.float64)
    size = np.asarray(units, dtype=np.float64)
    return [int(i) for i in np.flatnonzero((size > 0) & (n < 2) & (n < size))]


def anticipated_overall_se(
    weights: npt.ArrayLike,
    users_accuracy: npt.ArrayLike,
    counts: npt.ArrayLike,
    sizes: npt.ArrayLike | None = None,
) -> float:
    """The standard error of overall accuracy a stratified sample of ``counts`` points per stratum would give.

    Olofsson et al. 2014 eq. 5 with anticipated user's accuracies: ``sum W_i^2 U_i (1 - U_i) / (n_i - 1)``.
    A stratum sampled whole (``counts`` reaching its ``sizes``, e.g. a class of one pixel) is known
    exactly and adds nothing; any other stratum needs 2 points, else the error is infinite.
    """
    w = np.asarray(weights, dtype=np.float64)
    u = np.asarray(users_accuracy, dtype=np.float64)
    n = np.asarray(counts, dtype=np.float64)
    used = w > 0
    if sizes is not None:
        used &= n < np.asarray(sizes, dtype=np.float64)
    if np.any(n[used] < 2):
        return math.inf
    return float(np.sqrt(np.sum(w[used] ** 2 * u[used] * (1 - u[used]) / (n[used] - 1))))


def _stratified_mean(
    y: Array, strata: npt.NDArray[np.int64], n_h: Array, w: Array
) -> tuple[float, Array, Array]:
    """Stratified estimate of the mean of ``y``, and each stratum's sample mean and variance."""
    k = len(w)
    sums = np.bincount(strata, weights=y, minlength=k)
    means = np.divide(sums, n_h, out=np.zeros(k), where=n_h > 0)
    squares = np.bincount(strata, weights=(y - means[strata]) ** 2, minlength=k)
    variances = np.divide(squares, n_h - 1, out=np.zeros(k), where=n_h > 1)
    return float(np.sum(w * means)), means, variances


def stratified_mean(
    y: npt.ArrayLike, strata: npt.ArrayLike, stratum_sizes: npt.ArrayLike
) -> tuple[float, float]:
    """The stratified estimate of the population mean of ``y`` and its standard error (no finite correction).

    ``strata`` is each sampled unit's stratum position, ``stratum_sizes`` every stratum's size.
    """
    values = np.asarray(y, dtype=np.float64)
    h = np.asarray(strata, dtype=np.int64)
    sizes = np.asarray(stratum_sizes, dtype=np.float64)
    k = len(sizes)
    w = sizes / sizes.sum()
    n_h = np.bincount(h, minlength=k).astype(np.float64)
    mean, _, variances = _stratified_mean(values, h, n_h, w)
    return mean, float(np.sqrt(np.sum(np.divide(w**2 * variances, n_h, out=np.zeros(k), where=n_h > 0))))


def _ratio(
    y: Array, x: Array, strata: npt.NDArray[np.int64], n_h: Array, sizes: Array
) -> tuple[float, float]:
    """Stehman (2014) eq. 27-28: the ratio ``sum N_h ybar_h / sum N_h xbar_h`` and its standard error."""
    k = len(sizes)
    y_mean = np.divide(np.bincount(strata, weights=y, minlength=k), n_h, out=np.zeros(k), where=n_h > 0)
    x_mean = np.divide(np.bincount(strata, weights=x, minlength=k), n_h, out=np.zeros(k), where=n_h > 0)
    x_total = float(np.sum(sizes * x_mean))
    if x_total == 0:  # undefined: no mapped (user's) or reference (producer's) area of the class
        return math.nan, math.nan
    ratio = float(np.sum(sizes * y_mean)) / x_total
    dy, dx = y - y_mean[strata], x - x_mean[strata]
    s_yy = np.bincount(strata, weights=dy * dy, minlength=k)
    s_xx = np.bincount(strata, weights=dx * dx, minlength=k)
    s_xy = np.bincount(strata, weights=dx * dy, minlength=k)
    dof = np.where(n_h > 1, n_h - 1, np.inf)
    per = (s_yy + ratio**2 * s_xx - 2 * ratio * s_xy) / dof
    variance = float(np.sum(np.divide(sizes**2 * per, n_h, out=np.zeros(k), where=n_h > 0))) / x_total**2
    return ratio, float(np.sqrt(max(variance, 0.0)))


def stratified_estimate(
    strata: npt.ArrayLike,
    mapped: npt.ArrayLike,
    reference: npt.ArrayLike,
    stratum_sizes: npt.ArrayLike,
    classes: int | None = None,
) -> Estimate:
    """Accuracy and areas of a map from a sample stratified by other strata (Stehman 2014, IJRS 35(13)).

    For a sample designed on one map and used to assess another (a cleaned version of it, say), or designed
    on strata that group map classes: each point has its stratum (a position into ``stratum_sizes``, the
    strata sizes in the output's area units), and the assessed map's class and the reference class as
    positions ``0..classes-1`` of one class table (``classes`` defaults to the number of strata). Where every
    point's stratum is its map class this equals ``estimate``. ``weights`` are the strata's.
    """
    h = np.asarray(strata, dtype=np.int64)
    m = np.asarray(mapped, dtype=np.int64)
    r = np.asarray(reference, dtype=np.int64)
    sizes = np.asarray(stratum_sizes, dtype=np.float64)
    k = len(sizes)
    n_classes = k if classes is None else classes
    total = float(sizes.sum())
    w = sizes / total
    n_h = np.bincount(h, minlength=k).astype(np.float64)
    _check_sampled(n_h, sizes)
    oa, oa_se = stratified_mean((m == r).astype(np.float64), h, sizes)
    proportions = np.zeros((n_classes, n_classes))
    pair = m * n_classes + r
    for code in np.unique(pair):
        i, j = divmod(int(code), n_classes)
        proportions[i, j] = _stratified_mean((pair == code).astype(np.float64), h, n_h, w)[0]
    area, area_se = np.zeros(n_classes), np.zeros(n_classes)
    ua, ua_se = np.full(n_classes, np.nan), np.full(n_classes, np.nan)
    pa, pa_se = np.full(n_classes, np.nan), np.full(n_classes, np.nan)
    for c in range(n_classes):
        is_ref, is_map = (r == c).astype(np.float64), (m == c).astype(np.float64)
        if not is_ref.any() and not is_map.any():
            continue
        p_c, se_c = stratified_mean(is_ref, h, sizes)
        area[c], area_se[c] = total * p_c, total * se_c
        hit = is_ref * is_map
        ua[c], ua_se[c] = _ratio(hit, is_map, h, n_h, sizes)
        pa[c], pa_se[c] = _ratio(hit, is_ref, h, n_h, sizes)
    return Estimate(
        weights=w,
        proportions=proportions,
        overall_accuracy=oa,
        overall_accuracy_se=oa_se,
        users_accuracy=ua,
        users_accuracy_se=ua_se,
        producers_accuracy=pa,
        producers_accuracy_se=pa_se,
        area=area,
        area_se=area_se,
    )


def read_sample_design(points_path: str | Path) -> dict[str, Any] | None:
    """The ``lulc:design`` of a sample's STAC item (``<stem>.json`` beside it), or None when it has none.

    Raises:
        InputError: the item is not JSON, or its design has no list of strata.
    """
    path = Path(points_path).with_suffix(".json")
    if not path.is_file():
        return None
    item = read_json(path, "the sample's item")
    design = item.get("properties", {}).get("lulc:design") if isinstance(item, dict) else None
    if design is not None and not (isinstance(design, dict) and isinstance(design.get("strata"), list)):
        raise InputError(f"the sample's item {path} has a malformed lulc:design (no strata list)")
    return design
