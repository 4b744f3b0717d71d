"""The service's error-to-status map (the core's plus its own errors), shared by the app and the handler."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from lulc import http_status
from lulc.allowlist import AllowList
from lulc.errors import LulcError
from lulc.http_status import clip, public_detail
from lulc.redaction import hide, relative_folders
from service.dask_runner import NoWorkersError
from service.jobs import BusyError, JobCancelledError, JobFinishedError, JobInterruptedError, JobNotFoundError
from service.model_registry import ModelNotFoundError
from service.publish import PublishConflictError, PublishError, destination_folder
from service.settings import ServiceSettings

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


DEFAULT_SOURCE = "[the service's default]"
"""What an answer names the service's own STAC source by."""
OUTPUT_STORE = "[the service's output store]"
"""What an answer names ``output_url`` by when no ``output_public_url`` says where clients find the maps."""


def server_texts(settings: ServiceSettings) -> dict[str, str]:
    """What the service's errors may name of its own set-up, each with what an answer says instead.

    HTTP review: a "no imagery" 404 named the default catalog's absolute path, a relative source in a
    relative local folder came back as the server's absolute path, a failed publication named the private
    bucket ``output_public_url`` stands for. The log keeps the messages whole.
    """
    texts = relative_folders(settings.local_folders)  # as set, which is how a client names files in them
    # as set and as the source's messages name it, resolved and normalised (not on the list: every order
    # without a source is refused, naming only what it was given); a static catalog's folder too, for its
    # items' and children's messages
    sources = [settings.stac_url]
    with suppress(LulcError):
        sources.append(AllowList.of(settings.allowed_hosts, settings.local_folders).check(settings.stac_url))
    for source in sources:
        source = source.rstrip("/")
        texts[source] = DEFAULT_SOURCE
        # its folder too, by a URL or an absolute path (a relative one is a local folder's name, as set, and a
        # local folder as set keeps the name clients give it)
        absolute = "://" in source or source.startswith("/")
        if absolute and source.lower().endswith((".json", ".geojson")):
            texts.setdefault(source.rsplit("/", 1)[0], DEFAULT_SOURCE)
    if settings.output_url:
        public = (settings.output_public_url or OUTPUT_STORE).rstrip("/")
        texts[settings.output_url.rstrip("/")] = public
        with suppress(LulcError):  # else refused at start-up
            texts[destination_folder(settings.output_url).rstrip("/")] = public
    return texts


def error_body(error: BaseException, hidden: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The JSON body of an error response: ``{"detail": message, "type": class name}``.

    Unexpected errors (not ``LulcError``) are not described beyond their type: their messages may
    carry internals; the service log has the traceback. ``hidden``: texts of the server's set-up and what
    to say instead (``server_texts``), the longest replaced first.
    """
    if not isinstance(error, LulcError):
        return {"detail": public_detail(error), "type": "InternalError"}
    return {"detail": clip(hide(str(error), hidden or {})), "type": type(error).__name__}
