"""Request parameters that do not fit the data are the caller's mistake (400), not the tiler's (500).

rio-tiler and TiTiler check a parameter's syntax but not whether it fits the dataset: ``nodata=5e7``
on a byte raster, ``expression=b1/b2`` or ``bidx=3`` on a one-band map, an empty asset name, a polygon
with coordinates no raster window can hold, ``algorithm_params=null``. They then fail deep inside
numpy or rasterio with ``TypeError``, ``ValueError``, ``IndexError``, ``KeyError`` or ``OverflowError``.

Two wrappers turn exactly those failures, at exactly those two boundaries, into ``BadParameterError``:
``checked_reader`` around the public read methods of a rio-tiler reader class (the only code run
with the request's read options), and ``checked_dependency`` around a TiTiler parameter dependency.
Everything else that fails stays a 500 (logged once by ``lulc.http_guard``).
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


def _checked_method(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def checked(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except PARAMETER_FAILURES as exc:
            raise _refuse(exc) from exc

    return checked


def checked_reader(reader: R) -> R:
    """A subclass of the rio-tiler ``reader`` whose read methods answer unfitting options with 400."""
    methods = {name: _checked_method(getattr(reader, name)) for name in READ_METHODS if hasattr(reader, name)}
    return type(f"Checked{reader.__name__}", (reader,), {"__doc__": reader.__doc__, **methods})  # type: ignore[return-value]


def checked_dependency(dependency: Callable[..., Any]) -> Callable[..., Any]:
    """A TiTiler parameter dependency (same signature) whose unfitting values get 400."""

    @functools.wraps(dependency)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            return dependency(*args, **kwargs)
        except PARAMETER_FAILURES as exc:
            raise _refuse(exc) from exc

    return checked
