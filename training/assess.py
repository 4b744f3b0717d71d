"""``lulc assess``: a finished map against an independent validation sample, as remote sensing expects.

Without more, the points are taken as stratified by the map's classes (Olofsson et al. 2014; a simple random
sample is then post-stratified). A sample written by ``lulc design`` carries its design in the item beside it
(``<stem>.json``, ``lulc:design``): then the design's strata (each point's ``stratum``) and their sizes are
the weights, and where the assessed map is not the one the sample was designed on (a cleaned version of it)
the strata differ from its classes at some points and Stehman's (2014) estimators apply, which equal
Olofsson's where they do not. A map made by ``lulc clean`` or ``lulc smooth`` names its source run in its
item (``lulc:product`` ``clean`` or ``smooth``, a ``derived_from`` link): the source map is assessed on the
same points too and the change in accuracy is reported, while that run is there and is still the one made
from (its item's id is the derived item's ``lulc:source``; a folder rerun since holds another map), else a
note says why not. Both maps are then estimated on one set of strata, the sample's: the design's, or without
one the source map's classes (a sample can have been stratified by the source map, not by a map made from it
later; a simple random sample can be post-stratified by either), so the derived map's figures are Stehman's
(2014) on the source's strata, and the change is one paired estimator: the stratified mean of each point's
change in correctness, with its standard error from the same per-point changes.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio

from lulc.areas import area_cells
from lulc.classes import NODATA, ClassTable, LandCoverClass, load_class_table, raster_class_table
from lulc.cog import atomic_path
from lulc.gdal_env import gdal_env
from lulc.grid import OutputGrid
from lulc.olofsson import (
    Z95,
    Estimate,
    estimate,
    read_sample_design,
    stratified_estimate,
    stratified_mean,
    thin_strata,
)
from lulc.pixels import REASONS, Status, open_image
from lulc.urls import missing_file
from lulc.vector_layers import geometry_layer
from lulc.writable import check_file_writable
from training.errors import AssessError
from training.imagery import open_local_imagery
from training.points import LabelledPoints, read_points
from training.sampling import DroppedPoint, Samples, sample_points

MAP_NAME = "classes.tif"
"""A run folder's class map (as ``lulc classify`` writes it)."""


@dataclass(frozen=True)
class MapAreas:
    """A class map's pixels and true ground areas per class value (nodata excluded)."""

    pixels: dict[int, int]
    hectares: dict[int, float]
    pixel_ha: float
    """The map's mean true pixel area (hectares)."""


def map_areas(path: Path) -> MapAreas:
    """Pixels and true (geodesic) hectares per class value, read block by block.

    Hectares are pixels x the mean true pixel area, or each pixel's own where pixel areas vary over the
    map (``lulc.areas``), as ``stats.json`` has them; not the CRS's nominal pixel area (in Web Mercator at
    60 N that is 4x the ground).

    Raises:
        AssessError: the file is no raster GDAL reads, not in a projected CRS, or not uint8.
    """
    counts = np.zeros(256, dtype=np.int64)
    area_m2 = np.zeros(256, dtype=np.float64)
    try:
        with gdal_env(), open_image(path) as src:  # no NotGeoreferencedWarning before our line
            if src.crs is None or not src.crs.is_projected:
                raise AssessError(f"map {path} must be in a projected CRS to measure areas (it is {src.crs})")
            if src.dtypes[0] != "uint8":
                raise AssessError(f"map {path} is {src.dtypes[0]}; a class map is uint8")
            crs = src.crs.to_string()
            grid = OutputGrid(crs, src.transform, src.width, src.height)
            cells = area_cells(crs, src.transform, src.width, src.height)
            nodata = int(src.nodata) if src.nodata is not None else NODATA
            for _, window in src.block_windows(1):
                block = src.read(1, window=window)
                counts += np.bincount(block.ravel(), minlength=256)
                if cells is not None:
                    area_m2 += cells.sum_by_value(block, int(window.row_off), int(window.col_off))
    except rasterio.errors.RasterioIOError as exc:
        raise AssessError(f"map {path} cannot be read as a raster: {exc}") from exc
    pixel_m2 = grid.pixel_area_m2()
    values = [int(v) for v in np.flatnonzero(counts) if v not in (nodata, NODATA)]
    hectares = {
        v: float(area_m2[v] if cells is not None else counts[v] * pixel_m2) / 10_000.0 for v in values
    }
    return MapAreas({v: int(counts[v]) for v in values}, hectares, pixel_m2 / 10_000.0)


