"""Request parameters that do not fit the data are the caller's mistake (400), not the tiler's (500).

rio-tiler and TiTiler check a parameter's syntax but not whether it fits the dataset: ``nodata=5e7``
on a byte raster, ``expression=b1/b2`` or ``bidx=3`` on a one-band map, an empty asset name, a polygon
with coordinates no raster window can hold, ``algorithm_params=null``. They then fail deep inside
numpy or rasterio with ``TypeError``, ``ValueError``, ``IndexError``, ``KeyError`` or ``OverflowError``.

Wrappers turn exactly those failures, at exactly these boundaries, into ``BadParameterError``:
``checked_reader`` around the public read methods of a rio-tiler reader class (the only code run
with the request's read options), ``checked_dependency`` around a TiTiler parameter dependency and the
algorithm it may return (run on the image read: ``algorithm=normalizedIndex`` on a one-band map), and
``checked_function`` around TiTiler's ``render_image`` (the request's ``color_formula``, ``rescale`` and
colour map: ``color_formula=gamma rgb 1.5`` on a one-band map). Everything else that fails stays a 500
(logged once by ``lulc.http_guard``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from tiler.errors import BadParameterError

PARAMETER_FAILURES = (TypeError, ValueError, IndexError, KeyError, OverflowError)
"""What numpy, rasterio and rio-tiler raise for options that do not fit the dataset."""

READ_METHODS = ("tile", "part", "preview", "point", "feature", "statistics", "merged_statistics", "info")
"""The reader methods TiTiler's endpoints call with the request's options."""

R = TypeVar("R", bound=type)


def _refuse(exc: BaseException) -> BadParameterError:
    return BadParameterError(f"the request's parameters do not fit this dataset: {type(exc).__name__}: {exc}")


def checked_function(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (or a method) whose failures of ``PARAMETER_FAILURES`` are ``BadParameterError``."""

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except PARAMETER_FAILURES as exc:
            raise _refuse(exc) from exc

    return checked


def checked_reader(reader: R) -> R:
    """A subclass of the rio-tiler ``reader`` whose read methods answer unfitting options with 400."""
    methods = {
        name: checked_function(getattr(reader, name)) for name in READ_METHODS if hasattr(reader, name)
    }
    return type(f"Checked{reader.__name__}", (reader,), {"__doc__": reader.__doc__, **methods})  # type: ignore[return-value]


def checked_dependency(dependency: Callable[..., Any]) -> Callable[..., Any]:
    """A TiTiler parameter dependency (same signature) whose unfitting values get 400.

    What it returns, when it is a function (an algorithm TiTiler applies to the image read), is checked too.
    """

    @functools.wraps(dependency)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            made = dependency(*args, **kwargs)
        except PARAMETER_FAILURES as exc:
            raise _refuse(exc) from exc
        return checked_function(made) if callable(made) else made

    return checked
