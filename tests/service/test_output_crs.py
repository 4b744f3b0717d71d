"""An output CRS must hold the AOI: its points go there and come back (not merely give finite numbers)."""

from __future__ import annotations

from typing import Any

import pytest

from lulc.errors import InputError
from service.output_crs import check_output_crs, check_output_grid


def square(lon: float, lat: float, size: float = 0.01) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


JAPAN = square(140.0, 36.0)
SWITZERLAND = square(7.4, 46.9)


def test_a_crs_that_sends_the_aoi_elsewhere_is_refused_naming_it() -> None:
    """Review: EPSG:2056 (Swiss LV95) for an AOI in Japan: finite numbers, then a 422 NoValidPixelsError."""
    with pytest.raises(InputError, match=r"'EPSG:2056' cannot represent the AOI.*km away.*EPSG:32654"):
        check_output_crs("EPSG:2056", JAPAN, 10.0)
    with pytest.raises(InputError, match="'EPSG:2056' cannot represent the AOI"):
        check_output_grid("EPSG:2056", JAPAN, 10.0, 10**9)
    with pytest.raises(InputError, match="'EPSG:2056' cannot represent the AOI"):
        check_output_crs("EPSG:2056", square(-100.0, 40.0), 10.0)  # and for one in the USA


@pytest.mark.parametrize(
    ("crs", "aoi"),
    [
        ("EPSG:2056", SWITZERLAND),
        ("EPSG:32654", JAPAN),
        ("EPSG:3857", JAPAN),
        ("EPSG:6933", JAPAN),  # equal-area world grid
        ("EPSG:32632", SWITZERLAND),
    ],
)
def test_a_crs_holding_the_aoi_is_accepted(crs: str, aoi: dict[str, Any]) -> None:
    check_output_crs(crs, aoi, 10.0)
    check_output_grid(crs, aoi, 10.0, 10**9)
