"""Text from items reaches the web map as text: class titles and backdrop ids run no script (review).

Leaflet takes strings as HTML in popups and attributions: a class title in the popup of a clicked pixel
and a Sentinel-2 item id in the backdrop's attribution ran their ``onerror`` handlers. Both are text now,
and the page's Content-Security-Policy would block inline handlers even if some other text slipped through.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
import rasterio
from rasterio.warp import transform

from tests.support.serve import BackgroundServer
from tests.tiler.conftest import Runs, World
from tests.tiler.test_browser import CHROMIUM, LOADED, _uniform_pixel, chromium_page
from tiler.app import create_app
from tiler.settings import TilerSettings

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed (make sysdeps installs it)"
    ),
]


def _payload(where: str) -> str:
    return f"<img src=x onerror=\"window.__xss=(window.__xss||[]).concat('{where}')\">{where}"


def _hostile_run(tiler_runs: Runs, tiler_world: World, root: Path) -> Path:
    """The main run, its class titles and its backdrop item's id replaced by HTML with script in it."""
    run = root / "hostile"
    shutil.copytree(tiler_runs.main, run)
    source = tiler_world.items[0]
    item = json.loads(source.read_text())
    item["id"] = _payload("backdrop")
    for asset in item["assets"].values():  # absolute hrefs, so the copy reads the same COGs
        asset["href"] = str((source.parent / asset["href"]).resolve())
    (root / "backdrop.json").write_text(json.dumps(item))
    run_item = json.loads((run / "item.json").read_text())
    for entry in run_item["assets"]["classes"]["classification:classes"]:
        entry["title"] = _payload(f"class-{entry['value']}")
    run_item["links"] = [
        {"rel": "derived_from", "href": str(root / "backdrop.json"), "type": "application/json"}
    ]
    (run / "item.json").write_text(json.dumps(run_item))
    return run


def test_item_text_shows_as_text_and_runs_no_script(
    tiler_runs: Runs, tiler_world: World, tmp_path: Path
) -> None:
    run = _hostile_run(tiler_runs, tiler_world, tmp_path)
    settings = TilerSettings(allow=[str(tiler_world.root), str(tmp_path)], runs_dir=tmp_path)
    errors: list[str] = []
    with BackgroundServer(create_app(settings)) as server, chromium_page(errors) as page:
        page_headers = httpx.get(f"{server.url}/").headers
        assert "script-src 'self'" in page_headers["content-security-policy"]
        assert page_headers["x-content-type-options"] == "nosniff"
        page.goto(f"{server.url}/?run=hostile")
        page.wait_for_function(LOADED, timeout=90_000)
        attribution = page.locator(".leaflet-control-attribution")
        assert "<img src=x" in attribution.inner_text()  # shown as the text it is
        assert attribution.locator("img").count() == 0

        row, col = _uniform_pixel(tiler_runs.classes)
        with rasterio.open(run / "classes.tif") as src:
            x, y = src.xy(row, col)
            lon, lat = transform(src.crs, "EPSG:4326", [x], [y])
        box = page.locator("#map").bounding_box()
        assert box is not None
        px, py = page.evaluate(
            "(ll) => { const p = lulcMap.latLngToContainerPoint(ll); return [p.x, p.y]; }", [lat[0], lon[0]]
        )
        page.mouse.click(box["x"] + px, box["y"] + py)
        page.wait_for_selector("#info[data-state=done]", timeout=30_000)
        popup = page.locator(".leaflet-popup-content")
        value = int(tiler_runs.classes[row, col])
        assert f"class-{value}" in popup.inner_text()
        assert "<img src=x" in popup.inner_text()
        assert popup.locator("img").count() == 0
        assert page.evaluate("() => window.__xss === undefined")
    assert [e for e in errors if "Content Security Policy" in e] == []  # nothing even tried to run
