"""A map's item gives its acquisitions' times as they are, fractions of a second included."""

from __future__ import annotations

from datetime import UTC, datetime

from lulc.pixels import SourceRef
from service.engine import acquisition_range
from service.request import ClassifyRequest


def test_acquisition_times_keep_their_fraction_of_a_second() -> None:
    """Cut to the second, 01:37:45.024 was written as 01:37:45, before the acquisition it dates."""
    sources = [
        SourceRef("b", None, datetime(2023, 6, 12, 1, 37, 45, 24_000, tzinfo=UTC)),
        SourceRef("a", None, datetime(2023, 6, 2, 1, 37, 40, tzinfo=UTC)),
    ]
    start, end = acquisition_range(ClassifyRequest(aoi=None, datetime=None), sources)
    assert (start, end) == ("2023-06-02T01:37:40Z", "2023-06-12T01:37:45.024000Z")
