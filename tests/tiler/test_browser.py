"""The web map in real headless Chromium: tiles, class colours, opacity, identify, run selector, no errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform

from lulc.classes import NODATA
from tests.tiler.conftest import Runs, World, decode_png

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed (make sysdeps installs it)"
    ),
]

LOADED = "() => window.lulcState && lulcState.classTilesLoaded && lulcState.backdropTilesLoaded"


@contextmanager
def chromium_page(errors: list[str]) -> Iterator[Any]:
    """A page of headless Chromium (1100 x 760) whose console errors and page errors go to ``errors``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
        finally:
            browser.close()


def _uniform_pixel(classes: np.ndarray) -> tuple[int, int]:
    """A pixel in the middle of a 15x15 block of one class (so a click lands on that class)."""
    height, width = classes.shape
    half = 7
    for row in range(height // 3, height - half, 5):
        for col in range(width // 3, width - half, 5):
            block = classes[row - half : row + half + 1, col - half : col + half + 1]
            if block.min() == block.max() != NODATA:
                return row, col
    raise AssertionError("no uniform block in the demo map")


def _class_pixel_counts(png: bytes, runs: Runs) -> dict[str, int]:
    rgb = decode_png(png)[..., :3]
    return {c.name: int((rgb == c.rgba[:3]).all(axis=-1).sum()) for c in runs.table.classes}


def test_web_map_in_headless_chromium(
    tiler_url: str, tiler_runs: Runs, tiler_world: World, tmp_path: Path
) -> None:
    errors: list[str] = []
    tiles: set[tuple[str, str | None]] = set()  # how the page asked for tiles, and with which Authorization
    with chromium_page(errors) as page:
        page.on(
            "request",
            lambda r: (
                tiles.add((r.resource_type, r.headers.get("authorization"))) if "/tiles/" in r.url else None
            ),
        )
        page.goto(f"{tiler_url}/?run=2024/main")
        page.wait_for_function(LOADED, timeout=90_000)
        # no token on the server: no token form, tiles are plain images as Leaflet loads them
        assert page.locator("#token-form").is_hidden()
        assert tiles == {("image", None)}

        # legend from /legend, one entry per class
        names = page.locator("#legend li[data-value]").all_inner_texts()
        assert [n.strip() for n in names] == tiler_runs.table.names

        map_box = page.locator("#map").bounding_box()
        assert map_box is not None
        blended = page.locator("#map").screenshot(path=str(tmp_path / "map-80.png"))

        # opacity slider to 100 %: the class colours appear exactly
        page.locator("#opacity").fill("1")
        page.wait_for_function("() => document.querySelector('#opacity-value').textContent === '100 %'")
        page.wait_for_timeout(300)
        shot = page.locator("#map").screenshot(path=str(tmp_path / "map.png"))
        exact = _class_pixel_counts(shot, tiler_runs)
        shown = [name for name, n in exact.items() if n > 500]
        assert len(shown) >= 3, f"class colours on the map: {exact}"
        assert sum(_class_pixel_counts(blended, tiler_runs).values()) < 0.1 * sum(exact.values()), (
            "at 80 % opacity the classes are blended with the imagery"
        )

        # click a pixel and read its class name (and confidence) from the page
        row, col = _uniform_pixel(tiler_runs.classes)
        with rasterio.open(tiler_runs.main / "classes.tif") as src:
            x, y = src.xy(row, col)
            lon, lat = transform(src.crs, "EPSG:4326", [x], [y])
        px, py = page.evaluate(
            "(ll) => { const p = lulcMap.latLngToContainerPoint(ll); return [p.x, p.y]; }",
            [lat[0], lon[0]],
        )
        assert 0 < px < map_box["width"]
        assert 0 < py < map_box["height"]
        page.mouse.click(map_box["x"] + px, map_box["y"] + py)
        page.wait_for_selector("#info[data-state=done]", timeout=30_000)
        expected = tiler_runs.table.by_value(int(tiler_runs.classes[row, col])).name
        assert page.locator("#info .class-name").inner_text() == expected
        confidence = page.locator("#info .confidence").inner_text()
        assert f"confidence {int(tiler_runs.confidence[row, col])} %" in confidence
        page.screenshot(path=str(tmp_path / "page.png"))

        # the run selector lists the runs and switches the map
        assert page.locator("#run-row").is_visible()
        options = page.locator("#run-select option").all_inner_texts()
        assert len(options) == 3
        page.locator("#run-select").select_option("2023/second")
        page.wait_for_function(LOADED, timeout=90_000)
        assert "second" in page.evaluate("lulcState.run.classes")
        assert page.evaluate("lulcState.tileErrors") == 0

        # any allowed map by URL, with a Sentinel-2 item as backdrop
        query = urlencode({"url": str(tiler_runs.plain / "classes.tif"), "item": str(tiler_world.items[0])})
        page.goto(f"{tiler_url}/map?{query}")
        page.wait_for_function(LOADED, timeout=90_000)
        assert page.locator("#legend li[data-value]").count() == len(tiler_runs.table.classes)
        assert not page.locator("#run-row").is_visible()
        # a map outside the allow-list: a clear message, no crash
        page.goto(f"{tiler_url}/?{urlencode({'url': '/etc/passwd'})}")
        page.wait_for_function("() => document.querySelector('#status').classList.contains('error')")
        assert "403" in page.locator("#status").inner_text()
        errors[:] = [e for e in errors if "403" not in e]  # the browser logs the refused request itself
    assert errors == [], f"console errors: {errors}"
