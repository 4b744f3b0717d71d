"""The web map's layers, series and image backdrop in real headless Chromium, over real engine runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import rasterio

from tests.tiler import test_browser
from tests.tiler.conftest import ProductRuns, decode_png, get
from tests.tiler.test_browser import LOADED, chromium_page

pytestmark = test_browser.pytestmark

TILES = "() => window.lulcState && lulcState.classTilesLoaded"


def _colour_pixels(png: bytes, colours: set[tuple[int, int, int]]) -> int:
    rgb = decode_png(png)[..., :3]
    return sum(int((rgb == colour).all(axis=-1).sum()) for colour in colours)


def test_layers_and_series_in_headless_chromium(
    product_tiler: str, product_runs: ProductRuns, tmp_path: Path
) -> None:
    table = product_runs.table
    class_colours = {c.rgba[:3] for c in table.classes}
    with rasterio.open(product_runs.change / "change.tif") as src:
        # the change table's own colours (GDAL pads colour tables with black: not one of them)
        change_colours = {tuple(rgba[:3]) for rgba in src.colormap(1).values()} - class_colours - {(0, 0, 0)}
    change_legend = get(
        f"{product_tiler}/legend", params={"url": str(product_runs.change / "change.tif")}
    ).json()
    errors: list[str] = []
    with chromium_page(errors) as page:
        page.goto(f"{product_tiler}/?run=yearly/2024")
        page.wait_for_function(LOADED, timeout=90_000)
        page.locator("#opacity").fill("1")
        assert "Land cover from test-model 1, 2024-08-10" in page.locator("#status").inner_text()

        # the layer selector: classes, the cleaned map, the change, one probability per class
        assert page.locator("#layer-row").is_visible()
        options = [o.strip() for o in page.locator("#layer-select option").all_inner_texts()]
        assert options[:2] == ["Classes (per pixel)", "Cleaned: minimum mapping unit 0.5 ha"]
        assert options[2] == "Change: 2021-07-18 to 2021-09-06 → 2024-08-10"
        assert options[3:] == [f"Probability: {c.name}" for c in table.classes]

        change_id = page.evaluate("lulcState.run.layers[2].id")
        page.locator("#layer-select").select_option(change_id)
        page.wait_for_function(TILES, timeout=90_000)
        page.wait_for_timeout(300)
        legend = [n.strip() for n in page.locator("#legend li[data-value]").all_inner_texts()]
        assert legend == [entry["name"] for entry in change_legend["classes"]]
        shot = page.locator("#map").screenshot(path=str(tmp_path / "change.png"))
        assert _colour_pixels(shot, change_colours) > 500, "the change map in its own colours"

        page.locator("#layer-select").select_option(page.evaluate("lulcState.run.layers[1].id"))
        page.wait_for_function(TILES, timeout=90_000)
        page.wait_for_timeout(300)
        assert [n.strip() for n in page.locator("#legend li[data-value]").all_inner_texts()] == table.names
        shot = page.locator("#map").screenshot(path=str(tmp_path / "clean.png"))
        assert _colour_pixels(shot, class_colours) > 500
        assert _colour_pixels(shot, change_colours) < 50  # none but the odd anti-aliased text pixel

        # the series: a period slider and the class areas per period
        assert page.locator("#series-row").is_visible()
        page.wait_for_selector("#series-table tr", timeout=90_000)
        header = [h.strip() for h in page.locator("#series-table tr").first.locator("th").all_inner_texts()]
        assert header == ["ha", "2021", "2023", "2024"]
        assert page.locator("#series-table tr").count() == 1 + len(table.classes) + 2  # no data, total
        assert page.locator("#period-value").inner_text() == "2024"
        page.locator("#period-slider").fill("0")
        page.wait_for_function("() => lulcState.run.id === 'yearly/2021'", timeout=30_000)
        page.wait_for_function(LOADED, timeout=90_000)
        assert page.locator("#period-value").inner_text() == "2021"
        assert page.evaluate("lulcState.layer.kind") == "clean", "stepping through periods keeps the layer"
        assert page.locator("#run-select").input_value() == "yearly/2021"

        # a probability band: a colour ramp legend, the value on click
        page.locator("#layer-select").select_option("probability:1")
        page.wait_for_function(TILES, timeout=90_000)
        assert page.locator("#legend .ramp").count() == 1
        box = page.locator("#map").bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_selector("#info[data-state=done]", timeout=30_000)
        assert page.locator("#info .class-name").inner_text().endswith(" %")
        assert page.evaluate("lulcState.tileErrors") == 0

    assert errors == [], f"console errors: {errors}"


def test_an_image_run_shows_its_input_image_under_the_map(
    product_tiler: str, product_runs: ProductRuns, tmp_path: Path
) -> None:
    """An --image run: its input image in true colour under the map, a title with model and date."""
    if product_runs.tutorial is None:
        pytest.skip("the tutorial scene (../shared/data/lulc_py) is absent: no --image run was made")
    errors: list[str] = []
    with chromium_page(errors) as page:
        page.goto(f"{product_tiler}/?run=tutorial")
        page.wait_for_function(LOADED, timeout=90_000)
        assert page.locator("#backdrop-row").is_visible()
        assert page.locator("#backdrop-info").inner_text() == "s2image (2023-05-01)"
        assert "Land cover from test-model 1, 2023-05-01" in page.locator("#status").inner_text()
        assert "1970" not in page.locator("#panel").inner_text()
        assert page.evaluate("lulcState.backdropLayer._url").startswith("cog/tiles/")
        page.screenshot(path=str(tmp_path / "tutorial.png"))
        assert page.evaluate("lulcState.tileErrors") == 0
    assert errors == [], f"console errors: {errors}"
