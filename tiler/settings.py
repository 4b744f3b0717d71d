"""Settings of the tiler deployable (environment prefix ``LULC_TILER_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lulc.settings_types import StrList, split_list

DEMO_OUTPUT = Path("demo-output")
"""Where ``make demo`` writes the demo world, model and classification (relative to the repo root)."""


def _default_allow() -> list[str]:
    """The current directory and the demo output folder (relative folders resolve against the cwd)."""
    return [".", str(DEMO_OUTPUT)]


class TilerSettings(BaseSettings):
    """Everything the tiler reads from its environment; built once by the caller, never at import."""

    model_config = SettingsConfigDict(env_prefix="LULC_TILER_", extra="ignore")

    allow: StrList = Field(
        default_factory=_default_allow,
        description=(
            "Prefixes the tiler may read from: local folders and http(s) URL prefixes "
            "(comma-separated). Anything else gets 403. Default: the current directory and the demo output "
            "folder."
        ),
    )
    cors_origins: StrList = Field(
        default_factory=list,
        description='Origins allowed by CORS (comma-separated; "*" for any). Empty: no CORS headers.',
    )
    cache_control: str = Field(
        default="public, max-age=3600",
        description="Cache-Control header sent with tiles, legends and other image responses.",
    )
    models_dir: Path | None = Field(
        default=None,
        description=(
            "Folder of trained models, searched recursively: every model contract JSON (an MLM item such as "
            "model.json, or a bare contract) and class-table YAML registers a named colormap "
            "`lulc_<model name>` at start-up."
        ),
    )
    colormaps: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Extra class-table YAML files registered as named colormaps `lulc_<file stem>`.",
    )
    runs_dir: Path | None = Field(
        default=None,
        description=(
            "Folder searched (recursively) for classification runs: folders holding classes.tif and "
            "item.json. The web map offers a selector when there are several. It is added to the allow-list."
        ),
    )
    statistics_max_pixels: int = Field(
        default=50_000_000,
        gt=0,
        description="Largest polygon window (in map pixels) POST /statistics reads; beyond it: 400.",
    )
    host: str = Field(default="127.0.0.1", description="Interface `lulc tiler` listens on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port `lulc tiler` listens on.")

    @field_validator("allow", "cors_origins", "colormaps", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return split_list(value)
