"""The serverless entry point: one classification per invocation, answered in AWS Lambda's proxy style.

Event (a dict, or an API Gateway / function-URL event whose ``body`` is that dict as JSON)::

    {"aoi": {GeoJSON}, "datetime": "2024-06-01/2024-08-31", "model": "demo",
     "output_url": "s3://bucket/prefix/run-1", "stac": "https://...",   # stac optional
     "crs": "EPSG:32633", "confidence": true, "max_cloud_cover": 20,    # optional
     "mmu_ha": 0.5, "mmu_connectivity": 4,                              # optional: also clean/
     "overwrite": false}                                                # optional: replace a run there

``model`` is a model id in ``LULC_SERVICE_MODELS_DIR`` or a path to a model directory / ONNX file in
that folder or in ``LULC_SERVICE_LOCAL_FOLDERS`` (any other path is an unknown model). Outputs go to
``output_url`` exactly (a local path, ``file://`` or ``s3://``); a folder that already holds a published run
is refused before any work unless ``overwrite`` is true. A proxy event's ``body`` may be base64
(``isBase64Encoded``).
The answer is ``{"statusCode": 200, "headers": {...}, "body": JSON}`` with the STAC item and output
URLs, or a 4xx/5xx status with ``{"detail": ..., "type": ...}`` as body.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lulc.errors import InputError, validation_problems
from lulc.redaction import redact_logs
from service.http_errors import error_body, status_for
from service.model_registry import MODEL_ID, ModelDirectory
from service.output_crs import check_aoi, check_before_aoi
from service.publish import check_destination
from service.request import MAX_MMU_HA
from service.runner import ModelRunner
from service.settings import ServiceSettings
from service.workflow import Order, run_order, s3_options

log = logging.getLogger("service.handler")


class ClassifyEvent(BaseModel):
    """The event of one invocation."""

    model_config = ConfigDict(extra="forbid")

    aoi: dict[str, Any] = Field(
        description="GeoJSON (Multi)Polygon, Feature or FeatureCollection, EPSG:4326."
    )
    datetime: str = Field(min_length=1, max_length=100, description="RFC 3339 time window of the imagery.")
    model: str = Field(
        min_length=1, max_length=4096, description="Model id (in the models directory) or model path."
    )
    output_url: str = Field(min_length=1, description="Destination folder: local path, file:// or s3://.")
    stac: str | None = Field(default=None, description="Item source; default the service's `stac_url`.")
    crs: str | None = Field(default=None, max_length=200)
    confidence: bool | None = None
    max_cloud_cover: float | None = Field(default=None, ge=0, le=100)
    mmu_ha: float | None = Field(default=None, ge=0, le=MAX_MMU_HA)
    mmu_connectivity: Literal[4, 8] = 4
    overwrite: bool = Field(
        default=False, description="Replace a run already published at `output_url` (else that is a 400)."
    )

    @field_validator("datetime")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the time window is blank")
        return value.strip()


def handler(event: dict[str, Any] | str, context: Any = None) -> dict[str, Any]:
    """Lambda-style entry point: settings from ``LULC_SERVICE_*`` variables, then ``handle``."""
    try:
        settings = ServiceSettings()
    except ValidationError as exc:
        # the settings' names only: pydantic's text quotes the values, and messages may too (an endpoint
        # URL, an allow-list entry with user info): secrets never reach the caller or the log (review)
        names = sorted({"LULC_SERVICE_" + str(e["loc"][0]).upper() for e in exc.errors() if e.get("loc")})
        log.error("invalid LULC_SERVICE_* configuration: %s", ", ".join(names))
        detail = f"invalid service configuration: {', '.join(names)} (see the settings table of the README)"
        return _response(500, {"detail": detail, "type": "ConfigurationError"})
    return handle(event, settings)


def handle(event: dict[str, Any] | str, settings: ServiceSettings) -> dict[str, Any]:
    """Run one classification event with explicit settings; never raises."""
    redact_logs()  # the platform's log handlers: a SAS token in a URL GDAL names is cut (lulc.redaction)
    try:
        parsed = parse_event(event)
        order = Order.of(parsed)
        model = resolve_model(parsed.model, settings)  # the checks needing no AOI geometry first
        check_before_aoi(order, settings, model.contract)
        area = check_aoi(order, settings, model.contract.inputs.resolution)
        check_destination(parsed.output_url, s3=s3_options(settings), replace=parsed.overwrite)
        run_id = uuid.uuid4().hex
        settings.output_dir.mkdir(parents=True, exist_ok=True)
        work_dir = Path(tempfile.mkdtemp(prefix=f"lulc-{run_id[:8]}-", dir=settings.output_dir))
        outcome = run_order(
            order, model, settings, work_dir=work_dir, destination=parsed.output_url, replace=parsed.overwrite
        )
    except Exception as exc:  # every failure becomes a response, as the platform expects
        status = status_for(exc)
        if status >= 500:
            log.exception("classification failed")
        return _response(status, error_body(exc))
    except BaseException as exc:  # a Rust library's panic (obstore's PanicException) is no Exception
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        log.exception("classification failed")
        return _response(500, error_body(exc))
    body = {
        "output_url": outcome.output_url,
        "area_km2": area,
        "assets": outcome.assets,
        "tiles": outcome.tiles,
        "item": outcome.item,
        "stats": outcome.stats,
    }
    return _response(200, body)


def parse_event(event: dict[str, Any] | str) -> ClassifyEvent:
    """The event as a ``ClassifyEvent`` (a JSON string, a dict, or a proxy event with a JSON ``body``).

    Raises:
        InputError: not JSON, or fields missing, unknown or of the wrong type (all named).
    """
    data: Any = event
    try:
        if isinstance(data, str | bytes):
            data = json.loads(data)
        if isinstance(data, dict) and isinstance(data.get("body"), str) and "aoi" not in data:
            body: str | bytes = data["body"]
            if data.get("isBase64Encoded") is True:  # API Gateway and function URLs may encode the body
                body = base64.b64decode(body, validate=True)
            data = json.loads(body)
    except (json.JSONDecodeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InputError(f"the event is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"the event must be a JSON object, got {type(data).__name__}")
    if "aoi" not in data and ("requestContext" in data or "httpMethod" in data or "body" in data):
        raise InputError("the request has no body: send the classification order as its JSON body")
    try:
        return ClassifyEvent.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"invalid event: {validation_problems(exc, 'event')}") from exc


@functools.lru_cache(maxsize=8)
def model_directory(root: Path, threads: int, public_url: str | None = None) -> ModelDirectory:
    """One ``ModelDirectory`` per folder, thread count and public URL per process.

    A warm serverless container thus reuses its loaded models (and their ONNX Runtime sessions).
    """
    return ModelDirectory(root, threads=threads, public_url=public_url)


def resolve_model(model: str, settings: ServiceSettings) -> ModelRunner:
    """A model id in ``settings.models_dir``, else a path to a model under it or under ``local_folders``.

    Any other path is an unknown model, as a missing file is (review: any file of the function's disk was
    opened, ``/etc/passwd`` answered 422 "not a readable ONNX model").
    """
    directory = model_directory(settings.models_dir, settings.threads, settings.models_public_url)
    path = Path(model)
    try:
        exists = path.exists()
    except OSError:  # a name too long for the file system, ...: no such model file either
        exists = False
    if (MODEL_ID.match(model) and (settings.models_dir / model).is_dir()) or not exists:
        return directory.get(model)  # raises ModelNotFoundError for an unknown id
    if not _in_model_folders(path, settings):
        return directory.get(model)  # unknown, as a missing file is: nothing said about the rest of the disk
    from service.runner import load_model

    return load_model(path, threads=settings.threads)


def _in_model_folders(path: Path, settings: ServiceSettings) -> bool:
    """Whether ``path`` lies in ``models_dir`` or a local folder, as written (``..`` folded) or resolved.

    As written too: a model folder may be the operator's link to a version elsewhere (``demo -> ../v3``).
    """
    folders = [Path(settings.models_dir), *(Path(f) for f in settings.local_folders)]
    written = Path(os.path.abspath(path))
    resolved = path.resolve()
    for folder in folders:
        for base in {Path(os.path.abspath(folder)), folder.resolve()}:
            if written.is_relative_to(base) or resolved.is_relative_to(base):
                return True
    return False


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
