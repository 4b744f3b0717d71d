"""STAC datetimes: an instant or interval as the user writes it, normalised as pystac-client sends it."""

from __future__ import annotations

import datetime as dt

import pystac

from lulc.errors import InputError


def format_datetime(value: str | None) -> str | None:
    """An RFC 3339 instant or interval normalised as pystac-client sends it (UTC, dates expanded).

    ``2024-06`` becomes ``2024-06-01T00:00:00Z/2024-06-30T23:59:59Z``; open ends stay ``..``.

    Raises:
        InputError: The value is not a datetime or interval.
    """
    if value is None or not value.strip():
        return None
    from pystac_client.item_search import ItemSearch

    try:
        # ItemSearch only formats its parameters here; nothing is requested until results are read.
        formatted = ItemSearch("http://127.0.0.1/search", datetime=value.strip()).get_parameters()
    except Exception as exc:  # pystac-client raises bare Exception/ValueError for bad datetimes
        raise InputError(f"invalid datetime {value!r}: {exc}") from exc
    result = formatted.get("datetime")
    return str(result) if result is not None else None


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def parse_datetime_interval(value: str | None) -> tuple[dt.datetime | None, dt.datetime | None] | None:
    """``(start, end)`` aware UTC datetimes (``None`` for an open end), or ``None`` for no filter.

    Raises:
        InputError: The value is not a datetime or interval.
    """
    formatted = format_datetime(value)
    if formatted is None:
        return None
    parts = formatted.split("/")
    try:
        # in UTC whatever offset was given: periods are cut and labelled in UTC (service.series)
        bounds = [None if p in ("..", "") else _utc(pystac.utils.str_to_datetime(p)) for p in parts]
    except ValueError as exc:
        raise InputError(f"invalid datetime {value!r}: {exc}") from exc
    if len(bounds) == 1:
        return bounds[0], bounds[0]
    start, end = bounds[0], bounds[1]
    if start is not None and end is not None and start > end:
        raise InputError(f"invalid datetime {value!r}: the interval ends before it starts")
    return start, end