def _map_table(map_path: Path) -> ClassTable | None:
    """The class table the map names in its band tags (None for a map that names none)."""
    import rasterio

    with rasterio.open(map_path) as src:
        return raster_class_table(src, str(map_path))


def _check_same_classes(given: ClassTable, own: ClassTable, classes_path: Path, map_path: Path) -> None:
    """Refuse a ``--classes`` table naming a class of the map otherwise than the map's band tags do.

    Products review: a table with Water and Forest swapped matched text labels to the wrong values, 53.7 %
    accuracy, exit 0.
    """
    for value in sorted(set(given.values) & set(own.values)):
        mine, theirs = given.by_value(value).name, own.by_value(value).name
        if mine.strip().lower() != theirs.strip().lower():
            raise AssessError(
                f"--classes {classes_path} names class {value} {mine!r}, and map {map_path} {theirs!r} (its "
                "band tags): give the map's own table, or leave --classes out"
            )


def _table(classes: ClassTable | None, values: list[int]) -> ClassTable:
    base = classes if classes is not None else ClassTable.from_labels(values)
    extra = [v for v in values if v not in base.values]
    rows = list(base.classes) + [LandCoverClass(value=v, name=str(v), color="#808080") for v in extra]
    return ClassTable(classes=sorted(rows, key=lambda c: c.value))


def read_design(points_path: str | Path) -> dict[str, Any] | None:
    """The map design of a ``lulc design`` sample (``lulc.olofsson.read_sample_design``), else None."""
    design = read_sample_design(points_path)
    if design is not None and design.get("kind", "classes") != "classes":
        raise AssessError(
            f"{points_path} was designed on a change map's strata: use it with `lulc change --points`"
        )
    return design


def _point_strata(points_path: Path, design: dict[str, Any], index: npt.NDArray[np.int64]) -> list[int]:
    import pyogrio.raw

    field = str(design.get("stratum_field", "stratum"))
    layer = geometry_layer(points_path, "points file", "the labelled points' layer", AssessError)  # as read
    try:
        meta, _, _, data = pyogrio.raw.read(points_path, layer=layer, columns=[field], read_geometry=False)
    except Exception as exc:  # pyogrio raises several error types
        raise AssessError(f"cannot read the {field!r} column of {points_path}: {exc}") from exc
    if field not in list(meta["fields"]):
        raise AssessError(f"{points_path} has a design but no {field!r} column (the stratum of each point)")
    column = np.asarray(data[0])
    return [int(column[i]) for i in index]


def _design_estimate(
    points_path: Path,
    design: dict[str, Any],
    index: npt.NDArray[np.int64],
    mapped: npt.NDArray[np.int64],
    reference: npt.NDArray[np.int64],
    values: list[int],
    pixel_ha: float,
    dropped: str = "",
) -> tuple[Estimate, dict[str, Any], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    position = {v: i for i, v in enumerate(values)}
    sizes = np.zeros(len(values))
    # the strata are the design's map's: their true areas (review: a Web Mercator map's mean pixel area
    # overstated its northern classes), whatever the assessed map's grid; a design of before: pixels x mean
    stratum_ha = float(design.get("pixel_area_m2", pixel_ha * 10_000.0)) / 10_000.0
    for stratum in design["strata"]:
        value = int(stratum["value"])
        if value not in position:
            raise AssessError(f"the design's stratum {value} is not a class of the map or the labels")
        sizes[position[value]] = float(stratum.get("hectares", float(stratum["pixels"]) * stratum_ha))
    strata = _point_strata(points_path, design, index)
    unknown = sorted({s for s in strata if s not in position or sizes[position[s]] == 0})
    if unknown:
        raise AssessError(f"points of {points_path} lie in strata {unknown} that the design does not list")
    h = np.array([position[s] for s in strata], dtype=np.int64)
    n_h = np.bincount(h, minlength=len(values))
    pixels = {int(stratum["value"]): int(stratum["pixels"]) for stratum in design["strata"]}
    units = [pixels.get(v, 0) if sizes[i] > 0 else 0 for i, v in enumerate(values)]
    thin = [f"{values[i]} ({int(n_h[i])})" for i in thin_strata(n_h, units)]
    if thin:
        raise AssessError(
            f"the design's strata {', '.join(thin)} have fewer than 2 labelled points in {points_path}"
            f"{dropped}"
        )
    m = np.array([position[int(v)] for v in mapped], dtype=np.int64)
    r = np.array([position[int(v)] for v in reference], dtype=np.int64)
    differ = int((h != m).sum())
    summary = {
        "strata": [
            {"value": values[i], "pixels": pixels.get(values[i], 0), "points": int(n_h[i])}
            for i in range(len(values))
            if sizes[i] > 0
        ],
        "target_overall_accuracy_se": design.get("target_overall_accuracy_se"),
        "points_where_map_class_is_not_stratum": differ,
    }
    return stratified_estimate(h, m, r, sizes), summary, h, sizes


@dataclass(frozen=True)
class _PointOutcome:
    """Per used point: its index in the file, whether the map is right, its stratum; the strata sizes.

    Strata are positions into ``values``, the class values of the assessment's table (a stratum of the
    design or of the map's classes has a class value), ``sizes`` their hectares in the same order.
    """

    index: npt.NDArray[np.int64]
    correct: npt.NDArray[np.float64]
    strata: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.float64]
    values: tuple[int, ...]


