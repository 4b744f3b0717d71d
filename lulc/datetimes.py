"""STAC datetimes: an instant or interval as the user writes it, normalised as pystac-client sends it."""

from __future__ import annotations

import datetime as dt

import pystac

from lulc.errors import InputError

DATETIME_FORMS = (
    "use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff][Z|+hh:mm] (UTC without an offset), or "
    "START/END of two of them with .. for an open end, e.g. 2024-06-01/2024-08-31 or 2024-06/.."
)
"""What every invalid datetime's message ends with: the forms pystac-client's ``ItemSearch`` accepts."""


def _invalid(value: str, reason: object) -> InputError:
    """The one-line error of an invalid datetime: what is wrong with it, then the forms accepted."""
    text = " ".join(str(reason).split())
    prefix = "invalid datetime component: "  # pystac-client's words for a part its pattern does not match
    if text.startswith(prefix):
        part = text.removeprefix(prefix)
        subject = "not" if part == value.strip() else f"{part!r} is not"
        text = f"{subject} a year, month, date or RFC 3339 time"
    elif text.startswith("too many datetime components"):  # "(max=2, actual=3)": its parser's words
        parts = value.strip().count("/") + 1
        text = f"{parts} parts separated by '/', where an interval has two"
    else:
        text = text.removesuffix(f": {value.strip()}")  # pystac-client ends some messages with the value
    return InputError(f"invalid datetime {value!r}: {text}; {DATETIME_FORMS}")


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
        raise _invalid(value, exc) from exc
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
        raise _invalid(str(value), exc) from exc  # not None: format_datetime gave a value
    if len(bounds) == 1:
        return bounds[0], bounds[0]
    start, end = bounds[0], bounds[1]
    if start is not None and end is not None and start > end:
        raise InputError(f"invalid datetime {value!r}: the interval ends before it starts")
    return start, end


def rfc3339_utc(value: dt.datetime) -> str:
    """RFC 3339 in UTC (``Z``), with the fraction of a second when there is one.

    Cut to the second, a written time could fall before the acquisition it dates.
    """
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def acquisition_window(value: str, names: str) -> tuple[str, str]:
    """``value`` (``--datetime``) as the acquisition of ``names``, inputs that record none: both ends, UTC.

    One rule for ``lulc classify`` and ``lulc train``: an open end is no acquisition time.

    Raises:
        InputError: ``value`` is not a datetime or interval, or has an open end.
    """
    start, end = parse_datetime_interval(value) or (None, None)
    if start is None or end is None:
        raise InputError(
            f"{names} records no acquisition date and --datetime {value!r} is open-ended: "
            "give the acquisition date or an interval with both ends, e.g. --datetime 2024-06-01"
        )
    return rfc3339_utc(start), rfc3339_utc(end)
