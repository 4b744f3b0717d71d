"""The model contract: what a model reads, how it is scaled, what it outputs; in ONNX and as an MLM item."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lulc.aoi import bbox_polygon
from lulc.classes import ClassTable
from lulc.errors import ContractError, validation_problems
from lulc.features import check_features, composite_feature_names
from lulc.local_files import read_json
from lulc.seasons import Season, check_seasons

SCHEMA_VERSION = "1.0"
"""Contract schema this software writes; it reads any ``1.x``."""

METADATA_KEY = "lulc:contract"
"""Key of the contract JSON in the ONNX file's ``metadata_props`` and in the MLM item."""

DEFAULT_MASK_SCL = [0, 1, 3, 8, 9, 10]
"""Sentinel-2 SCL classes masked by default: no data, saturated, cloud shadow, cloud (medium,
high probability) and thin cirrus."""

MLM_EXTENSIONS = [
    "https://stac-extensions.github.io/mlm/v1.4.0/schema.json",
    "https://stac-extensions.github.io/classification/v2.0.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
"""``mlm:framework_version`` must be semantic (``1.5.2``); a version that is not is left out."""


class _Strict(BaseModel):
    # NaN and infinity are no scale, offset, resolution or threshold: refused, not carried to every pixel
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Radiometry(_Strict):
    """How raw raster values become surface reflectance when no STAC metadata says so.

    ``reflectance = raw * scale + offset``. STAC items carry their own per-band scale and offset
    (see ``lulc.sentinel2``); these values apply to plain rasters such as ``--image`` files.
    """

    units: Literal["reflectance"] = "reflectance"
    scale: float = 1.0
    offset: float = 0.0


class Inputs(_Strict):
    """The bands a model reads and the grid and masking it expects."""

    bands: list[str] = Field(min_length=1, description="Band names, in feature order.")
    resolution: float = Field(gt=0, description="Ground sampling distance in metres.")
    radiometry: Radiometry = Radiometry()
    mask_scl: list[Annotated[int, Field(ge=0, le=11)]] = Field(
        default_factory=lambda: list(DEFAULT_MASK_SCL),
        description="Sentinel-2 scene classification (SCL) classes 0-11 masked as invalid.",
    )
    composite: Literal["median", "first-valid"] = "median"
    max_cloud_cover: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Items searched: eo:cloud_cover at most this percentage, as in training (a "
        "classification that names its own limit uses that); None: no limit.",
    )
    max_items: int | None = Field(
        default=None,
        ge=1,
        description="Of the items found for a composite, the least cloudy this many (lulc.sentinel2."
        "least_cloudy), as training composited them; None: all.",
    )
    seasons: list[Season] | None = Field(
        default=None,
        description="One composite per season (month-day windows of the classified year), features side "
        "by side in this order; None: one composite over the request's time window.",
    )

    @property
    def n_composites(self) -> int:
        """How many composites the model reads: one per season, or one."""
        return len(self.seasons) if self.seasons else 1


class Features(_Strict):
    """Derived features appended to the bands, computed by ``lulc.features``."""

    indices: list[str] = Field(default_factory=list)


class Outputs(_Strict):
    """Names of the ONNX graph's outputs and how the final label is decided."""

    label: str = "label"
    probabilities: str = "probabilities"
    decision: Literal["probabilities", "label"] = Field(
        default="probabilities",
        description=(
            "'probabilities': label = class of the largest rounded probability, lowest class "
            "order first on ties (the same rule in scikit-learn and ONNX); 'label': the graph's "
            "label output as is."
        ),
    )
    class_order: list[int] = Field(min_length=1, description="Class value of each probability column.")


class Applicability(_Strict):
    """The model's area of applicability (Meyer & Pebesma 2021): its ONNX graph outputs each pixel's DI."""

    output: str = Field(default="di", description="Name of the ONNX output giving each pixel's DI (float32).")
    threshold: float = Field(gt=0, description="DI above this is outside the area of applicability.")


class ClassSets(_Strict):
    """Calibrated class sets (split conformal prediction): class k is in a set when p_k >= its minimum.

    With ``class_min_probability`` (class-conditional, Mondrian calibration) each class has its own minimum;
    without it (contracts written before it existed) every class uses ``min_probability``.
    """

    coverage: float = Field(gt=0, lt=1, description="Nominal probability that a set holds the true class.")
    min_probability: float = Field(
        ge=0, le=1, description="1 - the calibrated nonconformity threshold (one for all classes)."
    )
    class_min_probability: list[Annotated[float, Field(ge=0, le=1)]] | None = Field(
        default=None,
        description="Per class of the class table, in table order: 1 - that class's calibrated threshold.",
    )

    def minimum_per_class(self, n_classes: int) -> list[float]:
        """The minimum probability of each class of the table (the one value repeated when not per class)."""
        return list(self.class_min_probability or [self.min_probability] * n_classes)


class Provenance(_Strict):
    """Where a model came from."""

    model_type: str
    training_data: str = ""
    time_window: str | None = None
    bbox: list[float] | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    software: dict[str, str] = Field(default_factory=dict)
    seed: int | None = None


class ModelContract(_Strict):
    """Everything needed to run a model correctly, without the code that trained it."""

    schema_version: str = SCHEMA_VERSION
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    inputs: Inputs
    features: Features = Features()
    classes: ClassTable
    nodata: Literal[255] = 255
    outputs: Outputs
    provenance: Provenance
    applicability: Applicability | None = None
    class_sets: ClassSets | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ModelContract:
        check_features(self.inputs.bands, self.features.indices)
        if self.inputs.seasons:
            check_seasons(self.inputs.seasons)
        if sorted(self.outputs.class_order) != sorted(self.classes.values):
            raise ValueError(
                f"outputs.class_order {self.outputs.class_order} does not list the class values "
                f"{self.classes.values}"
            )
        per_class = self.class_sets.class_min_probability if self.class_sets is not None else None
        if per_class is not None and len(per_class) != len(self.classes.classes):
            raise ValueError(
                f"class_sets.class_min_probability has {len(per_class)} values for "
                f"{len(self.classes.classes)} classes"
            )
        return self

    @property
    def feature_names(self) -> list[str]:
        """Feature columns of the model input: bands, then indices (per season, ``spring_red``, ...)."""
        seasons = [s.name for s in self.inputs.seasons] if self.inputs.seasons else None
        return composite_feature_names(self.inputs.bands, self.features.indices, seasons)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace variation) for embedding and hashing.

        ``inputs.seasons``, ``inputs.max_cloud_cover``, ``inputs.max_items``, ``applicability``,
        ``class_sets`` and ``class_sets.class_min_probability`` appear only when set, so contracts without
        them keep the bytes they had before these existed (a run's item id hashes them).
        """
        data = self.model_dump(mode="json")
        for key in ("seasons", "max_cloud_cover", "max_items"):
            if data["inputs"].get(key) is None:
                del data["inputs"][key]
        for key in ("applicability", "class_sets"):
            if data.get(key) is None:
                del data[key]
        if "class_sets" in data and data["class_sets"].get("class_min_probability") is None:
            del data["class_sets"]["class_min_probability"]
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def require_bands(self, available: list[str] | set[str], origin: str) -> None:
        """Raise ContractError naming what is missing unless ``available`` has every input band."""
        missing = [b for b in self.inputs.bands if b not in available]
        if missing:
            raise ContractError(
                f"model {self.name!r} needs band(s) {missing} that {origin} does not have "
                f"(it has {sorted(available)})"
            )


def parse_contract(data: object, origin: str) -> ModelContract:
    """Validate a contract from parsed JSON, refusing schema versions this software cannot honour."""
    if not isinstance(data, dict):
        raise ContractError(f"model contract in {origin} is not a JSON object")
    version = str(data.get("schema_version", ""))
    supported = SCHEMA_VERSION.split(".")[0]
    if version.split(".")[0] != supported:
        raise ContractError(
            f"model contract in {origin} has schema version {version or 'none'}; this lulc-stac "
            f"reads {supported}.x only: upgrade lulc-stac or re-export the model"
        )
    try:
        return ModelContract.model_validate(data)
    except ValidationError as exc:
        raise ContractError(f"model contract in {origin} is invalid: {validation_problems(exc)}") from exc


def contract_from_json(text: str, origin: str) -> ModelContract:
    """Parse contract JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"model contract in {origin} is not valid JSON: {exc}") from exc
    return parse_contract(data, origin)


