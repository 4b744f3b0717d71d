"""``lulc assess``: a finished map against an independent validation sample, as remote sensing expects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from lulc.classes import NODATA, ClassTable, LandCoverClass, load_class_table
from lulc.cog import atomic_path
from lulc.gdal_env import gdal_env
from lulc.olofsson import Z95, estimate
from training.errors import AssessError
from training.imagery import open_local_imagery
from training.points import read_points
from training.sampling import sample_points


def map_pixel_counts(path: Path) -> tuple[dict[int, int], float]:
    """Pixels per class value (nodata excluded) and the pixel area in hectares, read block by block."""
    counts = np.zeros(256, dtype=np.int64)
    with gdal_env(), rasterio.open(path) as src:
        if src.crs is None or not src.crs.is_projected:
            raise AssessError(f"map {path} must be in a projected CRS to measure areas (it is {src.crs})")
        if src.dtypes[0] != "uint8":
            raise AssessError(f"map {path} is {src.dtypes[0]}; a class map is uint8")
        metres = float(src.crs.linear_units_factor[1])
        a, b, d, e = src.transform.a, src.transform.b, src.transform.d, src.transform.e
        pixel_ha = abs(a * e - b * d) * metres**2 / 10_000.0
        nodata = int(src.nodata) if src.nodata is not None else NODATA
        for _, window in src.block_windows(1):
            counts += np.bincount(src.read(1, window=window).ravel(), minlength=256)
    counts[nodata] = 0
    counts[NODATA] = 0
    return {int(v): int(counts[v]) for v in np.flatnonzero(counts)}, pixel_ha


def _table(classes: ClassTable | None, values: list[int]) -> ClassTable:
    base = classes if classes is not None else ClassTable.from_labels(values)
    extra = [v for v in values if v not in base.values]
    rows = list(base.classes) + [LandCoverClass(value=v, name=str(v), color="#808080") for v in extra]
    return ClassTable(classes=sorted(rows, key=lambda c: c.value))


def assess_map(
    map_path: str | Path,
    points_path: str | Path,
    label_field: str,
    classes_path: str | Path | None = None,
    points_crs: str | None = None,
) -> dict[str, Any]:
    """Area-weighted error matrix, accuracies with standard errors and class areas with 95 % CIs."""
    map_path = Path(map_path)
    if not map_path.exists():
        raise AssessError(f"map {map_path} does not exist")
    pixels, pixel_ha = map_pixel_counts(map_path)
    if not pixels:
        raise AssessError(f"map {map_path} has no classified pixels")
    given = load_class_table(classes_path) if classes_path else None
    points = read_points(points_path, label_field, given, points_crs)
    table = _table(given or points.classes, sorted(set(pixels) | set(points.classes.values)))
    imagery = open_local_imagery(map_path, ["class"], None, 1.0, 0.0)
    samples = sample_points(imagery, points)
    mapped = samples.reflectance[:, 0].astype(np.int64)
    values = table.values
    position = {v: i for i, v in enumerate(values)}
    counts = np.zeros((len(values), len(values)), dtype=np.int64)
    for m, r in zip(mapped, samples.labels, strict=True):
        counts[position[int(m)], position[int(r)]] += 1
    area_px = np.asarray([pixels.get(v, 0) for v in values], dtype=np.float64)
    n_i = counts.sum(axis=1)
    thin = [
        f"{table.by_value(v).name} ({int(n_i[i])})"
        for i, v in enumerate(values)
        if area_px[i] > 0 and n_i[i] < 2
    ]
    if thin:
        raise AssessError(
            f"map classes {', '.join(thin)} have fewer than 2 validation points in {points_path}; "
            "the stratified estimator needs at least 2 per mapped class"
        )
    est = estimate(counts, area_px * pixel_ha)
    per_class = []
    for i, c in enumerate(table.classes):
        per_class.append(
            {
                "value": c.value,
                "name": c.name,
                "map_area_ha": round(float(area_px[i] * pixel_ha), 4),
                "sample_points": int(n_i[i]),
                "users_accuracy": round(float(est.users_accuracy[i]), 6),
                "users_accuracy_se": round(float(est.users_accuracy_se[i]), 6),
                "producers_accuracy": round(float(est.producers_accuracy[i]), 6),
                "producers_accuracy_se": round(float(est.producers_accuracy_se[i]), 6),
                "area_ha": round(float(est.area[i]), 4),
                "area_se_ha": round(float(est.area_se[i]), 4),
                "area_ci95_ha": round(float(est.area_ci95[i]), 4),
            }
        )
    return {
        "method": "Olofsson et al. 2014, stratified by map class",
        "map": map_path.name,
        "points": Path(points_path).name,
        "pixel_area_ha": round(pixel_ha, 8),
        "total_area_ha": round(float(area_px.sum() * pixel_ha), 4),
        "used_points": int(samples.labels.size),
        "dropped": [d.__dict__ for d in samples.dropped],
        "overall_accuracy": round(est.overall_accuracy, 6),
        "overall_accuracy_se": round(est.overall_accuracy_se, 6),
        "classes": per_class,
        "error_matrix": {
            "rows": "map",
            "columns": "reference",
            "labels": values,
            "counts": counts.tolist(),
            "area_proportions": np.round(est.proportions, 6).tolist(),
        },
    }


def render_assessment(result: dict[str, Any]) -> str:
    """A readable text table of an assessment."""
    oa, se = result["overall_accuracy"], result["overall_accuracy_se"]
    lines = [
        f"{result['map']} vs {result['points']}: {result['used_points']} points used, "
        f"{len(result['dropped'])} dropped ({result['method']})",
        f"overall accuracy {100 * oa:.1f} % ± {100 * Z95 * se:.1f} (95 % CI; SE {100 * se:.2f})",
        "",
        f"{'class':<20} {'n':>5} {'user %':>14} {'producer %':>14} {'map ha':>12} "
        f"{'estimated ha (95 % CI)':>28}",
    ]
    for c in result["classes"]:
        lines.append(
            f"{c['value']:>3} {c['name']:<16} {c['sample_points']:>5} "
            f"{100 * c['users_accuracy']:>6.1f} ± {100 * Z95 * c['users_accuracy_se']:>5.1f} "
            f"{100 * c['producers_accuracy']:>6.1f} ± {100 * Z95 * c['producers_accuracy_se']:>5.1f} "
            f"{c['map_area_ha']:>12.1f} {c['area_ha']:>14.1f} ± {c['area_ci95_ha']:>10.1f}"
        )
    lines += ["", "area-weighted error matrix (rows map, columns reference, proportion of area):"]
    labels = result["error_matrix"]["labels"]
    lines.append("      " + " ".join(f"{v:>8}" for v in labels))
    for v, row in zip(labels, result["error_matrix"]["area_proportions"], strict=True):
        lines.append(f"{v:>5} " + " ".join(f"{p:>8.4f}" for p in row))
    for d in result["dropped"]:
        lines.append(f"dropped point {d['index']} (label {d['label']}): {d['reason']}")
    return "\n".join(lines)


def write_assessment(path: Path, result: dict[str, Any]) -> None:
    """The assessment as canonical JSON, written atomically."""
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
