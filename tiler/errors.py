"""The tiler's errors and the one place that maps every error it can meet to an HTTP status and JSON."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from rasterio._err import CPLE_BaseError  # GDAL/PROJ errors raised outside dataset I/O
from rasterio.errors import RasterioError, RasterioIOError
from rio_tiler import errors as rt
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from titiler.core.errors import BadRequestError, TileNotFoundError

from lulc import http_status
from lulc.errors import LulcError, SourceError, SourceUnavailableError, UpstreamError
from lulc.gdal_env import forget_cached_reads
from lulc.http_status import clip, status_for
from lulc.raster_failures import failure_kind
from lulc.redaction import hide, redact_signatures

logger = logging.getLogger(__name__)


class TilerError(LulcError):
    """Base of the errors the tiler raises on purpose."""


class NotAllowedError(TilerError):
    """The URL or path is outside the allow-list."""


class BadParameterError(TilerError):
    """A request parameter or body is malformed or unusable."""


class NotFoundError(TilerError):
    """The dataset, item or run does not exist."""


class NotARasterError(TilerError):
    """The URL exists but is not a raster (or STAC item) GDAL can read."""


STATUS_BY_ERROR: dict[type[BaseException], int] = {
    **http_status.STATUS_BY_ERROR,
    SourceError: 400,  # here the caller named the item: one that cannot be used is their mistake
    SourceUnavailableError: 502,  # ... but not its server's failure
    NotAllowedError: 403,
    BadParameterError: 400,
    NotFoundError: 404,
    NotARasterError: 400,
    UpstreamError: 502,  # a remote server failed while the tiler read from it
    BadRequestError: 400,
    TileNotFoundError: 404,
    rt.TileOutsideBounds: 404,
    rt.PointOutsideBounds: 404,
    rt.InvalidAssetName: 404,
    rt.InvalidBandName: 404,
    rt.RioTilerError: 400,  # every other rio-tiler error: a parameter that cannot be honoured
    CPLE_BaseError: 400,
}
"""The core's statuses (``lulc.http_status``) extended with the tiler's, TiTiler's and rio-tiler's errors.

The status of an error is that of the most specific class of its MRO listed here.
"""


def raster_error_status(exc: RasterioError) -> tuple[int, str]:
    """Status and message for a GDAL failure: missing (404), not a raster (400), remote failure (502)."""
    text = str(exc)
    kind = failure_kind(exc)
    if kind == "missing":
        return 404, f"dataset not found: {text}"
    if kind == "not-a-raster":
        return 400, f"not a raster GDAL can read: {text}"
    if kind == "upstream":
        return 502, f"reading the dataset failed upstream: {text}"
    return 400, f"cannot read the dataset: {text}"


def error_body(status: int, detail: object, kind: str = "") -> dict[str, object]:
    """The tiler's JSON error body: ``{"detail": ..., "status": ...}``."""
    return {"detail": detail, "status": status}


def _error_response(status: int, detail: object) -> JSONResponse:
    return JSONResponse(error_body(status, detail), status_code=status)


def _as_given(message: str, url: str | None) -> str:
    """``message`` naming a relative local ``url`` as the client gave it, not by the server's absolute path.

    HTTP review: ``url=runs/missing.tif`` answered "dataset not found: /srv/tiler/runs/missing.tif": the
    server's folders told to anyone.
    """
    if not url or "://" in url or url.startswith("/"):
        return message
    try:
        absolute = str(Path(url).resolve())
    except (OSError, RuntimeError, ValueError):
        return message
    # as a whole path only: "url 'runs/../../../etc/passwd'" became "runs/../../..runs/../../../etc/passwd"
    return hide(message, {absolute: url})


def _known_error(request: Request, exc: Exception) -> JSONResponse:
    """Our, TiTiler's and rio-tiler's errors and GDAL failures, each with its status."""
    if isinstance(exc, RasterioError):
        status, message = raster_error_status(exc)
        url = request.query_params.get("url")
        if isinstance(exc, RasterioIOError) and url:
            forget_cached_reads(url)  # else GDAL answers the next request for it from a cached failure
    else:
        status, message = status_for(exc, STATUS_BY_ERROR), str(exc)
    if status >= 500:  # whole, for the operator (the signatures cut)
        logger.warning("%s %s: %s", request.method, request.url.path, clip(redact_signatures(message)))
    message = _as_given(message, request.query_params.get("url"))
    # the paths of files the url led to (a series' items, an item's assets) by the folders as set
    message = clip(redact_signatures(hide(message, getattr(request.app.state, "hidden_texts", {}))))
    return _error_response(status, message)


def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else str(exc)
    return _error_response(400, _jsonable(errors))


def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    detail = exc.detail if isinstance(exc, StarletteHTTPException) else str(exc)
    response = _error_response(status, detail)
    if isinstance(exc, StarletteHTTPException) and exc.headers:
        response.headers.update(exc.headers)
    return response


def _jsonable(value: object) -> object:
    """Validation errors carry exception objects in ``ctx``, and the input: keep short JSON values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if k != "input"}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, int | float | bool):
        return value
    return clip(str(value), 200)


def add_error_handlers(app: FastAPI) -> None:
    """Install the JSON error handlers: every known error gets its status, bad parameters get 400.

    None for ``Exception``: Starlette re-raises after such a handler's answer and uvicorn then drops the
    kept-alive connection. ``lulc.http_guard.RequestGuard`` answers unexpected errors (a JSON 500).
    """
    for exc_class in (*STATUS_BY_ERROR, RasterioError):
        app.add_exception_handler(exc_class, _known_error)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
