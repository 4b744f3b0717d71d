"""The web map of a tiler with a bearer token, in real headless Chromium: asks once, sends it everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit

import pytest
from pydantic import SecretStr

from tests.support.serve import BackgroundServer
from tests.tiler import test_browser
from tests.tiler.conftest import Runs
from tests.tiler.test_browser import LOADED, _class_pixel_counts, chromium_page
from tiler.app import create_app
from tiler.settings import TilerSettings

pytestmark = test_browser.pytestmark

TOKEN = "web-map-s3cret"
WRONG = "not-the-token"
REFUSED = "status of 401"  # how Chromium logs a refused request in the console
GONE = "net::ERR_FILE_NOT_FOUND"  # and a revoked blob URL


REVOKED = """async () => {
  const readable = (url) => fetch(url).then(() => true, () => false);
  const blobs = (layer) => [...layer.getContainer().querySelectorAll("img")].map((img) => img.src);
  const classes = blobs(lulcState.classLayer);
  lulcMap.removeLayer(lulcState.classLayer);
  return {
    classes: await Promise.all(classes.map(readable)),
    backdrop: await Promise.all(blobs(lulcState.backdropLayer).map(readable)),
  };
}"""
"""Whether the class tiles' blob URLs can still be read after their layer left the map (and, as the control,
the backdrop's, still on the map)."""


@dataclass(frozen=True)
class Seen:
    """One request the page made to the tiler: its URL as the server got it (no fragment), answer, header."""

    url: str
    status: int
    kind: str
    authorization: str | None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


@pytest.fixture(scope="module")
def protected_tiler(tiler_settings: TilerSettings) -> Iterator[str]:
    """The tiler over the same runs, every API route behind the bearer token."""
    settings = tiler_settings.model_copy(update={"auth_token": SecretStr(TOKEN)})
    with BackgroundServer(create_app(settings)) as server:
        yield server.url


def _record(page: Any, seen: list[Seen]) -> None:
    def on_response(response: Any) -> None:
        request = response.request
        url = urldefrag(request.url).url
        if url.startswith("http"):  # not the tiles' blob: URLs
            seen.append(
                Seen(url, response.status, request.resource_type, request.headers.get("authorization"))
            )

    page.on("response", on_response)


def test_web_map_asks_for_the_token_and_sends_it(
    protected_tiler: str, tiler_runs: Runs, tmp_path: Path
) -> None:
    errors: list[str] = []
    seen: list[Seen] = []
    with chromium_page(errors) as page:
        _record(page, seen)
        page.goto(f"{protected_tiler}/?run=2024/main")

        # the first 401 (GET /runs): the form, and nothing on the map
        page.wait_for_selector("#token-form:not([hidden])", timeout=30_000)
        assert page.locator("#token-message").inner_text() == "This map needs an access token."
        assert page.locator("#map .leaflet-tile").count() == 0

        # a wrong token: refused in one line, the form asks again
        page.locator("#token-input").fill(WRONG)
        page.locator("#token-form button").click()
        page.wait_for_function(
            "() => document.querySelector('#token-message').textContent === 'Wrong token: try again.'",
            timeout=30_000,
        )
        assert page.locator("#token-form").is_visible()
        assert page.locator("#token-input").input_value() == ""
        assert page.evaluate("sessionStorage.getItem('lulc-tiler-token')") is None
        refused = [s for s in seen if s.status == 401]
        assert [(s.path, s.authorization) for s in refused] == [("/runs", None), ("/runs", f"Bearer {WRONG}")]

        # the right one: the map, its legend and its tiles, drawn
        cut = len(seen)
        page.locator("#token-input").fill(TOKEN)
        page.locator("#token-form button").click()
        page.wait_for_function(LOADED, timeout=90_000)
        assert page.locator("#token-form").is_hidden()
        names = page.locator("#legend li[data-value]").all_inner_texts()
        assert [n.strip() for n in names] == tiler_runs.table.names
        page.locator("#opacity").fill("1")
        page.wait_for_timeout(300)
        shot = page.locator("#map").screenshot(path=str(tmp_path / "map.png"))
        exact = _class_pixel_counts(shot, tiler_runs)
        assert len([name for name, n in exact.items() if n > 500]) >= 3, f"class colours: {exact}"
        assert page.evaluate("lulcState.tileErrors") == 0
        assert page.locator("#map img.leaflet-tile[src^='blob:']").count() > 0

        # a click: the point query carries the token too
        box = page.locator("#map").bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_selector("#info[data-state=done]", timeout=30_000)

        after = seen[cut:]
        tiles = [s for s in after if "/tiles/" in s.path]
        assert {s.path.split("/")[1] for s in tiles} == {"cog", "stac"}
        assert {(s.status, s.kind, s.authorization) for s in tiles} == {(200, "fetch", f"Bearer {TOKEN}")}
        api = [s for s in after if "/tiles/" not in s.path and not s.path.startswith("/static/")]
        assert {"/runs", "/legend", "/cog/point"} == {
            s.path.rsplit("/", 1)[0] if "point" in s.path else s.path for s in api
        }
        assert {(s.status, s.authorization) for s in api} == {(200, f"Bearer {TOKEN}")}
        assert not [s for s in seen if TOKEN in s.url or WRONG in s.url], "a token in a URL"

        # a tile's blob URL lives as long as the tile: revoked once its layer leaves the map, not before
        readable = page.evaluate(REVOKED)
        assert readable["classes"], "class tiles on the map"
        assert not any(readable["classes"]), readable
        assert readable["backdrop"], "backdrop tiles on the map"
        assert all(readable["backdrop"]), readable

        # a new session with the token in the address's fragment: no form, the fragment leaves the address
        page.evaluate("sessionStorage.clear()")
        before = len(seen)
        page.goto(f"{protected_tiler}/?run=2023/second#token={TOKEN}")
        page.wait_for_function(LOADED, timeout=90_000)
        assert page.locator("#token-form").is_hidden()
        assert page.evaluate("location.href") == f"{protected_tiler}/?run=2023/second"
        assert page.evaluate("sessionStorage.getItem('lulc-tiler-token')") == TOKEN
        assert "second" in page.evaluate("lulcState.run.classes")
        assert not [s for s in seen[before:] if s.status == 401]
        assert page.evaluate("lulcState.tileErrors") == 0

    # the browser logs each refused request and each read of a revoked blob itself: exactly those above
    assert sum(REFUSED in e for e in errors) == 2, errors
    assert sum(GONE in e for e in errors) == len(readable["classes"]), errors
    assert [e for e in errors if REFUSED not in e and GONE not in e] == [], f"console errors: {errors}"
