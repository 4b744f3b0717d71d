"""The tiler's errors and the one place that maps every error it can meet to an HTTP status and JSON."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from rasterio._err import CPLE_BaseError  # GDAL/PROJ errors raised outside dataset I/O
from rasterio.errors import RasterioError, RasterioIOError
from rio_tiler import errors as rt
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from titiler.core.errors import BadRequestError, TileNotFoundError

from lulc.errors import InputError, LimitError, LulcError, SourceError

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


class UpstreamError(TilerError):
    """A remote server failed while the tiler read from it."""


STATUS_CODES: dict[type[Exception], int] = {
    NotAllowedError: 403,
    BadParameterError: 400,
    NotFoundError: 404,
    NotARasterError: 400,
    UpstreamError: 502,
    InputError: 400,
    LimitError: 400,
    SourceError: 400,
    LulcError: 400,
    BadRequestError: 400,
    TileNotFoundError: 404,
    rt.TileOutsideBounds: 404,
    rt.PointOutsideBounds: 404,
    rt.InvalidAssetName: 404,
    rt.InvalidBandName: 404,
    rt.MissingAssets: 400,
    rt.MissingBands: 400,
    rt.InvalidColorFormat: 400,
    rt.InvalidColorMapName: 400,
    rt.InvalidExpression: 400,
    rt.InvalidFormat: 400,
    rt.InvalidBufferSize: 400,
    rt.InvalidBounds: 400,
    rt.MaxArraySizeError: 400,
    rt.AssetAsBandError: 400,
    rt.InvalidPointDataError: 400,
    rt.RioTilerError: 400,
    CPLE_BaseError: 400,
}
"""Status code per exception class; Starlette picks the handler of the most specific class in the MRO."""

_NOT_FOUND = re.compile(r"No such file|does not exist|HTTP response code: 404|\b404\b", re.IGNORECASE)
_NOT_RASTER = re.compile(r"not recognized as (being in )?a supported file format|not a (valid )?TIFF", re.I)


def raster_error_status(exc: RasterioError) -> tuple[int, str]:
    """Status and message for a GDAL failure: missing (404), not a raster (400), remote failure (502)."""
    text = str(exc)
    if _NOT_FOUND.search(text):
        return 404, f"dataset not found: {text}"
    if _NOT_RASTER.search(text):
        return 400, f"not a raster GDAL can read: {text}"
    if isinstance(exc, RasterioIOError) and re.search(r"HTTP|curl", text, re.IGNORECASE):
        return 502, f"reading the dataset failed upstream: {text}"
    return 400, f"cannot read the dataset: {text}"


def _error_body(status: int, detail: object) -> JSONResponse:
    return JSONResponse({"detail": detail, "status": status}, status_code=status)


def _handler(status: int) -> Callable[[Request, Exception], JSONResponse]:
    def handle(request: Request, exc: Exception) -> JSONResponse:
        return _error_body(status, str(exc))

    return handle


def _raster_handler(request: Request, exc: Exception) -> JSONResponse:
    status, message = raster_error_status(exc) if isinstance(exc, RasterioError) else (400, str(exc))
    if status >= 500:
        logger.warning("%s %s: %s", request.method, request.url.path, message)
    return _error_body(status, message)


def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else str(exc)
    return _error_body(400, _jsonable(errors))


def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    detail = exc.detail if isinstance(exc, StarletteHTTPException) else str(exc)
    response = _error_body(status, detail)
    if isinstance(exc, StarletteHTTPException) and exc.headers:
        response.headers.update(exc.headers)
    return response


def _jsonable(value: object) -> object:
    """Validation errors carry exception objects in ``ctx``; keep only JSON-friendly values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _error_body(500, f"internal error ({type(exc).__name__}); see the tiler's log")


def add_error_handlers(app: FastAPI) -> None:
    """Install the JSON error handlers: every known error gets its status, bad parameters get 400."""
    for exc_class, status in STATUS_CODES.items():
        app.add_exception_handler(exc_class, _handler(status))
    app.add_exception_handler(RasterioError, _raster_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
