"""An invalid ``--datetime``: one line saying what is wrong, ending with the forms that are accepted."""

from __future__ import annotations

import pytest

from lulc.datetimes import parse_datetime_interval
from lulc.errors import InputError

FORMS = "use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss"
EXAMPLE = "e.g. 2024-06-01/2024-08-31"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2021/06/01", "3 parts separated by '/', where an interval has two;"),  # not pystac-client's words
        ("01-06-2021", "'01-06-2021': not a year, month, date or RFC 3339 time;"),
        ("2024-06-01/01-08-2024", "'01-08-2024' is not a year, month, date or RFC 3339 time;"),
        ("2024-06-01T10:00", "not a year, month, date or RFC 3339 time;"),  # a time needs its seconds
        ("2024-13-01", "month must be in 1..12;"),
        ("2024-06-01T25:00:00Z", "hour must be in 0..23;"),  # passes the pattern, not the parse
    ],
)
def test_an_invalid_datetime_ends_with_the_forms_accepted(value: str, reason: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_datetime_interval(value)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"invalid datetime {value!r}")
    assert reason in message
    assert FORMS in message
    assert message.endswith(f"{EXAMPLE} or 2024-06/..")


@pytest.mark.parametrize(
    "value",
    [
        "2024",
        "2024-06",
        "2024-06-01",
        "2024-06-01T10:30:00",
        "2024-06-01T10:30:00.5Z",
        "2024-06-01T10:30:00+02:00",
        "2024-06-01/2024-08-31",
        "2024-06/..",
        "../2024-08-31",
    ],
)
def test_every_form_the_message_names_is_accepted(value: str) -> None:
    """The forms the message offers are what pystac-client really accepts (``DATETIME_REGEX``)."""
    assert parse_datetime_interval(value) is not None
