"""Season windows: a southern summer across the new year, leap days, and the year a seasonal model maps."""

from __future__ import annotations

import pytest

from lulc.errors import InputError
from lulc.seasons import Season, season_year


def test_a_season_across_the_new_year_belongs_to_the_year_it_ends_in() -> None:
    """December to February of 2025 starts in December 2024 (it was refused: "ends before it starts")."""
    summer = Season(name="summer", start="12-01", end="02-28")
    assert summer.crosses_new_year
    assert summer.window(2025) == "2024-12-01T00:00:00Z/2025-02-28T23:59:59Z"
    assert not Season(name="spring", start="03-20", end="05-10").crosses_new_year
    assert (
        Season(name="day", start="06-21", end="06-21").window(2025)
        == "2025-06-21T00:00:00Z/2025-06-21T23:59:59Z"
    )


def test_29_february_starts_on_1_march_and_ends_on_the_28th_in_a_common_year() -> None:
    """A season starting on 29 February started on the 28th, a day early."""
    late = Season(name="late", start="02-29", end="03-10")
    assert late.window(2025) == "2025-03-01T00:00:00Z/2025-03-10T23:59:59Z"
    assert late.window(2024) == "2024-02-29T00:00:00Z/2024-03-10T23:59:59Z"
    winter = Season(name="winter", start="12-01", end="02-29")
    assert winter.window(2025) == "2024-12-01T00:00:00Z/2025-02-28T23:59:59Z"
    assert winter.window(2024) == "2023-12-01T00:00:00Z/2024-02-29T23:59:59Z"


@pytest.mark.parametrize("text", ["13-01", "02-30", "04-31", "1-05"])
def test_an_impossible_month_day_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="season 'x'"):
        Season(name="x", start=text, end="12-31")


def test_a_seasonal_model_maps_whole_years() -> None:
    assert season_year("2025") == 2025
    assert season_year("2025-01-01/2025-12-31") == 2025
    with pytest.raises(InputError, match="is part of 2025"):
        season_year("2025-03/2025-10")


def test_seasons_sharing_a_day_are_refused_in_a_recipe_not_in_a_loaded_contract() -> None:
    """Products review: "autumn" (07-10 to 11-15) took the same July scene as "summer" (06-20 to 08-20)."""
    from training.config import make_config
    from training.errors import ConfigError

    def recipe(*windows: tuple[str, str, str]) -> None:
        seasons = [{"name": n, "start": s, "end": e} for n, s, e in windows]
        make_config({"stac": "c.json", "aoi": [0, 0, 1, 1], "seasons": seasons})

    with pytest.raises(
        ConfigError, match=r"seasons summer \(06-20 to 08-20\) and autumn \(07-10 to 11-15\) share"
    ):
        recipe(("spring", "03-20", "05-10"), ("summer", "06-20", "08-20"), ("autumn", "07-10", "11-15"))
    with pytest.raises(ConfigError, match=r"seasons wet .* and dry .* share days"):  # across the new year
        recipe(("wet", "11-01", "02-28"), ("dry", "02-28", "10-31"))
    recipe(("wet", "11-01", "02-28"), ("dry", "03-01", "10-31"))  # apart, the whole year between them
    recipe(("spring", "03-20", "05-10"), ("summer", "06-20", "08-20"), ("autumn", "09-01", "11-15"))
