"""Seasons of a model: time windows given by month and day, so one model classifies any year.

A seasonal model reads one composite per season (``spring``: ``03-20`` to ``05-10``, ...) and its features
are each season's bands and indices side by side. The contract keeps the windows relative to the year;
``lulc classify --datetime 2024`` reads the same windows of 2024.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lulc.datetimes import parse_datetime_interval
from lulc.errors import InputError

_MONTH_DAY = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")


def _month_day(text: str, year: int, first: bool = False) -> dt.date:
    """``MM-DD`` in ``year``; 29 February in a common year is the 28th, or 1 March as a ``first`` day.

    A season starting on 29 February must not start a day early.
    """
    month, day = (int(p) for p in text.split("-"))
    if month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        return dt.date(year, 3, 1) if first else dt.date(year, 2, 28)
    return dt.date(year, month, day)


class Season(BaseModel):
    """One time window of the year: a name and its first and last day (inclusive), as ``MM-DD``.

    A season whose last day comes before its first in the calendar runs into the next year (a southern summer,
    ``12-01`` to ``02-28``) and belongs to the year it ends in, as December to February is labelled by its
    February.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="Lower-case name, e.g. spring.")
    start: str = Field(description="First day, MM-DD.")
    end: str = Field(description="Last day, MM-DD (before start: the season runs from the previous year).")

    @model_validator(mode="after")
    def _valid(self) -> Season:
        for text in (self.start, self.end):
            if not _MONTH_DAY.match(text):
                raise ValueError(f"season {self.name!r}: {text!r} is not a month-day MM-DD")
            try:
                _month_day(text, 2000)  # a real day of a leap year
            except ValueError:
                raise ValueError(f"season {self.name!r}: {text!r} is no day of the year") from None
        return self

    @property
    def crosses_new_year(self) -> bool:
        """Whether the season starts in the year before the one it belongs to."""
        return _month_day(self.end, 2000) < _month_day(self.start, 2000)

    def window(self, year: int) -> str:
        """The season of ``year`` as an RFC 3339 interval, whole days in UTC."""
        start = _month_day(self.start, year - 1 if self.crosses_new_year else year, first=True)
        end = _month_day(self.end, year)
        return f"{start:%Y-%m-%d}T00:00:00Z/{end:%Y-%m-%d}T23:59:59Z"


def check_seasons(seasons: Sequence[Season]) -> None:
    """Raise ``ValueError`` for duplicate season names."""
    names = [s.name for s in seasons]
    if len(set(names)) != len(names):
        raise ValueError(f"season names must differ, got {names}")


def check_apart(seasons: Sequence[Season]) -> None:
    """Raise ``ValueError`` for two seasons sharing a day (checked when a model is trained, not loaded).

    A scene of the shared days fed both composites: with one item a season, "autumn" (07-10 to 11-15) took
    the same July scene as "summer" (06-20 to 08-20), twice the features of one date (products review).
    """
    days = {season.name: _days(season) for season in seasons}
    for i, a in enumerate(seasons):
        for b in seasons[i + 1 :]:
            if days[a.name] & days[b.name]:
                raise ValueError(
                    f"seasons {a.name} ({a.start} to {a.end}) and {b.name} ({b.start} to {b.end}) share "
                    "days: a scene of those days would feed both composites; give windows apart"
                )


def _days(season: Season) -> set[int]:
    """The days of a leap year a season covers (ordinal days, 1-366; across the new year: both ends)."""
    first = _month_day(season.start, 2000).timetuple().tm_yday
    last = _month_day(season.end, 2000).timetuple().tm_yday
    return set(range(first, 367)) | set(range(1, last + 1)) if last < first else set(range(first, last + 1))


def season_year(datetime_text: str | None) -> int:
    """The one calendar year a seasonal model is asked to classify (``2024``, or the interval of that year).

    A whole year only: the seasons are windows of the year, so a narrower window (``2025-01``) would be
    read as its year's seasons anyway and a "January" map made of April to October imagery.

    Raises:
        InputError: No datetime, one spanning several years, or less than a calendar year.
    """
    start, end = parse_datetime_interval(datetime_text) or (None, None)
    if start is None or end is None:
        raise InputError("a seasonal model classifies one year: give the year, e.g. --datetime 2024")
    if start.year != end.year:
        raise InputError(
            f"a seasonal model classifies one year at a time; {datetime_text!r} spans {start.year}-{end.year}"
        )
    first = dt.datetime(start.year, 1, 1, tzinfo=dt.UTC)
    last = dt.datetime(start.year, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    if start > first or end < last:
        raise InputError(
            f"a seasonal model classifies whole years (its seasons are windows of the year): "
            f"{datetime_text!r} is part of {start.year}; give the year, e.g. --datetime {start.year}"
        )
    return start.year
