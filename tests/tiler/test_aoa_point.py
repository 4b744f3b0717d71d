"""``GET /aoa/point/{lon},{lat}``: a pixel's DI and whether it is inside the model's area of applicability."""

from __future__ import annotations

import pytest
import rasterio
from rasterio.warp import transform

from tests.tiler.conftest import LEFT_DI, RIGHT_DI, THRESHOLD, ReviewRuns, get


def _lonlat(review_runs: ReviewRuns, row: int, col: int) -> str:
    with rasterio.open(review_runs.root / "ok" / "aoa.tif") as src:
        x, y = src.xy(row, col)
        lon, lat = transform(src.crs, "EPSG:4326", [x], [y])
    return f"{lon[0]},{lat[0]}"


@pytest.mark.parametrize(("col_share", "di", "inside"), [(0.25, LEFT_DI, True), (0.75, RIGHT_DI, False)])
def test_aoa_point_gives_di_and_side(
    review_runs: ReviewRuns, col_share: float, di: float, inside: bool
) -> None:
    with rasterio.open(review_runs.root / "ok" / "aoa.tif") as src:
        row, col = src.height // 2, int(src.width * col_share)
    aoa = str(review_runs.root / "ok" / "aoa.tif")
    response = get(
        f"{review_runs.url}/aoa/point/{_lonlat(review_runs, row, col)}",
        params={"url": aoa, "threshold": THRESHOLD},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"di": di, "threshold": THRESHOLD, "inside": inside}


def test_aoa_point_outside_the_file_and_nodata(review_runs: ReviewRuns) -> None:
    aoa = str(review_runs.root / "ok" / "aoa.tif")
    params = {"url": aoa, "threshold": THRESHOLD}
    assert get(f"{review_runs.url}/aoa/point/0,0", params=params).status_code == 404
    # the map's top rows are nodata (the demo run's strip): no DI there, neither inside nor outside
    nodata = get(f"{review_runs.url}/aoa/point/{_lonlat(review_runs, 2, 100)}", params=params)
    assert nodata.json() == {"di": None, "threshold": THRESHOLD, "inside": None}
    assert (
        get(f"{review_runs.url}/aoa/point/0,0", params={"url": "/etc/passwd", "threshold": 0.3}).status_code
        == 403
    )
