"""The declarative training recipe (``training.yaml``): one pydantic model, paths relative to the file."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lulc.aoi import comma_numbers
from lulc.errors import ContractError, validation_problems
from lulc.features import check_features
from lulc.local_files import read_yaml
from lulc.seasons import Season, check_apart, check_seasons
from lulc.sentinel2 import unknown_bands
from training.errors import ConfigError
from training.models import params_problem

MODEL_NAMES = ("rf", "svm", "dt", "hgb", "lgbm")
"""Estimators ``lulc train`` knows, by short name."""
MODEL_NAME_PATTERN = r"^[a-zA-Z][a-zA-Z0-9_.\-\s]+[a-zA-Z0-9]$"
"""STAC MLM's ``mlm:name`` (v1.4): the model item written with every model validates."""


class CvOptions(BaseModel):
    """How accuracy is estimated besides the seeded stratified hold-out."""

    model_config = ConfigDict(extra="forbid")

    scheme: Literal["kfold", "shuffle"] = Field(
        default="kfold",
        description="'kfold': repeated stratified k-fold; 'shuffle': `repeats` random stratified "
        "hold-out splits of `test_size` (the tutorial's repeated 70/30 split).",
    )
    folds: int = Field(default=5, ge=2)
    repeats: int = Field(default=2, ge=0, description="0 disables the repeated estimate.")
    test_size: float = Field(default=0.3, gt=0, lt=1, description="Hold-out fraction.")
    spatial_block: float | None = Field(
        default=None,
        gt=0,
        description="Block size in metres: the hold-out and a spatial block CV keep each block's samples on "
        "one side of a split (points near a block's edge still have neighbours across it: make blocks larger "
        "than the range of spatial autocorrelation). Unset, every split is random: optimistic where samples "
        "cluster.",
    )


DEFAULT_PIXELS_PER_POLYGON = 30
"""Pixel samples per training polygon unless the recipe says otherwise (sits' ``n_sam_pol`` default)."""


