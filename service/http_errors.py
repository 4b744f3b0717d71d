"""The service's error-to-status map (the core's plus its own errors), shared by the app and the handler."""

from __future__ import annotations

from typing import Any

from lulc import http_status
from lulc.errors import LulcError
from lulc.http_status import public_detail
from service.dask_runner import NoWorkersError
from service.jobs import BusyError, JobCancelledError, JobFinishedError, JobInterruptedError, JobNotFoundError
from service.model_registry import ModelNotFoundError
from service.publish import PublishConflictError, PublishError

STATUS_BY_ERROR = {
    **http_status.STATUS_BY_ERROR,
    BusyError: 429,  # every job slot taken: retry after Retry-After seconds
    JobInterruptedError: 503,  # the service restarted while the job ran: not a bug, submitting again will do
    JobNotFoundError: 404,
    JobCancelledError: 409,  # cancelled before it finished (DELETE /jobs/{id}, or its client went away)
    JobFinishedError: 409,  # a DELETE of a job that has already finished: nothing to cancel
    ModelNotFoundError: 404,
    NoWorkersError: 503,  # the Dask cluster has no worker yet: retry once its workers are up
    PublishError: 502,  # the output store failed
    PublishConflictError: 409,  # another run is being published to the same destination
}
"""The core's statuses (``lulc.http_status``) extended with the service's own errors."""


def status_for(error: BaseException) -> int:
    """The HTTP status of an error: its most specific class's entry above, 500 for anything unexpected."""
    return http_status.status_for(error, STATUS_BY_ERROR)


def error_body(error: BaseException) -> dict[str, Any]:
    """The JSON body of an error response: ``{"detail": message, "type": class name}``.

    Unexpected errors (not ``LulcError``) are not described beyond their type: their messages may
    carry internals; the service log has the traceback.
    """
    if not isinstance(error, LulcError):
        return {"detail": public_detail(error), "type": "InternalError"}
    return {"detail": public_detail(error), "type": type(error).__name__}
