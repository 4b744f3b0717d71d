"""The error hierarchy of the shared core and the classifier service (no HTTP here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class LulcError(Exception):
    """Base of every error lulc-stac raises on purpose; its message is meant for the user."""


class InputError(LulcError):
    """The caller's input is malformed: geometry, CRS, datetime, file paths, options."""


class ContractError(LulcError):
    """A model contract is invalid, or cannot be honoured by this software or these inputs."""


class UpstreamError(LulcError):
    """A service the run depends on could not be reached, or failed: trying again later may succeed.

    A STAC API down or answering 5xx, a COG server failing every retry, an object store, a Dask cluster
    without workers. ``lulc`` exits 75 (``EX_TEMPFAIL``) on these, 2 on every other named error, so that
    a Job retries these and not bad input (``infra/k8s``: ``podFailurePolicy``).
    """


class SourceError(LulcError):
    """A STAC API, catalog or item cannot be read or understood."""


class SourceUnavailableError(SourceError, UpstreamError):
    """A STAC API could not be reached, or answered a server error (5xx), 429 or 408."""


class NoItemsError(SourceError):
    """A search matched no items (AOI outside every footprint, empty time window, ...)."""


class ReadError(LulcError):
    """Raster bytes could not be read, even after retries (server failure mid-read, corrupt file)."""


class ReadUnavailableError(ReadError, UpstreamError):
    """A raster's server failed every attempt to read it (HTTP errors, dropped connections)."""


class NoValidPixelsError(LulcError):
    """Every pixel of the request is masked (clouds, shadows, nodata)."""


class LimitError(LulcError):
    """A request exceeds a configured limit (AOI area, concurrent jobs, allow-list)."""


class ItemLimitError(LimitError):
    """A search found more items than one search, or one composite, may hold."""


def validation_problems(error: Any, what: str = "value", names: Mapping[str, str] | None = None) -> str:
    """Every problem of a pydantic ``ValidationError`` on one line, each as ``field: message``.

    Not ``str(error)``: that spans lines and ends each problem with a link to pydantic's documentation.
    ``names``: what to call a field (``cv.scheme``) instead, e.g. the flag that gave it (``--cv-scheme``).
    """
    problems = "; ".join(_problem(e, what, names or {}) for e in error.errors())
    return " ".join(problems.split())


def _problem(entry: Any, what: str, names: Mapping[str, str]) -> str:
    """``field: message``; a check of the whole value (no field) is its message alone, as it was raised."""
    message = str(entry["msg"])
    if entry.get("type") == "value_error":  # our own ValueError: pydantic prefixes "Value error, "
        message = message.removeprefix("Value error, ")
    where = ".".join(str(part) for part in entry["loc"])
    where = names.get(where, where)
    if not where and entry.get("type") == "value_error":
        return message
    return f"{where or what}: {message}"
