"""Settings of the tiler deployable (environment prefix ``LULC_TILER_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lulc.allowlist import AllowList
from lulc.settings_types import StrList, optional_http_url, sas_hosts_field, sas_token_url_field, split_list

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
        description=(
            "Cache-Control header sent with tiles, legends and other image responses. With `auth_token` set "
            "it is sent `private` (its `public` and `s-maxage` dropped) with `Vary: Authorization`: a shared "
            "cache must not hand an authorised tile to anyone."
        ),
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
    max_image_size: int = Field(
        default=2048,
        ge=256,
        le=8192,
        description=(
            "Largest width or height in pixels of any image the tiler reads or renders (`width`, `height`, "
            "`max_size`, `tilesize` of tiles, previews, statistics and colormap pictures); beyond it: 400."
        ),
    )
    max_bands: int = Field(
        default=8,
        ge=1,
        le=256,
        description=(
            "Most bands one request reads or computes: `bidx` entries, `assets` (an asset's `|bidx=` option "
            "counting each band it names) and the distinct bands (`b1`, ...) an `expression` reads, or its "
            "`;`-separated outputs if more; more: 400, before any read. Each band is an image of up to "
            "max_image_size pixels a side (32 MiB as float64 at 2048): 8 covers true/false-colour "
            "composites and band-math indices, while 40 repeats of one band took 2.2 GB."
        ),
    )
    max_histogram_bins: int = Field(
        default=1024,
        ge=1,
        le=1_000_000,
        description=(
            "Most histogram bins of a statistics request (`histogram_bins`, a count or bin edges less one), "
            "and most categories (`c`) or percentiles (`p`); more: 400. A class map has at most 256 values; "
            "20 million bins took 22 s and 1.7 GB."
        ),
    )
    max_body_bytes: int = Field(
        default=4_000_000,
        ge=1024,
        description="Largest request body (bytes) read, e.g. a POST /statistics polygon; larger: 413 unread.",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds a request body (a POST /statistics polygon, ...) may take to arrive; more: 408. "
        "Without it a client sending a brace and then nothing held its connection and body for good.",
    )
    max_body_requests: int = Field(
        default=16,
        ge=1,
        description="Requests with a body inside the tiler at once (being read, then answered); more: 429 "
        "with `Retry-After`, the body unread. Each holds up to max_body_bytes: 100 stalled 4 MB bodies held "
        "450 MB.",
    )
    max_body_requests_per_client: int = Field(
        default=4,
        ge=1,
        description="As max_body_requests, from one client address: one client stalling its bodies cannot "
        "hold every place. Behind a proxy the address is the forwarded one where uvicorn trusts the proxy "
        "(its `FORWARDED_ALLOW_IPS` variable); else every client is the proxy's address.",
    )
    retry_after_seconds: int = Field(
        default=5, ge=1, description="`Retry-After` value (seconds) sent with 429 (max_body_requests)."
    )
    max_aoi_vertices: int = Field(
        default=100_000,
        ge=4,
        description="Most vertices of a POST /statistics polygon (all rings), and of a POST "
        "/cog/statistics or /stac/statistics body; more: 413.",
    )
    max_features: int = Field(
        default=50,
        ge=1,
        description="Most features of a FeatureCollection POST /cog/statistics or /stac/statistics reads "
        "(one image read each, up to max_image_size pixels a side); more: 413.",
    )
    max_coverage_pixels: int = Field(
        default=2**29,
        ge=2**20,
        le=2**34,
        description="Most cells of the grid POST /cog/statistics and /stac/statistics rasterise a feature on "
        "to weigh edge pixels by their share inside it (a byte each): the image read, at most `max_size` "
        "(or `width` x `height`) pixels a side, times `cover_scale` (default 10) squared; more: 400, before "
        "any read. The default lets the largest image (2048) use the default cover_scale.",
    )
    max_series_periods: int = Field(
        default=120,
        ge=1,
        description="Most periods (item links) of a collection POST /statistics/series counts, each a map "
        "read of up to statistics_max_pixels; more: 413, before any is read. 120: ten years of months.",
    )
    upstream_timeout_seconds: int = Field(
        default=10,
        ge=1,
        le=600,
        description="Seconds one request to a remote map's host may take: each of GDAL's reads of the map "
        "(tried once more, then 502), its redirect check and the read of its STAC item for the class "
        "names. GDAL's batch settings (60 s, 5 retries: a timed-out read is retried too) held a tile of a "
        "host that never answers for over 6 minutes. Other JSON documents (a `/stac` item, a series) keep "
        "10 s a read and 30 s in all.",
    )
    max_response_bytes: int = Field(
        default=16 * 2**20,
        ge=1024,
        description="Largest JSON document (bytes) the tiler reads: a map's STAC item, a run's item or "
        "collection, local or remote; a larger `Content-Length` is not read and a longer body is read no "
        "further: the `/stac` routes answer 502, elsewhere it is logged as a warning and counts as absent (a "
        "legend falls back to the map's colour table). Without it an endless body from an allowed host grew "
        "the tiler without bound.",
    )
    sas_token_url: str | None = sas_token_url_field()
    sas_hosts: StrList = sas_hosts_field()
    auth_token: SecretStr | None = Field(
        default=None,
        description=(
            "Bearer token required on every route but `/healthz` and the web map's own page and files; "
            "unset: no authentication. The web map asks for it once per browser session (or takes it from "
            "`#token=...` in its address) and sends it as the header on every request, tiles included."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Interface `lulc tiler` listens on.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port `lulc tiler` listens on.")

    @field_validator("allow", "sas_hosts", "cors_origins", "colormaps", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return split_list(value)

    @field_validator("sas_token_url")
    @classmethod
    def _token_url(cls, value: str | None) -> str | None:
        return optional_http_url(value, "https://planetarycomputer.microsoft.com/api/sas/v1/token")

    @field_validator("allow")
    @classmethod
    def _allowable(cls, value: list[str]) -> list[str]:
        """Each entry a URL prefix or a path (``ftp://x`` was an "unexpected ValueError" at start-up)."""
        AllowList.from_prefixes(value)  # relative folders resolve later, against the app's base
        return value
