"""The web map's usability review in real headless Chromium: stale popups, failures shown, empty states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rasterio
from rasterio.warp import transform

from tests.support.serve import BackgroundServer
from tests.tiler import test_browser
from tests.tiler.conftest import LEFT_DI, RIGHT_DI, THRESHOLD, ReviewRuns, Runs, World, get
from tests.tiler.test_browser import LOADED, _uniform_pixel, chromium_page
from tiler.app import create_app
from tiler.settings import TilerSettings

pytestmark = test_browser.pytestmark

SHOWN = "() => window.lulcState && lulcState.classTilesLoaded"


def _problems(page: Any) -> list[str]:
    return [text.strip() for text in page.locator("#problems li").all_inner_texts()]


def _click_pixel(page: Any, runs: Runs, row: int, col: int) -> None:
    """Click the map on pixel (row, col) of the main run's class map (panned to the middle of the view)."""
    with rasterio.open(runs.main / "classes.tif") as src:
        x, y = src.xy(row, col)
        lon, lat = transform(src.crs, "EPSG:4326", [x], [y])
    box = page.locator("#map").bounding_box()
    px, py = page.evaluate(
        "(ll) => { lulcMap.panTo(ll, {animate: false}); const p = lulcMap.latLngToContainerPoint(ll);"
        " return [p.x, p.y]; }",
        [lat[0], lon[0]],
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


def test_a_corrupt_class_map_is_said_once_in_the_panel(review_runs: ReviewRuns) -> None:
    """Every tile fails: one readable message naming classes.tif, no GDAL text, not a blank map as if fine."""
    errors: list[str] = []
    with chromium_page(errors) as page:
        page.goto(f"{review_runs.url}/?run=corrupt")
        page.wait_for_function(SHOWN, timeout=90_000)
        page.wait_for_selector("#problems li", timeout=30_000)
        page.wait_for_timeout(500)
        assert page.evaluate("lulcState.tileErrors") > 1
        problems = _problems(page)
        assert len(problems) == 1, problems
        assert "could not be drawn" in problems[0]
        assert "classes.tif cannot be read" in problems[0]
        assert "exception" not in problems[0].lower()
        assert page.locator("#problems").is_visible()
    assert [e for e in errors if "Failed to load resource" not in e] == []


def test_a_broken_aoa_tif_says_the_hatching_is_missing(review_runs: ReviewRuns) -> None:
    """A ticked 'hatch where the model extrapolates' with nothing hatched reads as 'trust everything'."""
    errors: list[str] = []
    with chromium_page(errors) as page:
        page.goto(f"{review_runs.url}/?run=badaoa")
        page.wait_for_function(SHOWN, timeout=90_000)
        page.wait_for_selector("#problems li[data-layer=aoa]", timeout=30_000)
        problems = _problems(page)
        assert len(problems) == 1, problems
        assert "area-of-applicability hatching could not be drawn" in problems[0]
        assert "aoa.tif cannot be read" in problems[0]
        # unticked: no hatching asked for, nothing to warn about
        page.locator("#aoa-toggle").uncheck()
        assert _problems(page) == []
    assert [e for e in errors if "Failed to load resource" not in e] == []


def test_a_map_deleted_after_loading_is_not_outside_the_map(
    review_runs: ReviewRuns, tiler_runs: Runs
) -> None:
    """classes.tif goes away: tiles and identify say it is missing; when it is back, the message goes."""
    folder = review_runs.root / "ok"
    errors: list[str] = []
    with chromium_page(errors) as page:
        page.goto(f"{review_runs.url}/?run=ok")
        page.wait_for_function(LOADED, timeout=90_000)
        assert _problems(page) == []
        start = page.evaluate("lulcMap.getZoom()")
        (folder / "classes.tif").rename(folder / "classes.away")
        try:
            page.evaluate("lulcMap.setZoom(lulcMap.getZoom() + 2)")
            page.wait_for_selector("#problems li[data-layer=classes]", timeout=30_000)
            assert "classes.tif is missing on the server" in _problems(page)[0]
            row, col = _uniform_pixel(tiler_runs.classes)
            _click_pixel(page, tiler_runs, row, col)
            page.wait_for_selector("#info[data-state=error]", timeout=30_000)
            assert "classes.tif is missing" in page.locator("#info").inner_text()
        finally:
            (folder / "classes.away").rename(folder / "classes.tif")
        # back to the first zoom (a zoom further in could be past the map's maxzoom: no new round of tiles)
        page.evaluate(f"lulcMap.setZoom({start})")
        page.wait_for_function("() => !document.querySelector('#problems li')", timeout=30_000)
        assert page.locator("#problems").is_hidden()


def test_a_failure_in_a_round_cut_short_is_taken_back(review_runs: ReviewRuns) -> None:
    """CI: a zoom back before the failing round had ended left the message up over a map drawn fine.

    Leaflet starts no new round of tiles while one is unfinished: one tile of the failing zoom is held
    unanswered, so the round is still under way when the view goes back to the first zoom.
    """
    folder = review_runs.root / "ok"
    errors: list[str] = []
    held: list[Any] = []
    with chromium_page(errors) as page:
        page.goto(f"{review_runs.url}/?run=ok")
        page.wait_for_function(LOADED, timeout=90_000)
        start = page.evaluate("lulcMap.getZoom()")
        page.route(
            f"**/cog/tiles/WebMercatorQuad/{start + 2}/**",
            lambda route: route.continue_() if held else held.append(route),
        )
        (folder / "classes.tif").rename(folder / "classes.away")
        try:
            page.evaluate("lulcMap.setZoom(lulcMap.getZoom() + 2)")
            page.wait_for_selector("#problems li[data-layer=classes]", timeout=30_000)
            assert len(held) == 1
        finally:
            (folder / "classes.away").rename(folder / "classes.tif")
        page.evaluate(f"lulcMap.setZoom({start})")
        page.wait_for_function("() => !document.querySelector('#problems li')", timeout=30_000)
        assert page.locator("#problems").is_hidden()


def test_a_legend_failure_is_taken_back_when_a_layer_loads(product_tiler: str) -> None:
    """The review's red error stayed in the panel after the tiler came back and a layer loaded fine."""
    errors: list[str] = []
    with chromium_page(errors) as page:
        page.goto(f"{product_tiler}/?run=yearly/2024")
        page.wait_for_function(SHOWN, timeout=90_000)
        page.route(
            "**/legend?*", lambda route: route.fulfill(status=503, json={"detail": "down", "status": 503})
        )
        page.locator("#layer-select").select_option(page.evaluate("lulcState.run.layers[1].id"))
        page.wait_for_function("() => document.querySelector('#status').classList.contains('error')")
        page.unroute("**/legend?*")
        page.locator("#layer-select").select_option(page.evaluate("lulcState.run.layers[0].id"))
        page.wait_for_function(SHOWN, timeout=90_000)
        assert not page.evaluate("document.querySelector('#status').classList.contains('error')")
        assert "Land cover from test-model 1" in page.locator("#status").inner_text()


def test_identify_says_whether_the_pixel_is_inside_the_area_of_applicability(
    review_runs: ReviewRuns, tiler_runs: Runs
) -> None:
    """A class on a pixel whose DI is above the threshold is the model extrapolating: identify says so."""
    errors: list[str] = []
    width = tiler_runs.classes.shape[1]
    with chromium_page(errors) as page:
        page.goto(f"{review_runs.url}/?run=ok")
        page.wait_for_function(LOADED, timeout=90_000)
        right = _uniform_pixel(tiler_runs.classes[:, width // 2 + 10 :])
        _click_pixel(page, tiler_runs, right[0], right[1] + width // 2 + 10)
        page.wait_for_selector("#info[data-state=done]", timeout=30_000)
        note = page.locator("#info .aoa").inner_text()
        assert "OUTSIDE the area of applicability" in note
        assert f"DI {RIGHT_DI:.2f} > threshold {THRESHOLD:.2f}" in note
        assert "OUTSIDE the area of applicability" in page.locator(".leaflet-popup-content").inner_text()
        left = _uniform_pixel(tiler_runs.classes[:, : width // 2 - 10])
        _click_pixel(page, tiler_runs, *left)
        page.wait_for_function("() => document.querySelector('#info .aoa')?.dataset.inside === 'true'")
        assert f"inside the area of applicability (DI {LEFT_DI:.2f} ≤ threshold {THRESHOLD:.2f})" in (
            page.locator("#info").inner_text()
        )
    assert errors == [], f"console errors: {errors}"


def _series_table(page: Any) -> dict[str, list[str]]:
    rows = page.locator("#series-table tr")
    page.wait_for_function("() => document.querySelectorAll('#series-table tr').length > 1", timeout=90_000)
    table = {}
    for index in range(rows.count()):
        cells = [c.strip() for c in rows.nth(index).locator("th, td").all_inner_texts()]
        table[cells[0]] = cells[1:]
    return table


def test_series_areas_show_no_data_and_totals_over_one_polygon(product_tiler: str) -> None:
    """A cloudy period's gap is a 'No data' row, not a loss; every page counts over the same polygon."""
    errors: list[str] = []
    with chromium_page(errors) as page:
        page.goto(f"{product_tiler}/?run=yearly/2023")  # its item's bbox is narrower than the others'
        page.wait_for_function(SHOWN, timeout=90_000)
        from_2023 = _series_table(page)
        page.goto(f"{product_tiler}/?run=yearly/2024")
        page.wait_for_function(SHOWN, timeout=90_000)
        from_2024 = _series_table(page)
    assert from_2023 == from_2024, "the class areas depend on the period the page was opened at"
    assert from_2024["ha"] == ["2021", "2023", "2024"]
    assert "No data" in from_2024
    totals = from_2024["Total"]
    assert len(set(totals)) == 1, f"each period over the same polygon has the same total: {totals}"
    for index in range(3):
        column = [float(cells[index]) for name, cells in from_2024.items() if name not in ("ha", "Total")]
        assert sum(column) == pytest.approx(float(totals[index]), abs=0.05 * len(column))
    assert errors == [], f"console errors: {errors}"


def test_at_phone_width_the_map_is_usable_and_the_panel_folds(tiler_url: str) -> None:
    """390 x 844: the map spans the width above the panel, the panel folds, a popup stays in sight."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(test_browser.CHROMIUM), args=test_browser.ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            page.goto(f"{tiler_url}/?run=2024/main")
            page.wait_for_function(LOADED, timeout=90_000)
            map_box = page.locator("#map").bounding_box()
            panel_box = page.locator("#panel").bounding_box()
            assert map_box["width"] == 390, "the panel beside the map left it 130 px wide"
            assert map_box["height"] >= 0.5 * 844
            assert map_box["y"] + map_box["height"] <= panel_box["y"] + 1, (
                "the map ends where the panel begins"
            )
            toggle = page.locator("#panel-toggle")
            assert toggle.is_visible()
            toggle.click()
            assert toggle.get_attribute("aria-expanded") == "false"
            assert page.locator("#panel-body").is_hidden()
            assert page.locator("#status").is_visible()
            page.wait_for_function(
                "() => document.querySelector('#map').getBoundingClientRect().height > 0.8 * 844"
            )
            folded = page.locator("#map").bounding_box()
            # a pixel of the map near the bottom of the view (above the folded panel)
            px, py = page.evaluate(
                "() => { const r = lulcState.run.bbox;"
                " const ll = L.latLng((r[1] + r[3]) / 2, (r[0] + r[2]) / 2);"
                " lulcMap.panTo(ll, {animate: false});"
                " const size = lulcMap.getSize(); lulcMap.panBy([0, -0.35 * size.y], {animate: false});"
                " const p = lulcMap.latLngToContainerPoint(ll); return [p.x, p.y]; }"
            )
            assert py > 0.7 * folded["height"]
            page.touchscreen.tap(folded["x"] + px, folded["y"] + py)
            page.wait_for_selector(".leaflet-popup-content", timeout=30_000)
            page.wait_for_timeout(600)  # Leaflet pans the popup into view
            popup = page.locator(".leaflet-popup-content-wrapper").bounding_box()
            panel = page.locator("#panel").bounding_box()
            assert popup["y"] >= 0
            assert popup["y"] + popup["height"] <= panel["y"], "the popup is under the panel"
            assert popup["x"] >= 0
            assert popup["x"] + popup["width"] <= 390
            toggle.click()
            assert page.locator("#panel-body").is_visible()
            assert page.locator("#info[data-state=done]").is_visible()
        finally:
            browser.close()


@pytest.mark.parametrize("folder", [True, False], ids=["empty-runs-folder", "no-runs-folder"])
def test_no_runs_says_which_case_it_is(tmp_path: Path, tiler_world: World, folder: bool) -> None:
    """--runs given with no runs in it was told 'Start the tiler with --runs DIR'."""
    settings = TilerSettings(allow=[str(tiler_world.root)], runs_dir=tmp_path if folder else None)
    errors: list[str] = []
    with BackgroundServer(create_app(settings)) as server, chromium_page(errors) as page:
        assert get(f"{server.url}/runs").headers["X-Lulc-Runs-Folder"] == ("set" if folder else "none")
        page.goto(f"{server.url}/")
        page.wait_for_function("() => document.querySelector('#status').classList.contains('error')")
        status = page.locator("#status").inner_text()
    if folder:
        assert "No runs found in this tiler's runs folder" in status
        assert "--runs" not in status
        assert str(tmp_path) not in status
    else:
        assert "has no runs folder: start it with --runs DIR" in status
    assert errors == []


def test_a_run_that_is_not_there_is_said(tiler_url: str) -> None:
    """?run=typo silently showed the first run as if it were the one asked for."""
    errors: list[str] = []
    with chromium_page(errors) as page:
        page.goto(f"{tiler_url}/?run=2024/mian")
        page.wait_for_function(SHOWN, timeout=90_000)
        problems = _problems(page)
        shown = page.evaluate("lulcState.run.id")
        assert problems == [
            f'There is no run "2024/mian" here: showing {shown} instead (choose one in the Run list).'
        ]
        page.locator("#run-select").select_option("2024/main")
        page.wait_for_function(SHOWN, timeout=90_000)
        assert _problems(page) == []
    assert errors == []


def test_the_legend_explains_no_data_and_the_aoa_hatching(review_runs: ReviewRuns, tiler_url: str) -> None:
    """The hatching and the holes of no data had no legend entry."""
    errors: list[str] = []
    extras = "() => [...document.querySelectorAll('#legend li[data-extra]')].map((li) => li.dataset.extra)"
    with chromium_page(errors) as page:
        page.goto(f"{review_runs.url}/?run=ok")
        page.wait_for_function(LOADED, timeout=90_000)
        assert page.evaluate(extras) == ["nodata", "aoa"]
        entry = page.locator("#legend li[data-extra=aoa]")
        assert "outside the area of applicability" in entry.inner_text()
        assert "repeating-linear-gradient" in entry.locator(".swatch").evaluate(
            "s => getComputedStyle(s).backgroundImage"
        )
        assert "No data" in page.locator("#legend li[data-extra=nodata]").inner_text()
        page.locator("#aoa-toggle").uncheck()
        assert page.evaluate(extras) == ["nodata"], "no hatching shown: no entry for it"
        page.locator("#aoa-toggle").check()
        assert page.evaluate(extras) == ["nodata", "aoa"]
        page.goto(f"{tiler_url}/?run=2024/main")  # a run without aoa.tif
        page.wait_for_function(LOADED, timeout=90_000)
        assert page.evaluate(extras) == ["nodata"]
    assert errors == []
