"""A recipe's ``datetime: 2025`` (as the README's seasonal recipe writes it) is the year, not an error."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from training.config import TrainingConfig
from training.errors import ConfigError


@pytest.mark.parametrize(
    ("written", "meant"),
    [("2025", "2025"), ("2025-06-01", "2025-06-01"), ("'2025-06/2025-08'", "2025-06/2025-08")],
)
def test_a_year_or_a_date_yaml_reads_as_a_number_or_date_is_that_text(written: str, meant: str) -> None:
    recipe = yaml.safe_load(f"datetime: {written}\nimage: x.tif\n")
    assert isinstance(recipe["datetime"], int | dt.date | str)
    assert TrainingConfig(**recipe).datetime == meant


def test_a_boolean_datetime_is_still_refused() -> None:
    with pytest.raises((ConfigError, ValueError)):
        TrainingConfig(datetime=True, image="x.tif")  # type: ignore[arg-type]
