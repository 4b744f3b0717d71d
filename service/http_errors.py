"""The one mapping from lulc-stac errors to HTTP status codes, shared by the app and the handler."""

from __future__ import annotations

from typing import Any

from lulc.allowlist import HostNotAllowedError
from lulc.errors import (
    ContractError,
    InputError,
    LimitError,
    LulcError,
    NoItemsError,
    NoValidPixelsError,
    ReadError,
    SourceError,
)
from service.jobs import BusyError, JobNotFoundError
from service.model_registry import ModelNotFoundError
from service.publish import PublishError

STATUS_BY_ERROR: tuple[tuple[type[LulcError], int], ...] = (
    # Most specific first: the first class an error is an instance of decides its status.
    (BusyError, 429),  # every job slot taken: retry after Retry-After seconds
    (HostNotAllowedError, 403),  # a URL outside the allow-list
    (JobNotFoundError, 404),
    (ModelNotFoundError, 404),
    (LimitError, 413),  # AOI over the size limit
    (NoItemsError, 404),  # no imagery for this AOI and time window
    (PublishError, 502),  # the output store failed
    (SourceError, 502),  # the STAC API or catalog failed
    (ReadError, 502),  # the COG server failed, even after retries
    (InputError, 400),  # malformed or invalid AOI, datetime, CRS, options
    (ContractError, 422),  # the model cannot run on these inputs, or is corrupt
    (NoValidPixelsError, 422),  # everything masked (clouds, nodata) in the time window
    (LulcError, 500),
)


def status_for(error: BaseException) -> int:
    """The HTTP status of an error: its class's entry above, 500 for anything unexpected."""
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 500


def error_body(error: BaseException) -> dict[str, Any]:
    """The JSON body of an error response: ``{"detail": message, "type": class name}``.

    Unexpected errors (not ``LulcError``) are not described beyond their type: their messages may
    carry internals; the service log has the traceback.
    """
    if isinstance(error, LulcError):
        return {"detail": str(error), "type": type(error).__name__}
    return {
        "detail": f"internal error ({type(error).__name__}); see the service log",
        "type": "InternalError",
    }
