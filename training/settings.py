"""Deployment settings of the training job (environment variables ``LULC_TRAINING_*``)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lulc.settings_types import StrList, optional_http_url, sas_hosts_field, sas_token_url_field, split_list


class TrainingSettings(BaseSettings):
    """How the training job runs on this machine; the recipe itself lives in ``TrainingConfig``."""

    model_config = SettingsConfigDict(env_prefix="LULC_TRAINING_", extra="ignore")

    n_jobs: int = Field(default=1, ge=1, description="Threads for estimators that support them.")
    onnx_threads: int = Field(
        default=2, ge=1, description="onnxruntime intra-op threads in the parity check (as the service)."
    )
    parity_pixels: int = Field(
        default=20000, ge=0, description="Random image pixels compared between ONNX and scikit-learn."
    )
    parity_threshold: float = Field(
        default=0.9999, gt=0, le=1, description="Minimum label agreement ONNX vs scikit-learn."
    )
    min_overall_accuracy: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Promotion floor: a model whose hold-out overall accuracy is below it is refused and not "
        "written (set by the deployment, not the recipe; with or without --baseline).",
    )
    min_class_f1: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Promotion floor: a model with any class's hold-out F1 below it is refused, not written.",
    )
    chunk_size: int = Field(default=512, ge=64, description="Chunk (block) size of STAC composites, pixels.")
    sas_token_url: str | None = sas_token_url_field()
    sas_hosts: StrList = sas_hosts_field()
    importance_repeats: int = Field(default=5, ge=1, description="Repeats of permutation feature importance.")
    aoa_max_samples: int = Field(
        default=2000,
        ge=10,
        description="Training samples kept as the area of applicability's reference (a seeded subset beyond):"
        " each classified pixel's DI costs one distance per sample.",
    )
    polygon_batch_pixels: int = Field(
        default=1_000_000,
        ge=1,
        description="Polygon pixel centres sampled at a time, whole polygons each (about 120 bytes a centre "
        "for 4 bands until its polygon's draw; a block two parts share is read by both); a larger polygon "
        "with a pixel cap is read in strips of it, a byte a centre, then its drawn pixels again. The samples "
        "are the same whatever it is: 10.2 M centres took 1.2 GiB at once, 0.17 GiB in parts of 1 M "
        "(bench/polygon_sampling.py).",
    )
    class_set_folds: int = Field(
        default=50,
        ge=2,
        le=1000,
        description="Folds of the out-of-fold scores the class sets calibrate on (at most the smallest "
        "class's samples or polygons; one model refit each), so fold models score as the shipped one does. "
        "With the recipe's 5 CV folds the demo's forest class was covered 94 % for a nominal 90 % "
        "(bench/coverage.py).",
    )

    @field_validator("sas_hosts", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        return split_list(value)

    @field_validator("sas_token_url")
    @classmethod
    def _token_url(cls, value: str | None) -> str | None:
        return optional_http_url(value, "https://planetarycomputer.microsoft.com/api/sas/v1/token")
