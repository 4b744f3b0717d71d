"""``read_json`` reads at most ``max_bytes`` of a JSON document (``LULC_TILER_MAX_RESPONSE_BYTES``).

Real parts: a loopback ``http.server`` sending an endless chunked JSON string or announcing a GiB, and
files on disk. The endless body stops by itself at a safety bound, so a reader without the limit returns
(a dict) and its test fails on the assertion.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.loopback import Log, MiB, misbehaving_server
from tiler.colormaps import ClassResolver, read_json
from tiler.settings import TilerSettings

SAFETY = 40 * MiB
DEFAULT = 16 * MiB  # TilerSettings.max_response_bytes


def serve(log: Log) -> Any:
    """The misbehaving upstream (``tests.support.loopback``), bounded at ``SAFETY``."""
    return misbehaving_server(log, SAFETY)


def test_the_setting_defaults_to_the_readers_limit() -> None:
    assert TilerSettings.model_fields["max_response_bytes"].default == DEFAULT


def test_an_endless_body_is_read_no_further_than_the_limit_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = Log()
    with serve(log) as base, caplog.at_level(logging.WARNING, logger="tiler.colormaps"):
        assert read_json(f"{base}/endless.json") is None
        assert log.done.wait(10)
    assert log.sent < 30 * MiB  # the reader hung up at 16 MiB (plus socket buffers), not at 40
    assert f"ignoring {base}/endless.json: larger than 16,777,216 bytes" in caplog.text


def test_a_content_length_over_the_limit_is_not_read(caplog: pytest.LogCaptureFixture) -> None:
    log = Log()
    with serve(log) as base, caplog.at_level(logging.WARNING, logger="tiler.colormaps"):
        started = time.monotonic()
        assert read_json(f"{base}/declared.json") is None
        assert time.monotonic() - started < 2  # not waiting for the GiB
    assert "Content-Length 1,073,741,824 is over 16,777,216 bytes" in caplog.text


def test_a_local_file_over_the_limit_is_read_no_further(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "item.json"
    path.write_text(json.dumps({"type": "Feature", "pad": "x" * DEFAULT}))
    with caplog.at_level(logging.WARNING, logger="tiler.colormaps"):
        assert read_json(str(path)) is None
    assert "larger than 16,777,216 bytes" in caplog.text
    path.write_text(json.dumps({"type": "Feature", "pad": "x" * (DEFAULT - 100)}))
    assert read_json(str(path)) is not None  # within the limit: read


def test_the_class_resolver_reads_items_within_its_own_limit(tmp_path: Path) -> None:
    item = {
        "type": "Feature",
        "properties": {"classification:classes": [{"value": 1, "name": "forest", "color_hint": "228B22"}]},
        "assets": {},
    }
    (tmp_path / "item.json").write_text(json.dumps(item))
    location = str(tmp_path / "classes.tif")
    assert ClassResolver().from_item(location) is not None
    assert ClassResolver(max_response_bytes=64).from_item(location) is None


def test_the_stac_routes_read_an_item_within_the_setting_not_whole() -> None:
    """Review: /stac/* fetched the item with rio-tiler's fetch, whole: 2.6 GB in 12 s from an endless one."""
    from fastapi.testclient import TestClient

    from tiler.app import create_app

    log = Log()
    with serve(log) as base:
        settings = TilerSettings(allow=[f"{base}/"], max_response_bytes=MiB)
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            response = client.get("/stac/info", params={"url": f"{base}/endless.json", "assets": "classes"})
        assert log.done.wait(10)
    assert response.status_code == 502, response.text
    assert "is not read: larger than 1,048,576 bytes" in response.json()["detail"]
    assert log.sent < 16 * MiB  # hung up at the setting's 1 MiB (plus socket buffers), not at SAFETY
