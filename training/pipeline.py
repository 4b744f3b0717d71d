"""``lulc train`` end to end: points + imagery -> samples -> models -> accuracy -> ONNX -> model directory."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely.geometry
from pyproj import CRS, Proj, Transformer

from lulc.class_sets import map_holds, no_map
from lulc.classes import ClassTable, load_class_table
from lulc.contract import Applicability, Features, Inputs, ModelContract, Outputs, Provenance
from lulc.features import composite_feature_names, compute_composite_features
from lulc.grid import utm_crs
from lulc.pixels import REASONS, Status
from lulc.progress import NullProgress, Progress
from training import export, gate
from training.aoa import DI_OUTPUT, add_dissimilarity_output
from training.config import TrainingConfig
from training.conformal import minimum_samples
from training.errors import ConfigError, PointsError
from training.evaluate import (
    Grouping,
    Split,
    check_class_counts,
    cross_validate,
    decided_labels,
    enough_points_per_class,
    grouping,
    holdout_split,
    permutation_importance,
    repeated_splits,
    score,
    spatial_blocks,
    spatial_splits,
)
from training.imagery import IMAGE_EXTENT, Extent, Imagery, check_reflectance, open_local_imagery
from training.models import DESCRIPTIONS, classes_of, make_estimator, quiet_estimators
from training.outputs import check_model_out, write_model_dir
from training.points import LabelledPoints, read_points
from training.sampling import Samples, sample_pixels, sample_polygons
from training.settings import TrainingSettings
from training.trust import SpatialBlocks, Trust, fit_trust
from training.tuning import tune


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    out: Path
    contract: ModelContract
    metrics: dict[str, Any]


def open_imagery(config: TrainingConfig, settings: TrainingSettings) -> Imagery:
    """The imagery the recipe names: a local raster, or a STAC composite on the model's grid."""
    if config.image is not None:
        return open_local_imagery(
            config.image,
            config.bands,
            config.image_bands,
            config.scale,
            config.offset,
            datetime=config.datetime,
        )
    from training.composite import open_stac_imagery

    return open_stac_imagery(config, settings)