def assess_map(
    map_path: str | Path,
    points_path: str | Path,
    label_field: str,
    classes_path: str | Path | None = None,
    points_crs: str | None = None,
    compare_source: bool = True,
) -> dict[str, Any]:
    """Area-weighted error matrix, accuracies with standard errors and class areas with 95 % CIs.

    ``map_path`` is a class map, or a run folder (its ``classes.tif``). With a ``lulc design`` sample the
    design's strata weight the estimates; for a map made by ``lulc clean`` or ``lulc smooth`` (and
    ``compare_source``) the source
    map is assessed on the same points first, the cleaned map on the same strata as the source (the design's,
    else the source map's classes), and ``source`` and ``accuracy_change`` are added. Where the source run is
    gone, or its folder now holds another run than the one cleaned (its item id is not the cleaned item's
    ``lulc:source``), nothing is compared and ``source_not_compared`` says why. Without ``compare_source`` a
    cleaned map is assessed as any map.
    """
    map_file = map_of(Path(map_path))
    source = made_from(map_file) if compare_source else None
    if source is None or source.path is None:
        result = _assess(map_file, Path(points_path), label_field, classes_path, points_crs)[0]
        if source is not None:
            result["source_not_compared"] = source.skipped
            result["source_made"] = source.made
        return result
    before, before_outcome = _assess(source.path, Path(points_path), label_field, classes_path, points_crs)
    result, outcome = _assess(
        map_file, Path(points_path), label_field, classes_path, points_crs, before_outcome
    )
    result["source"] = {
        "map": str(source.path),
        "made": source.made,
        "overall_accuracy": before["overall_accuracy"],
        "overall_accuracy_se": before["overall_accuracy_se"],
        "method": before["method"],
    }
    result["accuracy_change"] = accuracy_change(result, before, outcome, before_outcome)
    return result


def map_of(path: Path) -> Path:
    """The class map to assess: ``path`` itself, or a run folder's ``classes.tif`` (as the products take).

    Raises:
        AssessError: ``path`` is a folder without a ``classes.tif``.
    """
    if not path.is_dir():
        return path
    if not (path / MAP_NAME).is_file():
        raise AssessError(
            f"{path} is a folder without {MAP_NAME}: give a class map or a `lulc classify` output folder"
        )
    return path / MAP_NAME


@dataclass(frozen=True)
class SourceMap:
    """The map a cleaned or smoothed map was made from, or (``path`` None) why they cannot be compared."""

    path: Path | None
    skipped: str | None = None
    made: str = "cleaned"
    """How the map was made from it: ``cleaned`` or ``smoothed`` (``DERIVED_MAPS``)."""


DERIVED_MAPS = {"clean": "cleaned", "smooth": "smoothed"}
"""The products that are maps of their source's pixels (``lulc:product``), and how each was made from it."""