def contract_from_metadata(metadata: dict[str, str], origin: str) -> ModelContract:
    """The contract from an ONNX model's custom metadata map."""
    text = metadata.get(METADATA_KEY)
    if text is None:
        raise ContractError(
            f"{origin} carries no lulc-stac model contract (metadata key {METADATA_KEY!r}); "
            "export it with `lulc train`"
        )
    return contract_from_json(text, origin)


def to_mlm_item(
    contract: ModelContract,
    model_href: str,
    checksum: str,
    datetime_utc: str,
    extra_assets: dict[str, dict[str, Any]] | None = None,
    size: int | None = None,
) -> dict[str, Any]:
    """The model as a STAC item with the MLM and classification extensions.

    Args:
        contract: the model contract (also embedded whole under ``lulc:contract``).
        model_href: href of the ONNX file, usually relative (``model.onnx``).
        checksum: multihash of the ONNX bytes (``file:checksum``).
        datetime_utc: the item's datetime, ISO 8601 with ``Z``.
        extra_assets: more assets (metrics, report, ...), keyed by asset name.
        size: bytes of the ONNX file (``file:size``), when known.
    """
    bbox = contract.provenance.bbox
    geometry: dict[str, Any] | None = None
    if bbox is not None:
        w, s, e, n = bbox
        geometry = (
            bbox_polygon(list(bbox))  # across the antimeridian: its two parts, split at ±180
            if w > e
            else {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
        )
    n_features = len(contract.feature_names)
    # the library that trained the model: LightGBM's own for `lgbm` (it was said to be scikit-learn)
    framework = "lightgbm" if "lightgbm" in contract.provenance.software else "scikit-learn"
    properties: dict[str, Any] = {
        "datetime": datetime_utc,
        "mlm:name": contract.name,
        "mlm:architecture": contract.provenance.model_type,
        "mlm:tasks": ["classification", "semantic-segmentation"],
        "mlm:framework": framework,
        "mlm:accelerator": "amd64",
        "mlm:accelerator_constrained": False,
        "mlm:input": [
            {
                "name": "features",
                "bands": contract.feature_names,
                "input": {
                    "shape": [-1, n_features],
                    "dim_order": ["batch", "bands"],
                    "data_type": "float32",
                },
                "pre_processing_function": {
                    "format": "python",
                    "expression": "lulc.features:compute_features",
                },
            }
        ],
        "mlm:output": [
            {
                "name": contract.outputs.label,
                "tasks": ["classification"],
                "result": {"shape": [-1], "dim_order": ["batch"], "data_type": "int64"},
                "classification:classes": contract.classes.to_stac(),
            }
        ],
        "version": contract.version,
        METADATA_KEY: json.loads(contract.to_json()),
    }
    framework_version = contract.provenance.software.get(framework, "")
    if _SEMVER.match(framework_version):
        properties["mlm:framework_version"] = framework_version
    if contract.provenance.time_window:
        properties["lulc:time_window"] = contract.provenance.time_window
    assets: dict[str, dict[str, Any]] = {
        "model": {
            "href": model_href,
            "type": "application/octet-stream; framework=onnx; profile=onnx",
            "title": f"{contract.name} ({contract.provenance.model_type}, ONNX)",
            "roles": ["mlm:model"],
            "mlm:artifact_type": "onnx",
            "file:checksum": checksum,
            **({"file:size": size} if size is not None else {}),
            # MLM requires the bands its input names to be described: one float32 feature each.
            "raster:bands": [{"name": name, "data_type": "float32"} for name in contract.feature_names],
        }
    }
    assets.update(extra_assets or {})
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": MLM_EXTENSIONS,
        "id": f"{contract.name}-{contract.version}",
        "geometry": geometry,
        "properties": properties,
        "links": [],
        "assets": assets,
    }
    if bbox is not None:
        item["bbox"] = list(bbox)
    return item


def contract_from_mlm_item(item: dict[str, Any], origin: str) -> ModelContract:
    """The contract carried by an MLM item written by ``to_mlm_item``."""
    data = item.get("properties", {}).get(METADATA_KEY)
    if data is None:
        raise ContractError(f"STAC item {origin} carries no {METADATA_KEY!r} property")
    return parse_contract(data, origin)


def load_contract(path: str | Path) -> ModelContract:
    """Read a contract from an MLM item JSON file or a bare contract JSON file."""
    path = Path(path)
    data = read_json(path, "model file", ContractError)
    if isinstance(data, dict) and data.get("type") == "Feature":
        return contract_from_mlm_item(data, str(path))
    return parse_contract(data, str(path))
