"""Change areas with 95 % confidence intervals from validation points labelled at both dates.

Olofsson et al. (2014, Remote Sensing of Environment 148) on the change strata: by default the from-to
classes of the change map are the strata (their mapped pixels the stratum sizes); a sample made by
``lulc design`` on a change product brings its own strata instead (``change_strata``: each class unchanged,
and change grouped by the class it became, as the paper's example groups deforestation and gain), and
Stehman's (2014) estimators use them. Each point's reference class is the pair of its labels at the two
dates; the estimators give every from-to class's area, the total changed area and the change map's overall
accuracy, each with a standard error and a 95 % interval. Strata with fewer than two points add no variance
(it cannot be estimated) and are listed.
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
from lulc.olofsson import Z95, stratified_estimate, stratified_mean, thin_strata
from lulc.vector_layers import geometry_layer
from service.run_folder import RunGrid


def change_strata(codes: npt.NDArray[np.uint8], n: int, nodata: int = 255) -> npt.NDArray[np.uint8]:
    """The design stratum of each change-map pixel (``nodata`` where the change map has none).

    Stratum ``i`` is class i unchanged, ``n + j`` changed to class j.
    """
    c = codes.astype(np.int64)
    strata = np.where(c // n == c % n, c % n, n + c % n)
    return np.where(codes == nodata, nodata, strata).astype(np.uint8)


def change_stratum_names(names: list[str]) -> list[str]:
    """Names of the ``change_strata`` of classes named ``names`` (in table order), in stratum order."""
    return [f"{name} unchanged" for name in names] + [f"changed to {name}" for name in names]


@dataclass(frozen=True)
class ChangePoints:
    """Validation points on the map grid: pixel row/column and reference class positions at both dates."""

    rows: npt.NDArray[np.int64]
    cols: npt.NDArray[np.int64]
    first: npt.NDArray[np.int64]
    second: npt.NDArray[np.int64]
    outside: int
    strata: npt.NDArray[np.int64] | None = None
    """Each point's design stratum (``stratum_field``), when asked for."""


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
    path: str | Path,
    field_a: str,
    field_b: str,
    classes: ClassTable,
    grid: RunGrid,
    stratum_field: str | None = None,
) -> ChangePoints:
    """Read points (any OGR format with a CRS) with reference labels (class values or names) at both dates.

    With ``stratum_field``, also each point's design stratum (an integer column).
    """
    import pyogrio
    import pyogrio.raw

    path = Path(path)
    if not path.is_file():
        raise InputError(f"validation points {path} do not exist")
    layer = geometry_layer(path, "validation points", "the labelled points' layer")
    wanted = [field_a, field_b, *([stratum_field] if stratum_field else [])]
    try:
        own = [str(f) for f in pyogrio.read_info(path, layer=layer)["fields"]]
        missing = [field for field in wanted if field not in own]
        if missing:
            raise InputError(
                f"validation points {path} have no field {missing[0]!r} (fields: {', '.join(own) or 'none'})"
            )
        meta, _, geometry, data = pyogrio.raw.read(path, layer=layer, columns=wanted)
    except InputError:
        raise
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise InputError(f"validation points {path} cannot be read: {exc}") from exc
    fields = list(meta["fields"])
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
    with np.errstate(all="ignore"):  # points far off the map (even off the CRS) are outside, not warnings
        cols_f, rows_f = inverse @ (np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        inside = (rows_f >= 0) & (rows_f < grid.height) & (cols_f >= 0) & (cols_f < grid.width)
    # only the points inside are kept below: the others' (maybe infinite) positions are never cast
    rows = np.floor(np.where(inside, rows_f, 0)).astype(np.int64)
    cols = np.floor(np.where(inside, cols_f, 0)).astype(np.int64)
    if rows.size and not inside.any():
        raise InputError(
            f"none of the {rows.size} validation points in {path} lies on the change map (the map covers "
            f"{_bounds_text(grid)}): give points over the mapped area, in any CRS they declare"
        )
    first = _positions(np.asarray(data[fields.index(field_a)]), classes, field_a, path)
    second = _positions(np.asarray(data[fields.index(field_b)]), classes, field_b, path)
    strata = None
    if stratum_field:
        column = np.asarray(data[fields.index(stratum_field)])
        if column.dtype.kind not in "iu":
            raise InputError(f"{path}: the design's {stratum_field!r} column must hold integers")
        strata = column.astype(np.int64)[inside]
    return ChangePoints(
        rows[inside], cols[inside], first[inside], second[inside], int((~inside).sum()), strata
    )


def _bounds_text(grid: RunGrid) -> str:
    """The grid's extent in longitude and latitude, for messages."""
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    west, south, east, north = transform_bounds(
        grid.crs, "EPSG:4326", *array_bounds(grid.height, grid.width, grid.transform)
    )
    return f"longitude {west:.4f} to {east:.4f}, latitude {south:.4f} to {north:.4f}"


def change_area_estimate(
    map_codes: npt.NDArray[np.int64],
    reference_codes: npt.NDArray[np.int64],
    stratum_pixels: npt.NDArray[np.int64] | npt.NDArray[np.float64],
    pixel_ha: float,
    classes: ClassTable,
    strata: npt.NDArray[np.int64] | None = None,
    stratum_names: list[str] | None = None,
    code_pixels: npt.NDArray[np.int64] | npt.NDArray[np.float64] | None = None,
    code_hectares: npt.NDArray[np.float64] | None = None,
) -> dict[str, Any]:
    """Stratified area estimates of every from-to class and of all change, with 95 % intervals.

    Args:
        map_codes: the change map's code at each point.
        reference_codes: the reference from-to code of each point (same coding).
        stratum_pixels: mapped pixels of each stratum: of each code (length n x n) unless ``strata`` given.
        pixel_ha: the area of one pixel in hectares.
        classes: the maps' class table (code ``i * n + j``: from position i to position j).
        strata: each point's stratum (a position into ``stratum_pixels``); default its map code.
        stratum_names: names of the strata, for the list of thin ones (default: the from-to names).
        code_pixels: mapped pixels of each code (length n x n), for the mapped areas; default
            ``stratum_pixels`` (which are that unless ``strata`` is given).
        code_hectares: the mapped hectares of each code, where they are not pixels x ``pixel_ha``
            (pixel areas varying over the map: ``lulc.areas``). ``stratum_pixels`` may then be areas too,
            in units of ``pixel_ha`` hectares.

    Raises:
        InputError: a stratum with mapped pixels holds no point (its area would drop out of every
            estimate), or one point and more pixels (its variance would read as 0).
    """
    n = len(classes.classes)
    k = n * n
    h = map_codes if strata is None else strata
    area = stratum_pixels.astype(np.float64)
    n_h = np.bincount(h, minlength=len(area))
    names = [
        f"{a.name} unchanged" if i == j else f"{a.name} to {b.name}"
        for i, a in enumerate(classes.classes)
        for j, b in enumerate(classes.classes)
    ]
    strata_names = names if strata is None else (stratum_names or [str(s) for s in range(len(area))])
    empty = [
        f"{strata_names[s]} ({area[s] * pixel_ha:.4g} ha)"
        for s in range(len(area))
        if area[s] > 0 and n_h[s] == 0
    ]
    if (
        empty
    ):  # the estimators would take such a stratum's mean as 0: its area would vanish from every estimate
        raise InputError(
            f"no point lies in the mapped strata {', '.join(empty)}: their area cannot be estimated; "
            "give points in every stratum, e.g. a sample `lulc design` draws on the change folder"
        )
    thin = [f"{strata_names[s]} ({int(n_h[s])} point)" for s in thin_strata(n_h, area)]
    if thin:  # one point: the stratum's variance would read as 0, and the interval claim what none measured
        raise InputError(
            f"the mapped strata {', '.join(thin)} have fewer than 2 points: their variance cannot be "
            "estimated; give at least 2 points in every stratum, e.g. a sample `lulc design` draws on the "
            "change folder"
        )
    est = stratified_estimate(h, map_codes, reference_codes, area, classes=k)
    total = float(area.sum())
    changed = np.array([i != j for i in range(n) for j in range(n)])
    p_changed, se_changed = stratified_mean(changed[reference_codes].astype(np.float64), h, area)
    p_col, se_col = est.area / total, est.area_se / total
    total_ha = total * pixel_ha
    if strata is not None and code_pixels is None:
        raise ValueError("code_pixels (each from-to code's mapped pixels) are needed with design strata")
    if code_hectares is not None:
        mapped = np.asarray(code_hectares, dtype=np.float64)
    else:
        mapped = (stratum_pixels if code_pixels is None else code_pixels).astype(np.float64) * pixel_ha
    return {
        "method": "Olofsson et al. 2014, stratified by the change map's from-to classes"
        if strata is None
        else "Olofsson et al. 2014 / Stehman 2014, stratified by the sample design's change strata",
        "points": int(n_h.sum()),
        "overall_accuracy": round(est.overall_accuracy, 6),
        "overall_accuracy_se": round(est.overall_accuracy_se, 6),
        "changed": {
            "mapped_hectares": round(float(mapped[changed].sum()), 4),
            "estimated_hectares": round(float(p_changed * total_ha), 4),
            "ci95_hectares": round(float(Z95 * se_changed * total_ha), 4),
        },
        "classes": [
            {
                "code": s,
                "name": names[s],
                "points": int((reference_codes == s).sum()),
                "mapped_hectares": round(float(mapped[s]), 4),
                "estimated_hectares": round(float(p_col[s]) * total_ha, 4),
                "ci95_hectares": round(Z95 * float(se_col[s]) * total_ha, 4),
            }
            for s in range(k)
        ],
    }
