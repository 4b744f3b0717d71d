"""The HTTP status of each lulc-stac error class: the base map the service and the tiler both extend.

A plain mapping (no web framework here). The status of an error is that of the first class of its
MRO found in the map, so the most specific class wins and subclasses inherit their parent's status.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    UpstreamError,
)

STATUS_BY_ERROR: Mapping[type[BaseException], int] = {
    InputError: 400,  # malformed or invalid AOI, datetime, CRS, options
    HostNotAllowedError: 403,  # a URL outside the allow-list
    NoItemsError: 404,  # no imagery for this AOI and time window
    LimitError: 413,  # a request over a configured limit (AOI area, vertices, body size)
    ContractError: 422,  # the model cannot run on these inputs, or is corrupt
    NoValidPixelsError: 422,  # everything masked (clouds, nodata) in the time window
    SourceError: 502,  # the STAC API or catalog failed
    ReadError: 502,  # a COG server failed, even after retries
    UpstreamError: 502,  # a service the run depends on failed (the service's own map refines some)
    LulcError: 500,
}
"""Status per lulc error class; each app adds its own classes with ``{**STATUS_BY_ERROR, ...}``."""

MAX_DETAIL_CHARS = 1000
"""Longest error message sent back: a message quoting its input (a 10 MB datetime) is cut here."""


def status_for(error: BaseException, statuses: Mapping[type[BaseException], int] = STATUS_BY_ERROR) -> int:
    """The status of ``error``: the entry of the most specific class of its MRO; 500 if none has one."""
    for cls in type(error).__mro__:
        if cls in statuses:
            return statuses[cls]
    return 500


def public_detail(error: BaseException) -> str:
    """The message a client may see: a lulc error's own (cut to ``MAX_DETAIL_CHARS``), else only the type.

    Messages of unexpected errors may carry internals (paths, SQL, secrets); the log has them.
    """
    if isinstance(error, LulcError):
        return clip(str(error))
    return f"internal error ({type(error).__name__}); see the log"


def clip(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"
