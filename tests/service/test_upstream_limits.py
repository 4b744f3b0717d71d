"""The service against misbehaving STAC upstreams: an API paging forever is 413, an endless body is 502.

Real parts: the app (``TestClient``), a real ONNX model (``tests/data/models/pre-move-demo``) and loopback
upstreams from ``tests.service.stac_api_support``. Both findings are met with the service's defaults.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import ServiceSettings
from tests.service.stac_api_support import PAGE, EndlessApi, serve_endless_api

MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "pre-move-demo"
AOI = {
    "type": "Polygon",
    "coordinates": [[[14.01, 48.01], [14.02, 48.01], [14.02, 48.02], [14.01, 48.02], [14.01, 48.01]]],
}


def classify(base_url: str, tmp_path: Path, **overrides: Any) -> Any:
    """``POST /classify`` of a small AOI to a service whose default item source is ``base_url``."""
    models = tmp_path / "models"
    shutil.copytree(MODEL, models / "demo")
    settings = ServiceSettings(
        models_dir=models,
        stac_url=base_url,
        allowed_hosts=["127.0.0.1"],
        output_dir=tmp_path / "work",
        **overrides,
    )
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    return client.post("/classify", json={"aoi": AOI, "datetime": "2024-06", "model": "demo"})


def test_an_api_that_always_has_a_next_page_is_413_after_the_cap_not_after_every_page(tmp_path: Path) -> None:
    cap = ServiceSettings.model_fields["max_search_items"].default
    assert cap == 5000
    with serve_endless_api(EndlessApi(max_pages=60)) as api:
        response = classify(api.base_url, tmp_path)
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["type"] == "ItemLimitError"
    assert body["detail"].startswith(
        "more than 5,000 items of STAC API [the service's default] (sentinel-2-l2a) match"  # not its URL
    )
    assert api.pages == (cap + 1 + PAGE - 1) // PAGE  # 51 pages for the 5,001st item, then no more
    assert not any((tmp_path / "work").glob("*/classes.tif"))


def test_an_endless_landing_page_is_502_at_the_response_limit(tmp_path: Path) -> None:
    with serve_endless_api(EndlessApi(endless_landing=True)) as api:
        response = classify(api.base_url, tmp_path)
        assert api.landing_done.wait(10)
    assert response.status_code == 502, response.text
    assert response.json() == {
        "detail": "STAC API [the service's default] is larger than 64 MiB, the limit of one response",
        "type": "ResponseLimitError",
    }
    assert api.landing_bytes_sent < 80 * 2**20  # cut at 64 MiB, not read to the server's own end (96 MiB)


def test_the_service_defaults_are_the_core_defaults() -> None:
    """The settings' defaults (the README's) are what an item source uses when none is passed."""
    from lulc.sources import MAX_SEARCH_ITEMS
    from lulc.stac_io import MAX_RESPONSE_BYTES

    fields = ServiceSettings.model_fields
    assert fields["max_search_items"].default == MAX_SEARCH_ITEMS
    assert fields["max_response_bytes"].default == MAX_RESPONSE_BYTES


def test_the_service_settings_set_both_limits(tmp_path: Path) -> None:
    """LULC_SERVICE_MAX_SEARCH_ITEMS and _MAX_RESPONSE_BYTES reach the item source (they were not wired)."""
    with serve_endless_api(EndlessApi(max_pages=60)) as api:
        response = classify(api.base_url, tmp_path / "a", max_search_items=250)
    assert response.status_code == 413, response.text
    assert response.json()["detail"].startswith("more than 250 items of STAC API [the service's default]")
    assert api.pages == 3
    with serve_endless_api(EndlessApi(endless_landing=True)) as api:
        response = classify(api.base_url, tmp_path / "b", max_response_bytes=2**20)
        assert api.landing_done.wait(10)
    assert response.status_code == 502, response.text
    assert (
        response.json()["detail"]
        == "STAC API [the service's default] is larger than 1 MiB, the limit of one response"
    )
