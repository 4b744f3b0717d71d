"""Settings of the classifier service (``LULC_SERVICE_*`` environment variables), read when asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lulc.settings_types import StrList, optional_http_url, sas_hosts_field, sas_token_url_field, split_list


class ServiceSettings(BaseSettings):
    """Configuration of ``lulc serve`` and the serverless handler; every field is one environment variable."""

    model_config = SettingsConfigDict(env_prefix="LULC_SERVICE_", extra="ignore", frozen=True)

    # Models and inputs
    models_dir: Path = Field(
        default=Path("models"),
        description=(
            "Directory holding one sub-directory per model (`model.onnx` with its embedded contract); "
            "the sub-directory name is the model id listed by `GET /models`."
        ),
    )
    models_public_url: str | None = Field(
        default=None,
        description=(
            "URL under which clients reach the folders of `models_dir` (`<url>/<model id>/model.json`): each "
            "output item's `derived_from` link to its model points there. Unset: an item published to "
            "`output_url` carries no link to its model (it names it in `lulc:model`)."
        ),
    )
    stac_url: str = Field(
        default="https://earth-search.aws.element84.com/v1",
        description="Default item source: a STAC API root URL, or a static catalog (path or URL).",
    )
    collection: str = Field(default="sentinel-2-l2a", description="STAC collection searched for input items.")
    max_cloud_cover: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Skip items whose `eo:cloud_cover` is above this percentage (items at exactly it are "
        "used: 0 keeps cloud-free items); unset: the model's own limit (its training recipe's "
        "`max_cloud_cover`), if any.",
    )
    allowed_hosts: StrList = Field(
        default_factory=lambda: [
            "earth-search.aws.element84.com",
            "sentinel-cogs.s3.us-west-2.amazonaws.com",
        ],
        description=(
            "Hosts (`example.com`, `*.example.com`, `host:port`: http and https) or URL prefixes "
            "(`https://host/path/`, `s3://bucket/`: a bucket only so) the service may fetch STAC metadata "
            "and imagery from; anything else is refused with 403. JSON list or comma-separated."
        ),
    )
    sas_token_url: str | None = sas_token_url_field()
    sas_hosts: StrList = sas_hosts_field()
    local_folders: StrList = Field(
        default_factory=list,
        description=(
            "Local folders the item source and asset hrefs may be read from (a static catalog on a mounted "
            "volume); symlinks are resolved and must stay inside. Empty by default: a request must not make "
            "the service read its own filesystem. A path outside these folders and a missing one get the "
            "same 403. JSON list or comma-separated."
        ),
    )

    # Outputs
    output_dir: Path = Field(
        default=Path("outputs"),
        description=(
            "Local working directory: each job writes `<output_dir>/<job id>/` (classes.tif, confidence.tif, "
            "item.json, stats.json). It is the final location when `output_url` is not set."
        ),
    )
    output_url: str | None = Field(
        default=None,
        description=(
            "Where finished outputs are published, one folder per job: a local directory, `file://` URL or "
            "`s3://bucket/prefix`. Unset: outputs stay in `output_dir`."
        ),
    )
    output_public_url: str | None = Field(
        default=None,
        description=(
            "Base URL under which the tiler and clients reach published outputs (e.g. "
            "`http://minio:9000/bucket/prefix`); defaults to `output_url` (or the output directory)."
        ),
    )
    keep_local_outputs: bool = Field(
        default=False,
        description="Keep the job's working directory after publishing it to `output_url`.",
    )
    s3_endpoint: str | None = Field(
        default=None,
        description="Endpoint URL of an S3-compatible store (MinIO: `http://minio:9000`); unset for AWS S3.",
    )
    s3_region: str = Field(default="us-east-1", description="S3 region.")
    s3_access_key_id: str | None = Field(
        default=None, description="S3 access key id; unset: the usual AWS credential chain."
    )
    s3_secret_access_key: SecretStr | None = Field(default=None, description="S3 secret access key.")
    s3_session_token: SecretStr | None = Field(default=None, description="S3 session token (temporary keys).")
    s3_allow_http: bool = Field(
        default=False, description="Allow a plain-HTTP S3 endpoint (local MinIO); never for real deployments."
    )
    s3_virtual_hosted_style: bool = Field(
        default=False,
        description="Address buckets as `bucket.endpoint`, not `endpoint/bucket` (MinIO wants path style).",
    )

    # Limits
    max_aoi_km2: float = Field(
        default=2500.0, gt=0, description="Largest AOI accepted, in km²; larger requests get 413."
    )
    sync_max_km2: float = Field(
        default=25.0,
        ge=0,
        description="AOIs up to this area (km²) are classified within the request (200); larger: 202 + job.",
    )
    max_concurrent_jobs: int = Field(
        default=2, ge=1, description="Classifications running at once (sync and async); beyond it: 429."
    )
    max_waiting_requests: int = Field(
        default=8,
        ge=1,
        description="`POST /classify` requests read and checked at once besides the running jobs (each may "
        "hold a parsed AOI of up to `max_body_bytes`, about 12x that in memory); more: 429 before the body "
        "is read.",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Seconds a `POST /classify` body may take to arrive (it holds a place); more: 408.",
    )
    retry_after_seconds: int = Field(
        default=30,
        ge=1,
        description="`Retry-After` value (seconds) sent with 429 (busy) and 503 (no Dask worker yet).",
    )
    max_finished_jobs: int = Field(
        default=1000,
        ge=1,
        description="Finished jobs remembered for `GET /jobs/{id}`; the oldest are forgotten.",
    )
    max_body_bytes: int = Field(
        default=4_000_000,
        ge=1024,
        description="Largest request body (bytes) the HTTP API reads; larger: 413 before reading it.",
    )
    max_aoi_vertices: int = Field(
        default=100_000,
        ge=4,
        description="Most AOI vertices (all rings of all polygons) a request may have; more: 413.",
    )
    max_items: int = Field(
        default=500,
        ge=1,
        description="Most STAC items one composite of a request may hold (every block reads every item: an "
        "open or years-long datetime window over an AOI finds hundreds); more: 413 before any pixel is read.",
    )
    max_search_items: int = Field(
        default=5000,
        ge=1,
        description="Most STAC items one search may read: the candidates a model's least-cloudy pick chooses "
        "from, before `max_items` applies. The search asks the API for one more and stops paging there (a "
        "static catalog is walked until one more); finding it: 413. Without it an API that always offers a "
        "next page was followed for 440,000 items (1.6 GB).",
    )
    max_response_bytes: int = Field(
        default=64 * 2**20,
        ge=1024,
        description="Largest body (bytes, decoded) of one STAC API or catalog response the service reads; a "
        "larger `Content-Length` is refused unread and a longer body is cut there: 502. Without it an "
        "endless body grew the service by 3 GB in 12 s.",
    )
    max_grid_pixels: int = Field(
        default=100_000_000,
        ge=1,
        description="Largest output grid a request may make (width x height of the AOI's bounding box at the "
        "model's resolution, in the output CRS): an AOI of two small parts far apart, or a CRS whose metres "
        "are not ground metres, is small in km² only; larger: 413.",
    )

    # Engine
    threads: int = Field(default=1, ge=1, description="ONNX Runtime intra-op threads per inference session.")
    workers: int = Field(
        default=2,
        ge=1,
        description="Blocks read and classified at once per job (reading and inferring threads).",
    )
    block_size: int = Field(default=512, ge=64, description="Output block (and COG tile) size in pixels.")
    confidence: bool = Field(
        default=True, description="Also write the confidence COG (top-class probability)."
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="Run blocks on Dask: scheduler address (`tcp://host:8786`) or `local:N`; unset: no "
        "Dask. A run waits up to 120 s for a first worker (then 503), keeps four tasks per worker thread in "
        "flight as workers join, and every worker must hold the same model file (checked by its SHA-256).",
    )

    # HTTP
    host: str = Field(
        default="127.0.0.1", description="Address `lulc serve` binds (`0.0.0.0` in containers)."
    )
    port: int = Field(default=8000, ge=1, le=65535, description="Port `lulc serve` listens on.")
    auth_token: SecretStr | None = Field(
        default=None,
        description="Bearer token required on every route but `/healthz`; unset: no authentication.",
    )
    tiler_url: str | None = Field(
        default=None,
        description="Base URL of the tiler (`http://localhost:8001`); responses then carry XYZ tile URLs.",
    )
    cors_origins: StrList = Field(
        default_factory=list,
        description="Origins allowed by CORS (JSON list or comma-separated); empty: no CORS.",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        default="info", description="Log level of the service and of uvicorn."
    )

    @field_validator("allowed_hosts", "sas_hosts", "local_folders", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("allowed_hosts", "sas_hosts")
    @classmethod
    def _hosts_parse(cls, value: list[str]) -> list[str]:
        from lulc.allowlist import AllowList

        AllowList.of(value)  # a bad entry fails at start-up, not on the first request
        return value

    @field_validator("sas_token_url")
    @classmethod
    def _token_url(cls, value: str | None) -> str | None:
        return optional_http_url(value, "https://planetarycomputer.microsoft.com/api/sas/v1/token")

    @model_validator(mode="after")
    def _token_url_allowed(self) -> ServiceSettings:
        """A token service off the allow-list fails at start-up, not on every job's first read."""
        from lulc.allowlist import AllowList

        if self.sas_token_url and not AllowList.of(self.allowed_hosts).allows(self.sas_token_url):
            raise ValueError(f"sas_token_url {self.sas_token_url} is not on allowed_hosts")
        return self

    @field_validator("output_url")
    @classmethod
    def _absolute_folder(cls, value: str | None) -> str | None:
        """A relative local folder as the absolute path it names when the service starts.

        Jobs answered ``item_url: "published/<job>/item.json"``, a path relative to a working directory no
        client knows.
        """
        from urllib.parse import urlparse

        if value is None or urlparse(value).scheme or not value.strip():
            return value  # a URL (file:/data/out, s3://...) is read as it is
        return str(Path(value).expanduser().resolve())

    @field_validator("s3_endpoint")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        # empty: AWS S3, as unset; the S3 client panicked on `minio:9000` (a Rust panic, past every error
        # handler: review)
        return optional_http_url(value, "http://minio:9000")

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value