def sample_features(
    imagery: Imagery, config: TrainingConfig, reflectance: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """The model's input features ``(n, n_features)`` of sampled reflectance ``(n, composites x n_bands)``."""
    features = compute_composite_features(reflectance.T, imagery.bands, config.indices, imagery.composites)
    return features.reshape(len(reflectance), -1)


def contract_inputs(imagery: Imagery, config: TrainingConfig) -> Inputs:
    """What the model's contract tells the classifier to read: bands, grid resolution, scaling, composite."""
    mask_scl = imagery.mask_scl
    return Inputs(
        bands=imagery.bands,
        resolution=round(imagery.grid.resolution[0], 6),
        radiometry=imagery.radiometry,
        composite=config.composite,
        seasons=config.seasons,
        **({"mask_scl": mask_scl} if mask_scl is not None else {}),
        # the item selection, for STAC imagery (a local image is what it is)
        **({"max_cloud_cover": config.max_cloud_cover, "max_items": config.max_items} if config.stac else {}),
    )


def _software(model_type: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = ["lulc-stac", "scikit-learn", "skl2onnx", "onnx", "numpy"]
    if model_type == "lgbm":
        names += ["lightgbm", "onnxmltools"]
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def _note_dropped(
    samples: Samples,
    total: int,
    progress: Progress,
    shown: int = 20,
    *,
    points: LabelledPoints | None = None,
    imagery: Imagery | None = None,
) -> None:
    """Say which points were dropped and why; refuse them if they all (or a class's) lie outside the imagery.

    Training stops right after (``_refuse_lost_classes``, ``check_class_counts``) when a class of the file
    has no usable sample or too few points are left: if every point, or every point of a class, lies
    outside the imagery, the error says so and, given ``points`` and ``imagery``, where each of them lies.
    Only when training goes on are the dropped points said to be listed in metrics.json and report.md
    (written with the model).
    """
    if not samples.dropped:
        return
    extent = imagery.extent if imagery is not None else IMAGE_EXTENT
    lost = bool(_lost_classes(samples, points, extent)) if points is not None else False
    goes_on = enough_points_per_class(samples.labels) and not lost
    if not goes_on:  # points off the imagery: one line says so, not a list of them first (CLI review)
        _refuse_outside(samples, points, imagery)
    reasons = Counter(d.reason for d in samples.dropped)
    summary = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    # a file of polygons (or MultiPoints) gives several samples a feature: name the feature (its row)
    by_feature = points is not None and points.groups is not None
    units, unit = ("samples", "sample of feature") if by_feature else ("points", "point")
    progress.note(f"{len(samples.dropped)} of {total} {units} dropped: {summary}")
    for d in samples.dropped[:shown]:
        progress.note(f"  dropped {unit} {d.index} (label {d.label}) at ({d.x:.6f}, {d.y:.6f}): {d.reason}")
    if len(samples.dropped) > shown:
        listed = (
            " (all are listed in metrics.json and report.md once the model is written)" if goes_on else ""
        )
        progress.note(f"  ... and {len(samples.dropped) - shown} more{listed}")


def _refuse_outside(samples: Samples, points: LabelledPoints | None, imagery: Imagery | None) -> None:
    """Raise PointsError if every point, or every point of some class, was dropped as outside the imagery."""
    outside = Counter(d.label for d in samples.dropped if d.reason == REASONS[Status.OUTSIDE])
    extent = imagery.extent if imagery is not None else IMAGE_EXTENT
    every = Counter(int(v) for v in samples.labels) + Counter(d.label for d in samples.dropped)
    lost = sorted(v for v, n in outside.items() if n == every[v])
    if not lost:
        return

    def name(value: int) -> str:
        return points.classes.by_value(value).name if points is not None else str(value)

    of = f" of {points.source}" if points is not None else ""
    if sum(outside.values()) == sum(every.values()):
        what = f"all {sum(every.values())} points{of} lie outside {extent.name}"
    else:
        lost_text = ", ".join(f"{name(v)} ({every[v]})" for v in lost)
        kept = sorted(Counter(int(v) for v in samples.labels).items())
        usable = ", ".join(f"{name(v)} ({n})" for v, n in kept) or "no class"
        what = (
            f"every point of class(es) {lost_text}{of} lies outside {extent.name}, leaving usable points "
            f"of {usable}"
        )
    where = ""
    if points is not None and imagery is not None:
        lon, lat = points.xy_in(CRS.from_epsg(4326))
        members = np.isin(points.labels, lost)
        # a CRS in degrees given to metres: huge "lon/lat" out of range (CLI review: lon 15602384.9)
        chosen = members & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
        auth = points.crs.to_authority()
        crs = f"{points.crs.name} ({':'.join(auth)})" if auth else points.crs.name
        if chosen.any():
            at = _lonlat_extent(lon[chosen].min(), lat[chosen].min(), lon[chosen].max(), lat[chosen].max())
        else:  # beyond the area the CRS is defined on
            x, y = points.x[members], points.y[members]
            at = f"x {x.min():.6g} to {x.max():.6g}, y {y.min():.6g} to {y.max():.6g} (no lon/lat there)"
        image_at = _lonlat_extent(*imagery.grid.bounds_wgs84())
        where = f": read in {crs} they lie at {at}, {extent.name} at {image_at}"
    raise PointsError(
        f"{what}{where}: if the points are in another CRS, give it with --points-crs (or fix the file's); "
        f"else {extent.remedy}"
    )


def _lost_classes(samples: Samples, points: LabelledPoints, extent: Extent = IMAGE_EXTENT) -> dict[int, str]:
    """The classes the file has features of but that gave no usable sample, each with why.

    A model trained on the rest would leave such a class out, and map its land as other classes.
    """
    usable = set(np.unique(samples.labels).tolist())
    labels = points.file_labels
    sampled = set(points.groups.tolist()) if points.groups is not None else None
    lost: dict[int, str] = {}
    for value in (int(v) for v in np.unique(labels)):
        if value in usable:
            continue
        rows = np.flatnonzero(labels == value)
        reasons = Counter(d.reason for d in samples.dropped if d.label == value)
        dropped = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        if sampled is None:  # a file of points: one sample each
            lost[value] = f"{_count(rows.size, 'point')}, all dropped: {dropped}"
            continue
        why = [_count(rows.size, "feature")]
        beyond = sum(1 for row in rows.tolist() if row not in sampled)
        if beyond:
            why.append(f"{_count(beyond, 'polygon')} outside {extent.name}")
        if reasons:
            why.append(f"{_count(sum(reasons.values()), 'sample')} dropped: {dropped}")
        lost[value] = "; ".join(why)
    return lost


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _refuse_lost_classes(samples: Samples, points: LabelledPoints, extent: Extent = IMAGE_EXTENT) -> None:
    """Raise PointsError naming each class of the file with no usable sample, and why.

    As a class of one usable point is refused (``check_class_counts``): such a class was left out of the
    model silently. When no sample at all is usable, ``check_class_counts`` says so instead.
    """
    lost = _lost_classes(samples, points, extent)
    if not lost or samples.labels.size == 0:
        return
    items = ", ".join(f"{points.classes.by_value(v).name} ({why})" for v, why in lost.items())
    raise PointsError(
        f"class(es) {items} in {points.source} have no usable point, so the model would leave them out "
        "and map their land as other classes: add points where the imagery has valid pixels, or drop the "
        "class from the points file"
    )


def _lonlat_extent(west: float, south: float, east: float, north: float) -> str:
    return f"lon {west:.4f} to {east:.4f}, lat {south:.4f} to {north:.4f}"


def _used_classes(
    table: ClassTable, labels: npt.NDArray[np.int64], source: str, progress: Progress
) -> tuple[ClassTable, list[dict[str, Any]]]:
    """The classes of the model, and those of the class table left out, with why (for metrics and report).

    Only classes with no point in the file are left out: one whose points gave no usable sample is refused
    (``_refuse_lost_classes``).
    """
    present = set(int(v) for v in np.unique(labels))
    why = f"no point in {Path(source).name}"
    left_out = [
        {"value": c.value, "name": c.name, "reason": why} for c in table.classes if c.value not in present
    ]
    if left_out:
        names = [c["name"] for c in left_out]
        progress.note(f"classes of the class table with {why} are left out of the model: {names}")
    return ClassTable(classes=[c for c in table.classes if c.value in present]), left_out


MAX_SCALE_ERROR = 0.01
"""A projected CRS whose scale at the samples' centre is off by more than this is not taken as ground metres
(UTM is within 0.1 %, Mercator off by 24 % at 36 N)."""


def metric_xy(
    crs: str, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Sample positions in ground metres: as given in a true-to-scale metre CRS, else in their UTM zone.

    A metre CRS is true to scale when its scale at the samples' centre is within ``MAX_SCALE_ERROR`` (UTM).

    Spatial blocks are given in metres: in an EPSG:4326 image's degrees a 200 m block held every point, and
    in World Mercator's (the tutorial's image) metres at 36 N a 500 m block was 404 m on the ground.
    """
    parsed = CRS.from_user_input(crs)
    to_lonlat = Transformer.from_crs(parsed, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(x, y)
    centre = shapely.geometry.Point(float(np.mean(lon)), float(np.mean(lat)))
    if parsed.is_projected and parsed.axis_info[0].unit_conversion_factor == 1.0:
        factors = Proj(parsed).get_factors(centre.x, centre.y)
        scale = max(abs(factors.meridional_scale - 1.0), abs(factors.parallel_scale - 1.0))
        if scale <= MAX_SCALE_ERROR:
            return x, y
    to_metres = Transformer.from_crs("EPSG:4326", utm_crs(centre), always_xy=True)
    mx, my = to_metres.transform(lon, lat)
    return np.asarray(mx, dtype=np.float64), np.asarray(my, dtype=np.float64)


def _evaluate_models(
    config: TrainingConfig,
    settings: TrainingSettings,
    features: npt.NDArray[np.float32],
    samples: Samples,
    classes: ClassTable,
    progress: Progress,
    grouped: Grouping,
    crs: str,
) -> tuple[list[dict[str, Any]], dict[str, Any], npt.NDArray[np.int64], CvPart]:
    labels = samples.labels
    _check_sizes(labels, config, grouped)
    held_out_by, scheme = holdout_grouping(
        labels, samples.x, samples.y, crs, config.cv.spatial_block, grouped, classes
    )
    if held_out_by is not grouped and held_out_by.note:
        progress.note(f"hold-out: {held_out_by.note}")
    split = holdout_split(labels, config.cv.test_size, config.seed, held_out_by)
    kept, scheme = keep_every_class_in_training(labels, split, config, grouped, scheme)
    if kept is not split:
        progress.note(f"hold-out {scheme}")
    train, test = kept
    part = cv_part(labels, train, grouped, classes)
    if part.note:
        progress.note(part.note)
    if config.cv.repeats > 0 and part.labels.size == 0:
        raise PointsError(
            f"no class keeps two training samples beside the hold-out ({train.size} training samples of "
            f"{np.unique(labels).size} classes), so no cross-validation can score them: label more points "
            "per class, or give --repeats 0 to pick the model by the hold-out alone"
        )
    train_labels = labels[train]
    cv_splits, cv_name = part.splits(repeated_splits(part.labels, config.cv, config.seed, part.grouped))
    cv_name = f"{cv_name}, {part.name}"
    if config.cv.scheme != "shuffle" and cv_splits and len(cv_splits) // config.cv.repeats < config.cv.folds:
        progress.note(
            f"--folds {config.cv.folds} lowered to {len(cv_splits) // config.cv.repeats}: each fold must "
            "hold every class (or polygon group) the training part has at least twice"
        )
    sp_splits: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []
    sp_name = ""
    if config.cv.spatial_block is not None:
        scored = train[part.scored]
        x, y = metric_xy(crs, samples.x[scored], samples.y[scored])  # metres, whatever the imagery's CRS
        spatial, sp_name, _ = spatial_splits(
            x, y, part.labels, config.cv.spatial_block, config.cv.folds, config.seed, part.grouped
        )
        sp_splits, sp_name = part.splits((spatial, f"{sp_name}, {part.name}"))
        if len(sp_splits) < config.cv.folds:
            progress.note(f"spatial CV: {sp_name.split(' (')[0]}, not {config.cv.folds} (blocks or samples)")
    board: list[dict[str, Any]] = []
    fitted: dict[str, Any] = {}
    for name in config.models:
        params = _model_params(config, name)
        tuning: dict[str, Any] | None = None
        if config.tune:
            if not cv_splits:
                raise ConfigError("--tune needs the repeated CV (cv.repeats >= 1) to score its candidates")
            progress.start(f"tuning {name}", config.tune_budget)
            tuning = tune(
                name,
                functools.partial(make_estimator, name, config.seed, settings.n_jobs),
                params,
                features[train],
                train_labels,
                cv_splits,
                cv_name,
                config.tune_budget,
                config.seed,
                progress.advance,
            )
            tuning["samples"] = int(train.size)
            params = tuning["chosen"]
            progress.note(
                f"{name}: tuned {params} (CV {100 * tuning['chosen_cv']['overall_accuracy']['mean']:.1f} %)"
            )

        def factory(name: str = name, params: dict[str, Any] = params) -> Any:
            return make_estimator(name, config.seed, settings.n_jobs, params)

        progress.start(f"fitting {name}", 1 + len(cv_splits) + len(sp_splits))
        model = factory().fit(features[train], labels[train])
        pred = decided_labels(model, features[test])
        progress.advance()
        entry: dict[str, Any] = {
            "model": name,
            "description": DESCRIPTIONS[name],
            "params": params,
            "holdout": score(labels[test], pred, classes) | {"scheme": scheme},
        }
        if tuning is not None:
            entry["tuning"] = tuning
        entry["holdout_overall_accuracy"] = entry["holdout"]["overall_accuracy"]
        if cv_splits:
            entry["cv"] = cross_validate(
                factory, features[train], train_labels, cv_splits, cv_name, progress.advance
            ).summary()
        if sp_splits:
            entry["spatial_cv"] = cross_validate(
                factory, features[train], train_labels, sp_splits, sp_name, progress.advance
            ).summary()
        board.append(entry)
        fitted[name] = model
        cv_text = (
            f", repeated {100 * entry['cv']['overall_accuracy']['mean']:.1f} ± "
            f"{100 * entry['cv']['overall_accuracy']['sd']:.1f} % ({entry['cv']['splits']} splits)"
            if cv_splits
            else ""
        )
        progress.note(f"{name}: hold-out OA {100 * entry['holdout_overall_accuracy']:.1f} %{cv_text}")
    return board, fitted, test, part


def holdout_grouping(
    labels: npt.NDArray[np.int64],
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    crs: str,
    spatial_block: float | None,
    grouped: Grouping,
    classes: ClassTable,
) -> tuple[Grouping, str]:
    """How the hold-out is drawn, and its words for the report: by spatial block when the recipe has one.

    With ``spatial_block`` (metres) the hold-out takes whole blocks (a polygon straddling an edge goes with
    its first pixel's block), as the spatial CV does: a test sample has no training sample in its block,
    except where a class's samples all lie in one block. Such a class keeps its polygon grouping (point by
    point for points), since a block cannot be held out whole and kept for training at once (split pixel by
    pixel, its polygons had pixels on both sides). The hold-out was drawn by polygon only, and with points
    beside training points it scored the neighbours of what the model had seen.
    ``keep_every_class_in_training`` may still fall back to polygons.
    """
    if spatial_block is None:
        return grouped, _scheme_of(grouped)
    mx, my = metric_xy(crs, x, y)
    blocks = spatial_blocks(mx, my, spatial_block, grouped.groups)
    polygons = grouped.groups if grouped.groups is not None else np.arange(labels.size, dtype=np.int64)
    combined = blocks.copy()
    alone = [int(v) for v in np.unique(labels) if np.unique(blocks[labels == v]).size < 2]
    for value in alone:  # ids past every block's: the class's polygons are groups of their own
        members = labels == value
        combined[members] = int(blocks.max()) + 1 + polygons[members]
    scheme = f"by {spatial_block:g} m spatial block ({int(blocks.max()) + 1} blocks)"
    if alone:
        names = ", ".join(classes.by_value(v).name for v in alone)
        within = "by polygon" if grouped.groups is not None else "point by point"
        scheme += f"; {names} in one block: {within}"
    return grouping(labels, combined, classes, unit="spatial block"), scheme


def keep_every_class_in_training(
    labels: npt.NDArray[np.int64], split: Split, config: TrainingConfig, grouped: Grouping, scheme: str
) -> tuple[Split, str]:
    """The hold-out split, or, when whole blocks left a class no training sample, the polygon-grouped one.

    Blocks are coarser than polygons: with a class in two or three blocks, the hold-out that keeps every
    class on the training side may not exist, and the model could not learn that class at all.
    """
    train, _ = split
    missing = sorted(set(np.unique(labels).tolist()) - set(np.unique(labels[train]).tolist()))
    if not missing or config.cv.spatial_block is None:
        return split, scheme
    fallback = holdout_split(labels, config.cv.test_size, config.seed, grouped)
    return fallback, (
        f"{_scheme_of(grouped)}: held out by {config.cv.spatial_block:g} m spatial block, class value(s) "
        f"{', '.join(map(str, missing))} had no training sample left"
    )


def _scheme_of(grouped: Grouping) -> str:
    """The report's words for a hold-out drawn by ``grouped`` (polygons, or pixels samples share)."""
    return "grouped by polygon or shared pixel" if grouped.groups is not None else "stratified random"


def _spatial_blocks(
    config: TrainingConfig,
    crs: str,
    samples: Samples,
    train: npt.NDArray[np.int64],
    groups: npt.NDArray[np.int64] | None,
) -> SpatialBlocks | None:
    """The training samples' spatial blocks when the recipe validates by spatial block CV, else None."""
    if config.cv.spatial_block is None:
        return None
    x, y = metric_xy(crs, samples.x[train], samples.y[train])
    polygons = groups[train] if groups is not None else None
    return SpatialBlocks(spatial_blocks(x, y, config.cv.spatial_block, polygons), config.cv.spatial_block)


def _check_sizes(labels: npt.NDArray[np.int64], config: TrainingConfig, grouped: Grouping) -> None:
    """Refuse, before any fitting, sample counts the hold-out or the class sets cannot work with.

    Raises:
        ConfigError: ``--test-size`` leaves fewer training samples than classes.
        PointsError: too few samples to calibrate the class sets at their coverage.
    """
    n_classes = int(np.unique(labels).size)
    if grouped.groups is None:
        n_test = max(int(np.ceil(config.cv.test_size * labels.size)), n_classes)
        if labels.size - n_test < n_classes:
            raise ConfigError(
                f"--test-size {config.cv.test_size:g} holds out {n_test} of {labels.size} samples, leaving "
                f"{labels.size - n_test} to train {n_classes} classes: give a smaller --test-size"
            )
    needed = minimum_samples(config.conformal_coverage)
    if labels.size < needed:
        raise PointsError(
            f"{labels.size} labelled samples cannot calibrate class sets at {config.conformal_coverage:.0%} "
            f"coverage (at least {needed}): label more points"
        )


@dataclass(frozen=True)
class CvPart:
    """The samples the CVs run on: the training part, its samples of a class seen once only trained on.

    Every estimate a choice is made from (the kept model, tuned parameters) runs on the training part
    alone: the hold-out stays unseen until the one model kept is scored on it. Over all samples, the model
    whose CV folds happened to score the hold-out's samples well was the one kept and reported.
    """

    train: npt.NDArray[np.int64]
    """The training part (indices of all samples)."""
    scored: npt.NDArray[np.int64]
    """Positions in ``train`` of the samples the splits are drawn over."""
    lone: npt.NDArray[np.int64]
    """Positions in ``train`` of the samples of classes the training part holds once: no split can score
    them (a stratified split needs two), so they join the training side of every split."""
    labels: npt.NDArray[np.int64]
    grouped: Grouping
    """The grouping of the scored samples, made anew: a class with two polygons keeps one in the training
    part, whose pixels are then split singly (held out whole, the class would be missing from training)."""
    name: str
    note: str | None

    def splits(self, made: tuple[list[Split], str]) -> tuple[list[Split], str]:
        """Splits drawn over the scored samples, as positions in ``train``, the lone ones trained on."""
        splits, name = made
        lifted = [(np.sort(np.concatenate([self.scored[a], self.lone])), self.scored[b]) for a, b in splits]
        return lifted, name


def cv_part(
    labels: npt.NDArray[np.int64], train: npt.NDArray[np.int64], grouped: Grouping, classes: ClassTable
) -> CvPart:
    """The ``CvPart`` of the training part ``train``."""
    train_labels = labels[train]
    values, counts = np.unique(train_labels, return_counts=True)
    once = values[counts < 2]
    lone_mask = np.isin(train_labels, once)
    scored, lone = np.flatnonzero(~lone_mask), np.flatnonzero(lone_mask)
    scored_labels = train_labels[scored]
    if grouped.groups is None:
        part_grouped = Grouping(None, int(scored.size))
    else:
        part_grouped = grouping(scored_labels, grouped.groups[train][scored], classes)
    notes = []
    if once.size:
        names = ", ".join(classes.by_value(int(v)).name for v in once)
        notes.append(
            f"class(es) {names} have one sample in the training part: the CVs train on it in every split "
            "and never score it"
        )
    if part_grouped.note and part_grouped.note != grouped.note:
        notes.append(f"in the training part, {part_grouped.note}")
    return CvPart(
        train,
        scored,
        lone,
        scored_labels,
        part_grouped,
        f"of the training part ({train.size} of {labels.size} samples)",
        "; ".join(notes) or None,
    )


def _sample_groups(
    imagery: Imagery, samples: Samples, polygons: npt.NDArray[np.int64] | None
) -> tuple[npt.NDArray[np.int64] | None, int, int]:
    """Groups keeping each polygon's pixels and each pixel's samples together; shared and conflicting counts.

    The counts: samples that share a pixel with another, and pixels that carry two labels. Two samples of
    one pixel have the same features: split apart, one scores a model trained on the other (a duplicated
    point file scored 100 %, 97.3 % without the copies). With polygons too, a point inside a polygon, a
    point digitised twice or two overlapping polygons joined both sides of a split. None: every sample is
    its own group (points only, each on its own pixel).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows, cols = imagery.grid.pixel_index(samples.x, samples.y)
    keys = np.asarray(rows, dtype=np.int64) * (imagery.grid.width + 1) + np.asarray(cols, dtype=np.int64)
    unique, pixel = np.unique(keys, return_inverse=True)
    pixel = pixel.ravel()
    n = keys.size
    shared = int(n - unique.size)
    labelled = np.unique(np.stack([pixel, samples.labels]), axis=1)
    conflicting = int(labelled.shape[1] - unique.size)
    if polygons is None:
        return (pixel.astype(np.int64) if shared else None), shared, conflicting
    _, polygon = np.unique(polygons, return_inverse=True)
    polygon = polygon.ravel()
    n_polygons = int(polygon.max()) + 1 if n else 0
    # samples, polygons and pixels as nodes; a sample joins its polygon and its pixel
    edges = np.concatenate([n + polygon, n + n_polygons + pixel])
    starts = np.concatenate([np.arange(n), np.arange(n)])
    size = n + n_polygons + unique.size
    graph = coo_matrix((np.ones(2 * n), (starts, edges)), shape=(size, size))
    _, component = connected_components(graph, directed=False)
    _, groups = np.unique(component[:n], return_inverse=True)
    return groups.astype(np.int64).ravel(), shared, conflicting


def _model_params(config: TrainingConfig, name: str) -> dict[str, Any]:
    """The recipe's parameters of one model, with the recipe's class weighting."""
    params = dict(config.model_params.get(name) or {})
    if config.class_weight is not None:
        params.setdefault("class_weight", config.class_weight)
    return params


def _polygon_summary(
    config: TrainingConfig,
    settings: TrainingSettings,
    features: npt.NDArray[np.float32],
    samples: Samples,
    points: LabelledPoints,
    grouped: Grouping,
    chosen: dict[str, Any],
    progress: Progress,
    part: CvPart,
) -> dict[str, Any] | None:
    """Polygons and pixels per class, and the optimism of splitting pixels at random (None: points only).

    The optimism is the kept model's repeated-CV accuracy with pixels split at random minus the same
    estimate grouped by polygon: how much a pixel-wise split (as OTB and SCP make) flatters the model.
    Both on the training part (``part``), as the grouped estimate is.
    """
    if points.groups is None:
        return None
    labels = samples.labels
    groups = points.groups[samples.index]
    by_class = {
        str(int(v)): {
            "features": int(np.unique(groups[labels == v]).size),
            "pixels": int(np.count_nonzero(labels == v)),
        }
        for v in np.unique(labels)
    }
    empty = sorted(set(points.groups.tolist()) - set(groups.tolist()))
    for feature in empty:
        progress.note(
            f"feature {feature} of {points.source} gave no valid pixel (nodata or cloud everywhere)"
        )
    summary: dict[str, Any] = {
        "by_class": by_class,
        "groups": grouped.n_groups,
        "note": grouped.note,
        "features_without_valid_pixels": empty,
    }
    if grouped.groups is None or "cv" not in chosen or config.cv.repeats == 0:
        return summary
    train = part.train
    random_splits, random_name = part.splits(repeated_splits(part.labels, config.cv, config.seed))

    def factory() -> Any:  # the kept model itself (class weighting, tuned parameters): only the split differs
        return make_estimator(chosen["model"], config.seed, settings.n_jobs, chosen["params"])

    progress.start("pixel-split CV (optimism)", len(random_splits))
    random_name = f"{random_name}, of the training part ({train.size} of {labels.size} samples)"
    pixelwise = cross_validate(
        factory, features[train], labels[train], random_splits, random_name, progress.advance
    ).summary()
    grouped_mean = float(chosen["cv"]["overall_accuracy"]["mean"])
    random_mean = float(pixelwise["overall_accuracy"]["mean"])
    summary["optimism"] = {
        "pixel_split_cv": pixelwise,
        "params": chosen["params"],
        "grouped_cv_accuracy": grouped_mean,
        "pixel_split_cv_accuracy": random_mean,
        "accuracy_difference": round(random_mean - grouped_mean, 6),
    }
    progress.note(
        f"optimism of a pixel-wise split: {100 * random_mean:.1f} % (pixels at random) - "
        f"{100 * grouped_mean:.1f} % (grouped by polygon) = {100 * (random_mean - grouped_mean):+.1f} pp"
    )
    return summary


def _selection(config: TrainingConfig, board: list[dict[str, Any]], chosen: dict[str, Any]) -> dict[str, Any]:
    """How the kept model was chosen, and whether that makes its hold-out accuracy optimistic."""
    if config.select != "best" or len(board) == 1:
        return {"by": "the recipe", "note": None}
    if "spatial_cv" in chosen:
        return {"by": "spatial block CV of the training part", "note": None}
    if "cv" in chosen:
        return {"by": "repeated CV of the training part", "note": None}
    return {
        "by": "hold-out accuracy",
        "note": f"No repeated CV (cv.repeats: 0): the hold-out chose the kept model among {len(board)}, so "
        "its hold-out accuracy is the best of them and optimistic; set cv.repeats >= 1 or select one model",
    }


def _select(config: TrainingConfig, board: list[dict[str, Any]]) -> dict[str, Any]:
    if config.select != "best":
        return next(e for e in board if e["model"] == config.select)

    def key(entry: dict[str, Any]) -> float:
        # a recipe that asks for spatial block CV maps new places: the model that does best there is kept
        # (Roberts et al. 2017; Meyer & Pebesma 2021), not the one random splits favour
        for scores in ("spatial_cv", "cv"):
            if scores in entry:
                return float(entry[scores]["overall_accuracy"]["mean"])
        return float(entry["holdout_overall_accuracy"])

    return max(board, key=key)  # the first of equals, in the recipe's model order


def train(
    config: TrainingConfig, settings: TrainingSettings | None = None, progress: Progress | None = None
) -> TrainResult:
    """Run the recipe and write the model directory atomically; raise a ``TrainingError`` on bad input."""
    settings = settings or TrainingSettings()
    progress = progress or NullProgress()
    config.require_complete()
    # before any work; a versioned path as its folder of any version (checked again at the end)
    check_model_out(Path(str(config.out).replace("{version}", "0" * 12)), str(config.out))
    # read now, so a wrong path or URL fails before the training, not after it; the gate takes this read
    baseline = gate.load_baseline(config.baseline) if config.baseline else None
    table = load_class_table(config.classes) if config.classes else None
    points = read_points(str(config.points), config.label_field, table, config.points_crs)
    if not points.polygons:  # polygons are counted once they are pixels on the imagery grid
        check_class_counts(points.labels, points.classes, points.source)
    imagery = open_imagery(config, settings)
    for note in imagery.notes:
        progress.note(note)
    points, samples, polygon_notes = sample_polygons(
        imagery, points, config.max_pixels_per_polygon, config.seed, progress, settings.polygon_batch_pixels
    )
    for note in polygon_notes:
        progress.note(note)
    notes = [*imagery.notes, *polygon_notes]
    _note_dropped(samples, len(points), progress, points=points, imagery=imagery)
    _refuse_lost_classes(samples, points, imagery.extent)
    check_class_counts(samples.labels, points.classes, f"{points.source} (after dropping unusable points)")
    check_reflectance(samples.reflectance, imagery, config.scale is not None or config.offset is not None)
    classes, left_out = _used_classes(points.classes, samples.labels, points.source, progress)
    features = sample_features(imagery, config, samples.reflectance)
    seasons = [s.name for s in config.seasons] if config.seasons else None
    names = composite_feature_names(imagery.bands, config.indices, seasons)
    polygon_ids = points.groups[samples.index] if points.groups is not None else None
    groups, shared, conflicting = _sample_groups(imagery, samples, polygon_ids)
    if shared:
        progress.note(
            f"{shared} sample(s) fall on a pixel another sample already takes: each pixel's samples (and "
            "the polygons they belong to) are kept on one side of every split (else the same pixel is "
            "trained on and scored)"
        )
    if conflicting:
        progress.note(f"{conflicting} pixel(s) carry two or more labels (overlapping samples disagree)")
    grouped = grouping(samples.labels, groups, classes)
    if grouped.note:
        progress.note(grouped.note)
    with quiet_estimators():
        board, fitted, test, part = _evaluate_models(
            config, settings, features, samples, classes, progress, grouped, imagery.grid.crs
        )
        chosen = _select(config, board)
        selection = _selection(config, board, chosen)
        if selection["note"]:
            progress.note(selection["note"])
        model = fitted[chosen["model"]]
        polygons = _polygon_summary(
            config, settings, features, samples, points, grouped, chosen, progress, part
        )
        train_idx = part.train
        progress.start("feature importance", 1)
        importance = permutation_importance(
            model, features[test], samples.labels[test], names, config.seed, settings.importance_repeats
        )
        progress.advance()
        trust = None
        if config.trust:
            progress.start("area of applicability and class sets", 1)
            trust = fit_trust(
                model,
                features[train_idx],
                samples.labels[train_idx],
                groups[train_idx] if groups is not None else None,
                features[test],
                samples.labels[test],
                {row["feature"]: float(row["mean"]) for row in importance},
                names,
                classes,
                folds=config.cv.folds,
                coverage=config.conformal_coverage,
                seed=config.seed,
                max_reference=settings.aoa_max_samples,
                set_folds=settings.class_set_folds,
                blocks=_spatial_blocks(config, imagery.grid.crs, samples, train_idx, groups),
            )
            if trust.report["note"]:
                progress.note(trust.report["note"])
            if not map_holds(n_classes := len(classes.classes)):
                progress.note(f"class sets calibrated (the report's coverage); {no_map(n_classes)}")
            progress.advance()
        progress.start("ONNX export and parity", 2)
        contract, onnx_bytes = _export(config, imagery, points, model, chosen, classes, len(names), trust)
        progress.advance()
        pixels = sample_features(imagery, config, sample_pixels(imagery, settings.parity_pixels, config.seed))
        parity = export.check_parity(
            onnx_bytes,
            model,
            features[test],
            pixels,
            classes_of(model),
            settings.onnx_threads,
            settings.parity_threshold,
        )
        progress.advance()
    metrics = _metrics(config, contract, chosen, board, samples, points, imagery, importance, parity, names)
    metrics["samples"]["train"], metrics["samples"]["test"] = int(train_idx.size), int(test.size)
    metrics["imagery_notes"] = notes
    metrics["selection"] = selection
    metrics["cv_note"] = part.note
    metrics["classes_left_out"] = left_out
    if trust is not None:
        metrics["trust"] = trust.report
    if polygons is not None:
        metrics["polygons"] = polygons
    floors = gate.Floors(settings.min_overall_accuracy, settings.min_class_f1)
    if config.baseline or floors:
        metrics["gate"] = gate.enforce(metrics, config.baseline, config.tolerance, floors, loaded=baseline)
        against = [f"against {config.baseline}"] if config.baseline else []
        progress.note(" ".join(["promotion gate passed", *against, *(["and the floors"] if floors else [])]))
    out = Path(str(config.out).replace("{version}", contract.version))
    write_model_dir(out, onnx_bytes, contract, metrics, imagery, config)
    return TrainResult(out, contract, metrics)


def _export(
    config: TrainingConfig,
    imagery: Imagery,
    points: LabelledPoints,
    model: Any,
    chosen: dict[str, Any],
    classes: ClassTable,
    n_features: int,
    trust: Trust | None = None,
) -> tuple[ModelContract, bytes]:
    onx = export.to_onnx(model, n_features, chosen["model"])
    applicability, class_sets = None, None
    if trust is not None:
        onx = add_dissimilarity_output(onx, trust.applicability)
        applicability = Applicability(output=DI_OUTPUT, threshold=trust.applicability.threshold)
        class_sets = trust.class_sets
    hold = chosen["holdout"]
    summary: dict[str, Any] = {
        "holdout_overall_accuracy": hold["overall_accuracy"],
        "holdout_kappa": hold["kappa"],
        "holdout_macro_f1": hold["macro_f1"],
        "holdout_n": hold["n"],
    }
    if "cv" in chosen:
        summary["cv_overall_accuracy_mean"] = chosen["cv"]["overall_accuracy"]["mean"]
        summary["cv_overall_accuracy_sd"] = chosen["cv"]["overall_accuracy"]["sd"]
        summary["cv_splits"] = chosen["cv"]["splits"]
    draft = ModelContract(
        name=config.name,
        version="draft",
        inputs=contract_inputs(imagery, config),
        features=Features(indices=config.indices),
        classes=classes,
        outputs=Outputs(class_order=classes_of(model)),
        provenance=Provenance(
            model_type=chosen["model"],
            training_data=(
                f"{Path(points.source).name} (field {config.label_field}); imagery {imagery.identity}"
            ),
            time_window=imagery.time_window,
            bbox=[round(v, 6) for v in imagery.grid.bounds_wgs84()],
            metrics=summary,
            software=_software(chosen["model"]),
            seed=config.seed,
        ),
        applicability=applicability,
        class_sets=class_sets,
    )
    contract = draft.model_copy(update={"version": export.content_version(onx, draft)})
    return contract, export.embed_contract(onx, contract)


def _metrics(
    config: TrainingConfig,
    contract: ModelContract,
    chosen: dict[str, Any],
    board: list[dict[str, Any]],
    samples: Samples,
    points: LabelledPoints,
    imagery: Imagery,
    importance: list[dict[str, Any]],
    parity: export.Parity,
    names: list[str],
) -> dict[str, Any]:
    return {
        "schema": "lulc-stac/metrics/1",
        "model": {"name": contract.name, "version": contract.version, "type": chosen["model"]},
        "seed": config.seed,
        "features": names,
        "classes": [{"value": c.value, "name": c.name} for c in contract.classes.classes],
        "imagery": imagery.identity,
        "samples": {
            "features": points.features,  # read from the file
            "points": len(points) - points.pixels,  # samples: points (and MultiPoints' parts)
            "pixels": points.pixels,  # and pixels of polygons
            "used": int(samples.labels.size),
            "by_class": {str(v): int(np.count_nonzero(samples.labels == v)) for v in contract.classes.values},
            "dropped": [d.__dict__ for d in samples.dropped],
            "blocks_read": samples.blocks_read,
        },
        "holdout": chosen["holdout"],
        "cv": chosen.get("cv"),
        "spatial_cv": chosen.get("spatial_cv"),
        "leaderboard": [
            {k: v for k, v in e.items() if k != "holdout"} | {"holdout_macro_f1": e["holdout"]["macro_f1"]}
            for e in board
        ],
        "feature_importance": importance,
        "parity": parity.as_dict(),
    }