class TrainingConfig(BaseModel):
    """Everything ``lulc train`` needs: imagery, points, classes, models, accuracy, output.

    ``training.yaml`` (relative paths are relative to the file; every key is optional except as
    ``require_complete`` says; command-line flags override keys)::

        name: lulc-model
        stac: catalog.json            # STAC API URL, or static catalog / ItemCollection path or URL
        collection: sentinel-2-l2a
        aoi: aoi.geojson              # or [w, s, e, n] in EPSG:4326
        datetime: 2024-05-01/2024-09-30
        # seasons:                    # one composite each, in the year `datetime` names (datetime: 2024)
        #   - {name: spring, start: "03-20", end: "05-10"}
        #   - {name: summer, start: "06-20", end: "08-20"}
        max_cloud_cover: 60
        max_items: 8                  # keep the least cloudy N
        composite: median             # or first-valid
        resolution: 10
        # or, instead of stac/aoi: a local raster (datetime: its date, if the raster records none)
        # image: s2image.tif
        # image_bands: [blue, green, red, nir]   # names of all its bands, in order (default: its band
        #                                          descriptions, else bands in order when as many)
        # scale: 0.0001                          # optional; floats are taken as reflectance
        # offset: 0
        bands: [blue, green, red, nir, swir16, swir22]
        indices: [ndvi, ndwi, ndbi]
        points: train.gpkg
        points_crs: null              # only for points files that declare no CRS
        max_pixels_per_polygon: 30    # polygon layers: valid pixels sampled per polygon (seeded; 0: all)
        label_field: label
        classes: classes.yaml
        models: [rf, svm, dt]         # rf, svm, dt, hgb, lgbm
        model_params: {rf: {n_estimators: 200}}   # scikit-learn's (LightGBM's) own; checked with the recipe
        class_weight: balanced        # or null
        tune: false                   # seeded search of each model's grid on the CV (tune_budget candidates)
        select: best                  # best spatial CV with cv.spatial_block, else repeated CV; or a model
        seed: 0
        cv: {scheme: kfold, folds: 5, repeats: 2, test_size: 0.3, spatial_block: 1000}
        baseline: ../deployed/metrics.json   # promotion gate (dir, metrics.json, model.json or URL)
        tolerance: 0.02
        out: models/{version}         # {version} becomes the content-hash version
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # no NaN scale, offset or resolution

    name: str = Field(
        default="lulc-model",
        description="Model name (the MLM item's mlm:name): a letter first, a letter or digit last, and "
        "letters, digits, '_', '.', '-' or spaces between; at least 3 characters.",
    )
    # (a) STAC imagery
    stac: str | None = Field(default=None, description="STAC API URL or static catalog path/URL.")
    collection: str = "sentinel-2-l2a"
    aoi: str | list[float] | dict[str, Any] | None = Field(
        default=None,
        description="bbox [w, s, e, n] in EPSG:4326, GeoJSON (a mapping), or a GeoJSON / any OGR file.",
    )
    datetime: str | None = Field(
        default=None,
        description="STAC datetime or interval (with seasons: the year); with a local image that records "
        "no acquisition date, its date (else model.json is dated by the file's modification time).",
    )
    seasons: list[Season] | None = Field(
        default=None,
        description="One composite per season (name, start and end as MM-DD) of the year `datetime` names; "
        "the features are every season's bands and indices side by side.",
    )
    max_cloud_cover: float | None = Field(default=None, ge=0, le=100)
    max_items: int | None = Field(default=None, ge=1, description="Keep at most this many items.")
    composite: Literal["median", "first-valid"] = "median"
    resolution: float | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Grid resolution in metres, 1 to 1,000 (0.001 trained a model no map could use).",
    )
    # (b) a local multi-band raster
    image: str | None = None
    image_bands: list[str] | None = Field(default=None, description="Band names of `image`, in band order.")
    scale: float | None = None
    offset: float | None = None
    # features
    bands: list[str] = Field(default_factory=lambda: ["blue", "green", "red", "nir"], min_length=1)
    indices: list[str] = Field(default_factory=list)
    # points and classes
    points: str | None = None
    points_crs: str | None = Field(default=None, description="CRS of points files that declare none.")
    max_pixels_per_polygon: int | None = Field(
        default=DEFAULT_PIXELS_PER_POLYGON,
        ge=0,
        description="Polygons give the pixel centres inside them; at most this many each (a seeded "
        "random subset of the valid ones: nodata and cloud never take a sample's place; 30 as sits' "
        "n_sam_pol: a polygon's pixels are alike, and all of a large field would swamp the samples and the "
        "training time, SVM's growing with their square). 0 or null: every pixel.",
    )
    label_field: str = "label"
    classes: str | None = None
    # models and accuracy
    models: list[str] = Field(default_factory=lambda: ["rf"], min_length=1)
    model_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    class_weight: Literal["balanced"] | None = Field(
        default=None,
        description="'balanced': weight each class by the inverse of its sample count (imbalanced samples).",
    )
    tune: bool = Field(
        default=False,
        description="Search each model's hyper-parameters on the (grouped) repeated CV before comparing.",
    )
    tune_budget: int = Field(default=8, ge=1, le=50, description="Candidates scored per model when tuning.")
    trust: bool = Field(
        default=True,
        description="Fit the area of applicability (DI in the ONNX graph) and calibrate conformal sets.",
    )
    conformal_coverage: float = Field(
        default=0.9, gt=0, lt=1, description="Nominal coverage of the calibrated class sets."
    )
    select: str = Field(
        default="best",
        description="'best' (highest spatial block CV accuracy with cv.spatial_block, else repeated CV) or a "
        "model name.",
    )
    seed: int = Field(
        default=0, ge=0, description="Seed of every random choice (scikit-learn takes 0 and up)."
    )
    cv: CvOptions = CvOptions()
    # promotion gate and output
    baseline: str | None = None
    tolerance: float = Field(default=0.02, ge=0, le=1, description="Allowed fall of OA and class F1.")
    out: str | None = None

    @field_validator("out")
    @classmethod
    def _only_version_is_replaced(cls, value: str | None) -> str | None:
        """Refuse a ``{...}`` in the output path other than ``{version}``.

        A typo: ``{verison}`` named a folder, exit 0 (CLI review).
        """
        others = sorted(set(re.findall(r"\{[^{}/]*\}", value or "")) - {"{version}"})
        if others:
            raise ValueError(
                f"{others[0]} in {value} is replaced by nothing: only {{version}} is (the model's "
                "content-hash version)"
            )
        return value

    @field_validator("name")
    @classmethod
    def _mlm_name(cls, value: str) -> str:
        if not re.fullmatch(MODEL_NAME_PATTERN, value):
            raise ValueError(
                f"{value!r} cannot name a model (STAC MLM's mlm:name): a letter first, a letter or digit "
                "last, at least 3 characters of letters, digits, '_', '.', '-' or spaces"
            )
        return value

    @field_validator("bands", "indices", "models", "image_bands", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("datetime", mode="before")
    @classmethod
    def _datetime_text(cls, value: object) -> object:
        """A year or date YAML reads as a number or a date (``datetime: 2025``) is meant as that text."""
        if isinstance(value, bool):
            return value  # refused as not a string
        if isinstance(value, int):
            return str(value)
        if isinstance(value, dt.date):  # a datetime is a date too
            return value.isoformat()
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainingConfig:
        unknown = [m for m in self.models if m not in MODEL_NAMES]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; known: {list(MODEL_NAMES)}")
        if self.select != "best" and self.select not in self.models:
            raise ValueError(f"select {self.select!r} is not one of the models {self.models}")
        if "svm" in self.models and (self.model_params.get("svm") or {}).get("probability", True) is not True:
            # refused with the recipe, not after sampling (make_estimator refuses it too)
            raise ValueError("model 'svm' needs probability: true (maps decide from class probabilities)")
        stray = sorted(set(self.model_params) - set(MODEL_NAMES))
        if stray:
            raise ValueError(f"model_params for unknown model(s) {stray}; known: {list(MODEL_NAMES)}")
        for name in self.model_params:  # of models not trained too: a typo there was never said (review)
            problem = params_problem(name, self.model_params.get(name) or {})
            if problem:
                raise ValueError(problem)
        band_problem = unknown_bands(self.bands)
        if band_problem:  # a typo (nri) would train a model no STAC imagery can feed
            raise ValueError(band_problem)
        try:
            check_features(self.bands, self.indices)
        except ContractError as exc:
            raise ValueError(str(exc)) from exc
        if isinstance(self.aoi, list) and len(self.aoi) != 4:
            raise ValueError(f"aoi bbox must have 4 numbers [w, s, e, n], got {self.aoi}")
        if "tune_budget" in self.model_fields_set and not self.tune:  # did nothing, exit 0 (review)
            raise ValueError("tune_budget counts the candidates of a search: give tune: true (--tune) too")
        if self.seasons is not None and not self.seasons:  # trained one composite, exit 0 (review)
            raise ValueError("seasons: [] names no season: leave it out for one composite of the datetime")
        if self.seasons:
            check_seasons(self.seasons)
            check_apart(self.seasons)
        return self

    def require_complete(self) -> None:
        """Raise ConfigError unless the recipe names points, exactly one imagery source and an output."""
        if self.points is None:
            raise ConfigError("no points: give --points FILE or `points:` in the config")
        if (self.stac is None) == (self.image is None):
            raise ConfigError(
                "give exactly one imagery source: --stac URL_OR_CATALOG (with --aoi, --datetime) "
                "or --image FILE.tif (with --bands)"
            )
        if self.stac is not None and self.aoi is None:
            raise ConfigError("STAC imagery needs an area of interest: --aoi w,s,e,n or --aoi FILE")
        if self.seasons and self.image is not None:
            raise ConfigError("seasons need STAC imagery (one composite per season); a local image is one")
        # keys of the other source were ignored, exit 0 (products review: the model as without them)
        if self.stac is not None:
            stray = [key for key in ("image_bands", "scale", "offset") if getattr(self, key) is not None]
            if stray:
                raise ConfigError(
                    f"{', '.join(stray)} read a local image (--image); STAC items carry their own band names "
                    "and scaling: leave them out"
                )
        if self.image is not None:
            stac_only = ("aoi", "resolution", "max_cloud_cover", "max_items", "collection", "composite")
            stray = [
                key for key in stac_only if key in self.model_fields_set and getattr(self, key) is not None
            ]
            if stray:
                raise ConfigError(
                    f"{', '.join(stray)} choose and composite STAC imagery (--stac); a local image is read "
                    "whole, on its own grid: leave them out"
                )
        if self.out is None:
            raise ConfigError("no output directory: give --out MODEL_DIR or `out:` in the config")


_PATH_KEYS = ("stac", "aoi", "points", "classes", "image", "baseline", "out")


def _is_url(value: str) -> bool:
    return "://" in value


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    resolved = dict(data)
    for key in _PATH_KEYS:
        value = resolved.get(key)
        if key == "aoi" and isinstance(value, str) and comma_numbers(value) is not None:
            continue  # "w,s,e,n" as --aoi takes it, not a file beside the recipe (diff review)
        if isinstance(value, str) and not _is_url(value) and not Path(value).is_absolute():
            resolved[key] = str((base / value).resolve())
    return resolved


def _empty_mapping(value: object) -> bool:
    return isinstance(value, dict) and not value


def load_config(
    path: str | Path,
    overrides: dict[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
    given_by: str = "the command's options",
) -> TrainingConfig:
    """Read ``training.yaml`` (paths relative to its folder), then apply non-None ``overrides`` (flags)."""
    path = Path(path)
    data = read_yaml(path, "training config", ConfigError)
    if not isinstance(data, dict):
        raise ConfigError(f"training config {path} must be a mapping of keys to values")
    return make_config(
        _resolve_paths(data, path.resolve().parent),
        overrides,
        origin=str(path),
        names=names,
        given_by=given_by,
    )


def make_config(
    data: dict[str, Any],
    overrides: dict[str, Any] | None = None,
    origin: str = "command-line flags",
    names: Mapping[str, str] | None = None,
    given_by: str = "the command's options",
) -> TrainingConfig:
    """Validate a recipe from a mapping plus flag overrides (flags win; ``cv`` keys merge).

    ``names``: the flag of each override key (``class_weight``, ``cv.scheme``: ``--class-weight``,
    ``--cv-scheme``), which an error about a value a flag gave names (the recipe's field was named: review).
    """
    merged = dict(data)
    given = {
        key: {k: v for k, v in value.items() if v is not None} if isinstance(value, dict) else value
        for key, value in (overrides or {}).items()
    }
    # not `value != {}`: a GeoDataFrame or an array compared so raised from pandas (notebook review)
    given = {key: value for key, value in given.items() if value is not None and not _empty_mapping(value)}
    if given and origin not in ("command-line flags", "keyword arguments"):  # a flag's fault, maybe
        origin = f"{origin} with {given_by}"
    for key, value in given.items():
        if key == "cv" and isinstance(value, dict):
            if merged.get("cv") is not None and not isinstance(merged["cv"], dict):
                raise ConfigError(
                    f"invalid training recipe ({origin}): cv must be a mapping, e.g. cv: {{folds: 5}}"
                )
            merged["cv"] = {**(merged.get("cv") or {}), **value}
        else:
            merged[key] = value
    flagged = {f"cv.{k}" for k in given.get("cv") or {}} | set(given)
    shown = {key: name for key, name in (names or {}).items() if key in flagged}
    try:
        return TrainingConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(
            f"invalid training recipe ({origin}): {validation_problems(exc, names=shown)}"
        ) from exc
