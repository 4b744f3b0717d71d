"""The web map's usability review in real headless Chromium: stale popups, failures shown, empty states."""

from __future__ import annotations

from typing import Any

import rasterio
from rasterio.warp import transform

from tests.tiler import test_browser
from tests.tiler.conftest import Runs
from tests.tiler.test_browser import LOADED, _uniform_pixel, chromium_page

pytestmark = test_browser.pytestmark


def _click_pixel(page: Any, runs: Runs, row: int, col: int) -> None:
    """Click the map on pixel (row, col) of the main run's class map."""
    with rasterio.open(runs.main / "classes.tif") as src:
        x, y = src.xy(row, col)
        lon, lat = transform(src.crs, "EPSG:4326", [x], [y])
    box = page.locator("#map").bounding_box()
    px, py = page.evaluate(
        "(ll) => { const p = lulcMap.latLngToContainerPoint(ll); return [p.x, p.y]; }", [lat[0], lon[0]]
    )
    page.mouse.click(box["x"] + px, box["y"] + py)


def test_switching_run_closes_the_last_clicks_popup(tiler_url: str, tiler_runs: Runs) -> None:
    """The popup answered for the map shown before: a run or layer switch closes it as it resets the panel."""
    errors: list[str] = []
    with chromium_page(errors) as page:
        page.goto(f"{tiler_url}/?run=2024/main")
        page.wait_for_function(LOADED, timeout=90_000)
        row, col = _uniform_pixel(tiler_runs.classes)
        _click_pixel(page, tiler_runs, row, col)
        page.wait_for_selector("#info[data-state=done]", timeout=30_000)
        assert page.locator(".leaflet-popup-content").count() == 1
        page.locator("#run-select").select_option("2023/second")
        page.wait_for_function(LOADED, timeout=90_000)
        assert page.locator("#info").inner_text() == "Click the map to see the class."
        assert page.locator(".leaflet-popup-content").count() == 0, "the previous run's answer stays open"
    assert errors == [], f"console errors: {errors}"
