"""Change areas with 95 % confidence intervals from validation points labelled at both dates.

Olofsson et al. (2014, Remote Sensing of Environment 148) on the change strata: the from-to classes of the
change map are the strata (their mapped pixels the stratum sizes), each point's reference class is the pair
of its labels at the two dates, and the stratified estimator gives every from-to class's area, the total
changed area and the change map's overall accuracy, each with a standard error and a 95 % interval.
Strata with fewer than two points add no variance (it cannot be estimated) and are listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyproj
import shapely

from lulc.classes import ClassTable
from lulc.errors import InputError
from lulc.olofsson import Z95, estimate
from service.run_folder import RunGrid


@dataclass(frozen=True)
class ChangePoints:
    """Validation points on the map grid: pixel row/column and reference class positions at both dates."""

    rows: npt.NDArray[np.int64]
    cols: npt.NDArray[np.int64]
    first: npt.NDArray[np.int64]
    second: npt.NDArray[np.int64]
    outside: int


def _positions(
    values: npt.NDArray[Any], classes: ClassTable, field: str, path: Path
) -> npt.NDArray[np.int64]:
    by_value = {str(c.value): i for i, c in enumerate(classes.classes)}
    by_name = {c.name.lower(): i for i, c in enumerate(classes.classes)}
    out = np.empty(len(values), dtype=np.int64)
    for k, raw in enumerate(values.tolist()):
        text = str(int(raw)) if isinstance(raw, float) and float(raw).is_integer() else str(raw).strip()
        position = by_value.get(text, by_name.get(text.lower()))
        if position is None:
            known = ", ".join(f"{c.value}={c.name}" for c in classes.classes)
            raise InputError(f"{path}: {field} {raw!r} is not a class of the maps ({known})")
        out[k] = position
    return out


def read_change_points(
    path: str | Path, field_a: str, field_b: str, classes: ClassTable, grid: RunGrid
) -> ChangePoints:
    """Read points (any OGR format with a CRS) with reference labels (class values or names) at both dates."""
    import pyogrio.raw

    path = Path(path)
    if not path.is_file():
        raise InputError(f"validation points {path} do not exist")
    try:
        meta, _, geometry, data = pyogrio.raw.read(path, columns=[field_a, field_b])
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise InputError(f"validation points {path} cannot be read: {exc}") from exc
    fields = list(meta["fields"])
    for field in (field_a, field_b):
        if field not in fields:
            raise InputError(
                f"validation points {path} have no field {field!r} (fields: {', '.join(fields)})"
            )
    if not meta.get("crs"):
        raise InputError(f"validation points {path} declare no CRS")
    points = shapely.from_wkb(geometry)
    if not np.all(shapely.get_type_id(points) == 0):
        raise InputError(f"validation points {path} must be points")
    to_map = pyproj.Transformer.from_crs(
        pyproj.CRS.from_user_input(meta["crs"]), pyproj.CRS.from_wkt(grid.crs.to_wkt()), always_xy=True
    )
    x, y = to_map.transform(shapely.get_x(points), shapely.get_y(points))
    inverse = ~grid.transform
    cols_f, rows_f = inverse * (np.asarray(x), np.asarray(y))
    rows, cols = np.floor(rows_f).astype(np.int64), np.floor(cols_f).astype(np.int64)
    inside = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
    first = _positions(np.asarray(data[fields.index(field_a)]), classes, field_a, path)
    second = _positions(np.asarray(data[fields.index(field_b)]), classes, field_b, path)
    return ChangePoints(rows[inside], cols[inside], first[inside], second[inside], int((~inside).sum()))


def change_area_estimate(
    map_codes: npt.NDArray[np.int64],
    reference_codes: npt.NDArray[np.int64],
    stratum_pixels: npt.NDArray[np.int64],
    pixel_ha: float,
    classes: ClassTable,
) -> dict[str, Any]:
    """Stratified area estimates of every from-to class and of all change, with 95 % intervals.

    Args:
        map_codes: the change map's code at each point (its stratum).
        reference_codes: the reference from-to code of each point (same coding).
        stratum_pixels: mapped pixels of each code (the stratum sizes), length n x n.
        pixel_ha: the area of one pixel in hectares.
        classes: the maps' class table (code ``i * n + j``: from position i to position j).
    """
    n = len(classes.classes)
    k = n * n
    counts = np.zeros((k, k), dtype=np.float64)
    np.add.at(counts, (map_codes, reference_codes), 1)
    area = stratum_pixels.astype(np.float64)
    est = estimate(counts, area)  # per from-to class: areas and their standard errors, overall accuracy
    total = area.sum()
    w = est.weights
    n_i = counts.sum(axis=1)
    q = np.divide(counts, n_i[:, None], out=np.zeros_like(counts), where=n_i[:, None] > 0)
    dof = np.where(n_i > 1, n_i - 1, np.inf)
    # All change together: the share of each stratum's points whose reference is a change, area-weighted.
    changed = np.array([i != j for i in range(n) for j in range(n)])
    q_changed = q[:, changed].sum(axis=1)
    p_changed = float((w * q_changed).sum())
    se_changed = float(np.sqrt(np.sum(w**2 * q_changed * (1 - q_changed) / dof)))
    overall, overall_se = est.overall_accuracy, est.overall_accuracy_se
    p_col, se_col = est.area / total, est.area_se / total
    total_ha = total * pixel_ha
    names = [
        f"{a.name} unchanged" if i == j else f"{a.name} to {b.name}"
        for i, a in enumerate(classes.classes)
        for j, b in enumerate(classes.classes)
    ]
    thin = [names[s] for s in range(k) if area[s] > 0 and n_i[s] < 2]
    return {
        "method": "Olofsson et al. 2014, stratified by the change map's from-to classes",
        "points": int(n_i.sum()),
        "overall_accuracy": round(overall, 6),
        "overall_accuracy_se": round(overall_se, 6),
        "changed": {
            "mapped_hectares": round(float(area[changed].sum()) * pixel_ha, 4),
            "estimated_hectares": round(p_changed * total_ha, 4),
            "ci95_hectares": round(Z95 * se_changed * total_ha, 4),
        },
        "classes": [
            {
                "code": s,
                "name": names[s],
                "points": int(counts[:, s].sum()),
                "mapped_hectares": round(float(area[s]) * pixel_ha, 4),
                "estimated_hectares": round(float(p_col[s]) * total_ha, 4),
                "ci95_hectares": round(Z95 * float(se_col[s]) * total_ha, 4),
            }
            for s in range(k)
        ],
        "strata_with_fewer_than_2_points": thin,
    }
