"""Area-weighted accuracy and area estimates from a stratified sample (Olofsson et al. 2014, RSE 148)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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

    Every stratum with mapped area needs at least 2 sample points (the variance divides by ``n_i - 1``).
    """
    n = np.asarray(counts, dtype=np.float64)
    area_map = np.asarray(map_area, dtype=np.float64)
    total = area_map.sum()
    w = area_map / total
    n_i = n.sum(axis=1)
    safe_n = np.where(n_i > 0, n_i, 1.0)
    q = n / safe_n[:, None]  # n_ij / n_i.
    p = w[:, None] * q
    p_col = p.sum(axis=0)
    diag = np.diag(p)
    dof = np.where(n_i > 1, n_i - 1, np.inf)
    ua = np.divide(np.diag(n), n_i, out=np.zeros(len(n)), where=n_i > 0)
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
    return Estimate(
        weights=w,
        proportions=p,
        overall_accuracy=oa,
        overall_accuracy_se=float(np.sqrt(var_oa)),
        users_accuracy=ua,
        users_accuracy_se=np.sqrt(var_ua),
        producers_accuracy=pa,
        producers_accuracy_se=np.sqrt(var_pa),
        area=total * p_col,
        area_se=total * np.sqrt(var_p_col),
    )
