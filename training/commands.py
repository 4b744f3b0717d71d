"""``lulc train`` and ``lulc assess``: flags or a ``training.yaml`` recipe; heavy imports inside commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from lulc.aoi import parse_bbox
from lulc.progress import RichProgress


def _split(value: str | None) -> list[str] | None:
    """Comma-separated names; an empty string or "none" is an explicitly empty list."""
    if value is None:
        return None
    if value.strip().lower() in ("", "none"):
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


def recipe_default(value: str) -> str:
    """The ``[default: ...]`` a flag shows: the recipe's value, else ``training.config``'s.

    ``tests/training/test_train_help.py`` checks each against ``training.config``.
    """
    return f"recipe's, else {value}"


def _aoi(value: str | None) -> str | list[float] | None:
    return None if value is None else (parse_bbox(value) or value)


def train_command(
    config: Annotated[
        Path | None, typer.Option("--config", help="training.yaml recipe; flags override it.")
    ] = None,
    stac: Annotated[str | None, typer.Option(help="STAC API URL or static catalog path/URL.")] = None,
    collection: Annotated[
        str | None, typer.Option(show_default=recipe_default("sentinel-2-l2a"), help="STAC collection.")
    ] = None,
    aoi: Annotated[str | None, typer.Option(help="w,s,e,n (EPSG:4326) or a GeoJSON/OGR file.")] = None,
    datetime: Annotated[
        str | None,
        typer.Option(
            "--datetime",
            help="STAC datetime interval; with --image, the date of an image that records none.",
        ),
    ] = None,
    max_cloud_cover: Annotated[
        float | None, typer.Option(help="Largest eo:cloud_cover used, percent (items at it are used).")
    ] = None,
    composite: Annotated[
        str | None, typer.Option(show_default=recipe_default("median"), help="median or first-valid.")
    ] = None,
    resolution: Annotated[float | None, typer.Option(help="Grid resolution, metres.")] = None,
    image: Annotated[Path | None, typer.Option(help="Local multi-band GeoTIFF instead of STAC.")] = None,
    bands: Annotated[
        str | None,
        typer.Option(
            show_default=recipe_default("blue,green,red,nir"),
            help="Model bands, comma-separated (an unnamed image's, in order).",
        ),
    ] = None,
    image_bands: Annotated[
        str | None, typer.Option(help="Names of all the image's bands, in order, unless its descriptions do.")
    ] = None,
    scale: Annotated[float | None, typer.Option(help="Image reflectance = DN * scale + offset.")] = None,
    offset: Annotated[float | None, typer.Option(help="See --scale.")] = None,
    indices: Annotated[str | None, typer.Option(help="Spectral indices, e.g. ndvi,ndwi.")] = None,
    points: Annotated[
        Path | None, typer.Option(help="Labelled points or polygons (any OGR format and CRS, or CSV).")
    ] = None,
    points_crs: Annotated[str | None, typer.Option(help="CRS of a points file that declares none.")] = None,
    max_pixels_per_polygon: Annotated[
        int | None,
        typer.Option(
            help="Pixel samples per training polygon at most (seeded subset of its valid pixels; 0: all).",
            show_default=recipe_default("30"),
        ),
    ] = None,
    label_field: Annotated[
        str | None, typer.Option(show_default=recipe_default("label"), help="Field holding the class label.")
    ] = None,
    classes: Annotated[Path | None, typer.Option(help="Class table YAML.")] = None,
    models: Annotated[
        str | None,
        typer.Option(show_default=recipe_default("rf"), help="Models to compare: rf,svm,dt,hgb,lgbm."),
    ] = None,
    select: Annotated[
        str | None, typer.Option(show_default=recipe_default("best"), help="'best' or the model to keep.")
    ] = None,
    class_weight: Annotated[
        str | None, typer.Option(help="'balanced': weight classes by inverse sample count.")
    ] = None,
    tune: Annotated[
        bool | None, typer.Option("--tune/--no-tune", help="Search hyper-parameters on the grouped CV.")
    ] = None,
    tune_budget: Annotated[
        int | None, typer.Option(show_default=recipe_default("8"), help="Candidates per model when tuning.")
    ] = None,
    seed: Annotated[int | None, typer.Option(show_default=recipe_default("0"), help="Random seed.")] = None,
    folds: Annotated[
        int | None, typer.Option(show_default=recipe_default("5"), help="k of the repeated k-fold.")
    ] = None,
    repeats: Annotated[
        int | None,
        typer.Option(
            show_default=recipe_default("2"), help="Repeats of the k-fold (or number of random splits)."
        ),
    ] = None,
    cv_scheme: Annotated[
        str | None,
        typer.Option(show_default=recipe_default("kfold"), help="kfold or shuffle (repeated random splits)."),
    ] = None,
    test_size: Annotated[
        float | None, typer.Option(show_default=recipe_default("0.3"), help="Hold-out fraction.")
    ] = None,
    spatial_block: Annotated[float | None, typer.Option(help="Spatial block CV block size, metres.")] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Deployed model dir / metrics.json / URL to beat.")
    ] = None,
    tolerance: Annotated[
        float | None,
        typer.Option(show_default=recipe_default("0.02"), help="Allowed fall of OA and class F1 (0-1)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option(show_default=recipe_default("lulc-model"), help="Model name.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Model directory to write ({version} is replaced).")
    ] = None,
) -> None:
    """Train land-cover models from labelled points and imagery; write a verified ONNX model directory."""
    from lulc.settings_types import load_settings
    from training.config import load_config, make_config
    from training.settings import TrainingSettings

    overrides: dict[str, Any] = {
        "stac": stac,
        "collection": collection,
        "aoi": _aoi(aoi),
        "datetime": datetime,
        "max_cloud_cover": max_cloud_cover,
        "composite": composite,
        "resolution": resolution,
        "image": str(image) if image else None,
        "bands": _split(bands),
        "image_bands": _split(image_bands),
        "scale": scale,
        "offset": offset,
        "indices": _split(indices),
        "points": str(points) if points else None,
        "points_crs": points_crs,
        "max_pixels_per_polygon": max_pixels_per_polygon,
        "label_field": label_field,
        "classes": str(classes) if classes else None,
        "models": _split(models),
        "select": select,
        "class_weight": class_weight,
        "tune": tune,
        "tune_budget": tune_budget,
        "seed": seed,
        "cv": {
            "folds": folds,
            "repeats": repeats,
            "scheme": cv_scheme,
            "test_size": test_size,
            "spatial_block": spatial_block,
        },
        "baseline": baseline,
        "tolerance": tolerance,
        "name": name,
        "out": str(out) if out else None,
    }
    flags = {key: "--" + key.replace("_", "-") for key in overrides if key != "cv"}
    flags |= {f"cv.{key}": "--" + key.replace("_", "-") for key in overrides["cv"]} | {
        "cv.scheme": "--cv-scheme"
    }
    recipe = load_config(config, overrides, flags) if config else make_config({}, overrides, names=flags)
    settings = load_settings(TrainingSettings)
    from training.pipeline import train  # after the checks: a refused recipe does not wait for scikit-learn

    with RichProgress(Console(stderr=True)) as progress:  # progress on stderr, as the other commands
        result = train(recipe, settings, progress)
    _summary(Console(), result.metrics, result.out)


def _summary(console: Console, metrics: dict[str, Any], out: Path) -> None:
    hold = metrics["holdout"]
    cv = metrics.get("cv")
    oa = 100 * hold["overall_accuracy"]
    text = f"kept {metrics['model']['type']} {metrics['model']['version']}: hold-out OA {oa:.1f} %"
    text += f", kappa {hold['kappa']:.3f}, macro F1 {hold['macro_f1']:.3f}"
    if cv:
        text += (
            f"; repeated OA {100 * cv['overall_accuracy']['mean']:.1f} ± "
            f"{100 * cv['overall_accuracy']['sd']:.1f} %"
            f" over {cv['splits']} splits"
        )
    console.print(text, highlight=False, markup=False, soft_wrap=True)
    console.print(
        f"wrote {out}/ (model.onnx, model.json, metrics.json, report.md, confusion_matrix.png)",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def assess_command(
    map_path: Annotated[
        Path,
        typer.Argument(
            metavar="MAP",
            help="Classified map (uint8, nodata 255), or a `lulc classify` output folder (its classes.tif).",
        ),
    ],
    points: Annotated[Path, typer.Option(help="Independent validation points (any OGR format).")],
    label_field: Annotated[str, typer.Option(help="Field holding the reference class.")] = "label",
    classes: Annotated[
        Path | None, typer.Option(help="Class table YAML (default: from the map's labels).")
    ] = None,
    points_crs: Annotated[str | None, typer.Option(help="CRS of a points file that declares none.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the assessment as JSON here.")] = None,
    no_compare_source: Annotated[
        bool,
        typer.Option(
            "--no-compare-source",
            help="Assess a `lulc clean` map alone, without its source map on the same points.",
        ),
    ] = False,
) -> None:
    """Map accuracy and class areas with 95 % confidence intervals (Olofsson et al. 2014)."""
    from training.assess import assess_map, check_assessment_out, render_assessment, write_assessment

    inputs = [map_path, map_path / "classes.tif", points, *([classes] if classes else [])]
    if out is not None:
        check_assessment_out(out, inputs)
    result = assess_map(
        map_path, points, label_field, classes, points_crs, compare_source=not no_compare_source
    )
    typer.echo(render_assessment(result))
    if out is not None:
        write_assessment(out, result, inputs)


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``assess`` to the root ``lulc`` app."""
    app.command("train")(train_command)
    app.command("assess")(assess_command)