def made_from(map_path: Path) -> SourceMap | None:
    """The source of a ``lulc clean`` or ``smooth`` map (its item's ``derived_from`` link), else None.

    The source run must still be there and be the run that was cleaned: its item's id is the cleaned item's
    ``lulc:source`` (a folder rerun since, with other inputs, holds another item; its map is not the source).
    Otherwise ``skipped`` says, in one line, why the maps are not compared.
    """
    item_path = map_path.parent / "item.json"
    try:
        item = json.loads(item_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    product = item.get("properties", {}).get("lulc:product") if isinstance(item, dict) else None
    if product not in DERIVED_MAPS:
        return None
    made = DERIVED_MAPS[product]
    link = next((k for k in item.get("links", []) if k.get("rel") == "derived_from"), None)
    if link is None:
        return SourceMap(None, f"{item_path} names no source run (no derived_from link)", made)
    source_item = (item_path.parent / str(link["href"])).resolve()
    try:
        source = json.loads(source_item.read_text(encoding="utf-8"))
        href = str(source["assets"]["classes"]["href"])
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        if isinstance(exc, FileNotFoundError):
            return SourceMap(None, f"the run {source_item.parent} is gone (no {source_item.name})", made)
        return SourceMap(None, f"the run's item {source_item} cannot be read ({exc})", made)
    expected = item.get("properties", {}).get("lulc:source")
    found = str(source.get("id", source_item.parent.name))  # lulc:source is the id, else the folder's name
    if expected is not None and found != str(expected):
        return SourceMap(
            None,
            f"{source_item.parent} now holds run {found}, not {expected} (rerun since it was {made}?)",
            made,
        )
    path = (source_item.parent / href).resolve()
    if not path.is_file():
        return SourceMap(None, f"the source map {path} is gone", made)
    return SourceMap(path, made=made)


def accuracy_change(
    after: dict[str, Any], before: dict[str, Any], after_points: _PointOutcome, before_points: _PointOutcome
) -> dict[str, Any]:
    """The cleaned map's accuracy minus its source's, overall (with a paired standard error) and by class.

    The change and its standard error are one estimator's: the stratified mean of each point's difference in
    correctness (1, 0 or -1), stratified as the source's assessment is (the design's strata, or the source
    map's classes), on which ``after`` is assessed too, so it is also the difference of the two overall
    accuracies. Where no point changed it is exactly 0, with a 0 standard error: the sample saw no change.
    It used to be the difference of two estimates, each weighted by its own map's class areas: cleaning moves
    area between classes, so the weights moved although no point did (-0.36 points on the tutorial map),
    while the standard error, of the per-point changes alone, was 0.
    """
    common, a_at, b_at = np.intersect1d(after_points.index, before_points.index, return_indices=True)
    difference = after_points.correct[a_at] - before_points.correct[b_at]
    change, se = stratified_mean(difference, before_points.strata[b_at], before_points.sizes)
    by_value = {c["value"]: c for c in before["classes"]}
    return {
        "overall_accuracy": round(change, 6),
        "overall_accuracy_se": round(se, 6),
        "points_compared": int(common.size),
        "points_changed_to_right": int((difference > 0).sum()),
        "points_changed_to_wrong": int((difference < 0).sum()),
        "classes": [
            {
                "value": c["value"],
                "name": c["name"],
                "users_accuracy": _minus(c["users_accuracy"], by_value[c["value"]]["users_accuracy"]),
                "producers_accuracy": _minus(
                    c["producers_accuracy"], by_value[c["value"]]["producers_accuracy"]
                ),
                "map_area_ha": round(c["map_area_ha"] - by_value[c["value"]]["map_area_ha"], 4),
            }
            for c in after["classes"]
            if c["value"] in by_value
        ],
    }


def _assess(
    map_path: Path,
    points_path: Path,
    label_field: str,
    classes_path: str | Path | None,
    points_crs: str | None,
    source: _PointOutcome | None = None,
) -> tuple[dict[str, Any], _PointOutcome]:
    """The assessment of one map, and per point its outcome (for a paired comparison with another map).

    ``source`` is the outcome of the assessment of the map this one was cleaned from: without a design its
    classes at the points and their areas are the strata (Stehman 2014), as they are for the source's own
    assessment, so both maps are estimated on one stratification.
    """
    if not map_path.exists():
        raise AssessError(missing_file("map", map_path))
    areas = map_areas(map_path)
    pixels, pixel_ha = areas.pixels, areas.pixel_ha
    if not pixels:
        raise AssessError(f"map {map_path} has no classified pixels")
    design = read_design(points_path)
    on_source = source if design is None else None  # a design's strata are the sample's own: they govern
    # the map's own class table unless --classes gives one: text labels are names of the map's classes
    own = _map_table(map_path)
    given = load_class_table(classes_path) if classes_path else own
    if classes_path and given is not None and own is not None:
        _check_same_classes(given, own, Path(classes_path), map_path)
    points = read_points(points_path, label_field, given, points_crs)
    if points.groups is not None or points.polygons:  # a polygon or MultiPoint is no one sample unit
        raise AssessError(
            f"validation points {points_path} must be single Points, one reference sample each: it holds "
            "Polygon or MultiPoint features (a sample `lulc design` draws is points)"
        )
    strata_values = [int(s["value"]) for s in design["strata"]] if design else []
    if on_source is not None:
        strata_values = [v for v, size in zip(on_source.values, on_source.sizes, strict=True) if size > 0]
    table = _table(
        given or points.classes, sorted(set(pixels) | set(points.classes.values) | set(strata_values))
    )
    imagery = open_local_imagery(map_path, ["class"], None, 1.0, 0.0)
    samples = sample_points(imagery, points)
    dropped = ""
    if samples.dropped:  # said in every refusal below: the counts alone hid that the points lay elsewhere
        reasons = Counter(d.reason for d in samples.dropped)
        summary = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        dropped = f" ({len(samples.dropped)} of {len(points)} points dropped: {summary})"
        if samples.labels.size == 0:
            raise AssessError(f"no validation point of {points_path} is usable on the map{dropped}")
        outside = sum(d.reason == REASONS[Status.OUTSIDE] for d in samples.dropped)
        if design is not None and outside:  # products review: estimates for the design's extent, exit 0
            raise AssessError(
                f"{outside} of the {len(points)} points of the sample design {points_path} lie outside map "
                f"{map_path}: a design's estimates are of its own map's extent (its strata's areas); assess "
                "that map, or one on its grid"
            )
    if on_source is not None:
        samples = _on_source_strata(samples, points, on_source)
    mapped = samples.reflectance[:, 0].astype(np.int64)
    values = table.values
    position = {v: i for i, v in enumerate(values)}
    counts = np.zeros((len(values), len(values)), dtype=np.int64)
    for m, r in zip(mapped, samples.labels, strict=True):
        counts[position[int(m)], position[int(r)]] += 1
    area_px = np.asarray([pixels.get(v, 0) for v in values], dtype=np.float64)
    area_ha = np.asarray([areas.hectares.get(v, 0.0) for v in values], dtype=np.float64)
    n_i = counts.sum(axis=1)
    design_summary: dict[str, Any] | None = None
    if design is not None:
        est, design_summary, strata, sizes = _design_estimate(
            points_path, design, samples.index, mapped, samples.labels, values, pixel_ha, dropped
        )
        method = "Olofsson et al. 2014, stratified by the sample design's strata"
        if design_summary["points_where_map_class_is_not_stratum"]:
            method += " (the map differs from the design's map: Stehman 2014 estimators)"
    elif on_source is not None:
        strata, sizes = _source_strata(on_source, samples.index, values)
        est = stratified_estimate(
            strata,
            np.array([position[int(v)] for v in mapped], dtype=np.int64),
            np.array([position[int(v)] for v in samples.labels], dtype=np.int64),
            sizes,
        )
        method = "Stehman 2014, stratified by the classes of the map it was cleaned from"
    else:
        thin = [f"{table.by_value(values[i]).name} ({int(n_i[i])})" for i in thin_strata(n_i, area_px)]
        if thin:
            raise AssessError(
                f"map classes {', '.join(thin)} have fewer than 2 validation points in {points_path}"
                f"{dropped}; the stratified estimator needs at least 2 per mapped class"
            )
        est = estimate(counts, area_ha)
        method = "Olofsson et al. 2014, stratified by map class"
        strata, sizes = np.array([position[int(m)] for m in mapped], dtype=np.int64), area_ha
    correct = (mapped == samples.labels).astype(np.float64)
    per_class = []
    for i, c in enumerate(table.classes):
        per_class.append(
            {
                "value": c.value,
                "name": c.name,
                "map_area_ha": round(float(area_ha[i]), 4),
                "sample_points": int(n_i[i]),
                "users_accuracy": _defined(est.users_accuracy[i]),
                "users_accuracy_se": _defined(est.users_accuracy_se[i]),
                "producers_accuracy": _defined(est.producers_accuracy[i]),
                "producers_accuracy_se": _defined(est.producers_accuracy_se[i]),
                "area_ha": round(float(est.area[i]), 4),
                "area_se_ha": round(float(est.area_se[i]), 4),
                "area_ci95_ha": round(float(est.area_ci95[i]), 4),
            }
        )
    result: dict[str, Any] = {
        "method": method,
        "map": map_path.name,
        "points": points_path.name,
        "pixel_area_ha": round(pixel_ha, 8),
        "total_area_ha": round(float(area_ha.sum()), 4),
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
    if design_summary is not None:
        result["design"] = design_summary
    return result, _PointOutcome(samples.index, correct, strata, sizes, tuple(values))


def _on_source_strata(samples: Samples, points: LabelledPoints, source: _PointOutcome) -> Samples:
    """The samples at points the source's assessment used; any other has no stratum and is dropped.

    ``lulc clean`` keeps the grid and the nodata, so the two maps use the same points; a point on this map
    but not on its source lies outside the population the source's strata cover.
    """
    keep = np.isin(samples.index, source.index)
    if keep.all():
        return samples
    outside = [
        DroppedPoint(
            int(i),
            int(points.labels[i]),
            float(points.x[i]),
            float(points.y[i]),
            "nodata in the source map (no stratum)",
        )
        for i in samples.index[~keep]
    ]
    return replace(
        samples,
        reflectance=samples.reflectance[keep],
        labels=samples.labels[keep],
        index=samples.index[keep],
        x=samples.x[keep],
        y=samples.y[keep],
        dropped=sorted([*samples.dropped, *outside], key=lambda d: d.index),
    )


def _source_strata(
    source: _PointOutcome, index: npt.NDArray[np.int64], values: list[int]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Each point's stratum in the source's assessment and the strata's hectares, as positions in ``values``.

    The sizes are the source map's class areas: the strata are its pixels, whatever this map's classes.
    """
    position = {v: i for i, v in enumerate(values)}
    stratum_of = dict(zip(source.index.tolist(), (source.values[h] for h in source.strata), strict=True))
    strata = np.array([position[stratum_of[int(i)]] for i in index], dtype=np.int64)
    sizes = np.zeros(len(values))
    for v, size in zip(source.values, source.sizes, strict=True):
        if size > 0:
            sizes[position[v]] = size
    return strata, sizes


def _defined(value: float) -> float | None:
    """``value`` rounded for the JSON, or None (null) where the estimator leaves it undefined (NaN)."""
    return None if math.isnan(value) else round(float(value), 6)


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 6)


def _change(value: float | None) -> str:
    """A change in accuracy in points, ``+1.25``, or ``n/a`` where either side is undefined."""
    return f"{'n/a':>6}" if value is None else f"{100 * value:+6.2f}"


def _accuracy(value: float | None, se: float | None) -> str:
    """``  93.1 ±   2.0`` (percent, 95 % CI), or ``n/a`` in the same width where undefined."""
    if value is None or se is None:
        return f"{'n/a':>14}"
    return f"{100 * value:>6.1f} ± {100 * Z95 * se:>5.1f}"


def render_assessment(result: dict[str, Any]) -> str:
    """A readable text table of an assessment."""
    oa, se = result["overall_accuracy"], result["overall_accuracy_se"]
    lines = [
        f"{result['map']} vs {result['points']}: {result['used_points']} points used, "
        f"{len(result['dropped'])} dropped ({result['method']})",
        f"overall accuracy {100 * oa:.1f} % ± {100 * Z95 * se:.1f} (95 % CI; SE {100 * se:.2f})",
        *(
            [
                "every stratum's points are all right or all wrong: its variance reads as 0, which the "
                "sample cannot tell from a precise estimate (a ± 0 is no precision; more points are)"
            ]
            if se == 0
            else []
        ),
        "",
        f"{'class':<20} {'n':>5} {'user %':>14} {'producer %':>14} {'map ha':>12} "
        f"{'estimated ha (95 % CI)':>28}",
    ]
    for c in result["classes"]:
        lines.append(
            f"{c['value']:>3} {c['name']:<16} {c['sample_points']:>5} "
            f"{_accuracy(c['users_accuracy'], c['users_accuracy_se'])} "
            f"{_accuracy(c['producers_accuracy'], c['producers_accuracy_se'])} "
            f"{c['map_area_ha']:>12.1f} {c['area_ha']:>14.1f} ± {c['area_ci95_ha']:>10.1f}"
        )
    lines += ["", "area-weighted error matrix (rows map, columns reference, proportion of area):"]
    labels = result["error_matrix"]["labels"]
    lines.append("      " + " ".join(f"{v:>8}" for v in labels))
    for v, row in zip(labels, result["error_matrix"]["area_proportions"], strict=True):
        lines.append(f"{v:>5} " + " ".join(f"{p:>8.4f}" for p in row))
    for d in result["dropped"]:
        lines.append(f"dropped point {d['index']} (label {d['label']}): {d['reason']}")
    if "design" in result:
        design = result["design"]
        lines.append(
            f"sample design: {len(design['strata'])} strata, "
            f"target SE {design['target_overall_accuracy_se']}; "
            f"map class differs from the stratum at {design['points_where_map_class_is_not_stratum']} points"
        )
    if "source_not_compared" in result:
        made = result.get("source_made", "cleaned")
        lines += ["", f"not compared with the map it was {made} from: {result['source_not_compared']}"]
    if "accuracy_change" in result:
        change, source = result["accuracy_change"], result["source"]
        lines += [
            "",
            f"{source.get('made', 'cleaned')} from {source['map']}: "
            f"overall accuracy {100 * source['overall_accuracy']:.1f} % there, "
            f"{100 * result['overall_accuracy']:.1f} % here: {100 * change['overall_accuracy']:+.2f} points "
            f"± {100 * Z95 * change['overall_accuracy_se']:.2f} (95 % CI, paired; "
            f"{change['points_changed_to_right']} points became right, "
            f"{change['points_changed_to_wrong']} wrong)",
        ]
        if change["points_changed_to_right"] == change["points_changed_to_wrong"] == 0:
            lines.append(
                "no validation point became right or wrong: the sample cannot measure this change "
                "(its ± 0 is no precision)"
            )
        for c in change["classes"]:
            lines.append(
                f"{c['value']:>3} {c['name']:<16} user {_change(c['users_accuracy'])} "
                f"producer {_change(c['producers_accuracy'])} points, map {c['map_area_ha']:+10.2f} ha"
            )
    return "\n".join(lines)


def check_assessment_out(path: Path, inputs: Sequence[Path] = ()) -> None:
    """Refuse, before any work, an ``--out`` that is a folder, one of ``inputs`` or another file.

    The assessment is one JSON file: an earlier assessment there is replaced, anything else is kept
    (review: ``--out`` naming the points being assessed replaced them with the JSON).

    Raises:
        AssessError: ``path`` is an existing folder, an input, or a file that is no earlier assessment.
    """
    if path.is_dir():
        raise AssessError(f"--out {path} is a folder: give the JSON file to write (e.g. {path}/assess.json)")
    check_file_writable(path, f"--out {path}", AssessError)
    if not path.exists():
        return
    if any(path.resolve() == p.resolve() for p in inputs):
        raise AssessError(f"--out {path} is an input of the assessment: give a new file, e.g. assess.json")
    if not _is_assessment(path):
        raise AssessError(
            f"--out {path} exists and is not an earlier assessment; it is kept: give a new file, e.g. "
            "assess.json"
        )


def _is_assessment(path: Path) -> bool:
    """Whether ``path`` holds an assessment this command wrote (JSON with its method and error matrix)."""
    try:
        with path.open("rb") as f:
            data = json.loads(f.read(64 * 2**20))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"method", "overall_accuracy", "error_matrix"} <= data.keys()


def write_assessment(path: Path, result: dict[str, Any], inputs: Sequence[Path] = ()) -> None:
    """The assessment as canonical JSON, written atomically."""
    check_assessment_out(path, inputs)
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
