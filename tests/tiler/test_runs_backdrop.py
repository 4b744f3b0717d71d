"""The run listing of the web map and the Sentinel-2 backdrop (true and false colour from the items)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import numpy as np
import pystac
import pytest

from lulc.sentinel2 import normalize_item
from tests.tiler.conftest import Runs, World, decode_png, get
from tiler.settings import TilerSettings


def test_runs_lists_runs_with_confidence_and_backdrop(
    tiler_url: str, tiler_runs: Runs, tiler_world: World
) -> None:
    runs = get(f"{tiler_url}/runs").json()
    by_id = {r["id"]: r for r in runs}
    assert set(by_id) == {"2024/main", "2023/second", "plain/noct"}, "folders with classes.tif AND item.json"
    main = by_id["2024/main"]
    assert main["classes"] == str(tiler_runs.main / "classes.tif")
    assert main["confidence"] == str(tiler_runs.main / "confidence.tif")
    assert by_id["2023/second"]["confidence"] is None
    assert main["model"] == "demo-rf"
    # the backdrop is the least cloudy of the run's input items
    clouds = {}
    for path in tiler_world.items:
        item = normalize_item(pystac.Item.from_file(str(path)))
        clouds[str(path)] = (
            item.cloud_cover if item.cloud_cover is not None else 100.0,
            item.datetime.isoformat(),
        )
    assert main["backdrop"]["url"] == min(clouds, key=lambda p: clouds[p])
    assert by_id["2023/second"]["backdrop"]["url"] == str(tiler_world.items[0])
    assert by_id["plain/noct"]["backdrop"] is None


def test_backdrop_stretch_uses_scale_and_offset(tiler_url: str, tiler_world: World) -> None:
    path = tiler_world.items[-1]
    body = get(f"{tiler_url}/backdrop", params={"url": str(path)}).json()
    item = normalize_item(pystac.Item.from_file(str(path)))
    layers = {layer["name"]: layer for layer in body["layers"]}
    assert set(layers) == {"true_color", "false_color"}
    assert layers["true_color"]["bands"] == ["red", "green", "blue"]
    assert layers["false_color"]["bands"] == ["nir", "red", "green"]
    red = item.bands["red"]
    lo, hi = layers["true_color"]["rescale"][0]
    assert lo * red.scale + red.offset == pytest.approx(0.0)  # reflectance 0 ..
    assert hi * red.scale + red.offset == pytest.approx(0.3)  # .. 0.3
    nir = item.bands["nir"]
    assert layers["false_color"]["rescale"][0][1] * nir.scale + nir.offset == pytest.approx(0.5)


@pytest.mark.parametrize("layer", ["true_color", "false_color"])
def test_backdrop_tiles_from_the_stac_item(
    tiler_url: str, tiler_world: World, inside_tile: str, layer: str, tmp_path: Path
) -> None:
    path = str(tiler_world.items[-1])
    spec = next(
        lr
        for lr in get(f"{tiler_url}/backdrop", params={"url": path}).json()["layers"]
        if lr["name"] == layer
    )
    response = get(f"{tiler_url}/stac{inside_tile[4:]}?{urlencode({'url': path})}&{spec['query']}")
    (tmp_path / f"{layer}.png").write_bytes(response.content)  # to look at
    assert response.status_code == 200, response.text
    rgba = decode_png(response.content)
    opaque = rgba[rgba[..., 3] == 255][:, :3]
    assert len(opaque) > 0.5 * rgba.shape[0] * rgba.shape[1]
    assert len(np.unique(opaque, axis=0)) > 100, "real imagery, not a flat colour"
    assert 20 < opaque.mean() < 235, "a sensible stretch: neither black nor saturated"


def test_backdrop_of_a_non_sentinel_item_is_400(tiler_url: str, tiler_runs: Runs) -> None:
    response = get(f"{tiler_url}/backdrop", params={"url": str(tiler_runs.main / "item.json")})
    assert response.status_code == 400
    assert "red" in response.json()["detail"] or "nir" in response.json()["detail"]


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LULC_TILER_ALLOW", f"{tmp_path},http://127.0.0.1:9/data/")
    monkeypatch.setenv("LULC_TILER_CORS_ORIGINS", "*")
    monkeypatch.setenv("LULC_TILER_RUNS_DIR", str(tmp_path))
    settings = TilerSettings()
    assert settings.allow == [str(tmp_path), "http://127.0.0.1:9/data/"]
    assert settings.cors_origins == ["*"]
    assert settings.runs_dir == tmp_path
    for name, field in TilerSettings.model_fields.items():
        assert field.description, f"{name} has no description"


@pytest.mark.slow
def test_lulc_tiler_command_serves_the_web_map(tiler_runs: Runs, tmp_path: Path) -> None:
    port = free_port()
    lulc = Path(sys.executable).with_name("lulc")
    process = subprocess.Popen(
        [str(lulc), "tiler", "--port", str(port), "--runs", str(tiler_runs.root), "--allow", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "lulc tiler did not start"
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        assert str(tmp_path) in health.json()["allow"]
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200
        assert "static/vendor/leaflet/leaflet.js" in page.text
        runs = httpx.get(f"http://127.0.0.1:{port}/runs", timeout=30).json()
        assert len(runs) == 3
        denied = httpx.get(f"http://127.0.0.1:{port}/legend", params={"url": "/etc/passwd"}, timeout=10)
        assert denied.status_code == 403
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert f"http://127.0.0.1:{port}/" in (process.stdout.read() if process.stdout else "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _copies_with_changed_items(
    run: Path, root: Path, variants: dict[str, Callable[[dict[str, Any]], object]]
) -> None:
    """A copy of ``run`` under ``root`` per variant, named after it, its item changed by it; and ``good``."""
    import json
    import shutil

    item = json.loads((run / "item.json").read_text())
    for name, change in variants.items():
        shutil.copytree(run, root / name)
        broken = json.loads(json.dumps(item))
        change(broken)
        (root / name / "item.json").write_text(json.dumps(broken))
    shutil.copytree(run, root / "good")


def test_one_malformed_item_does_not_take_the_run_list_down(
    tiler_runs: Runs, tiler_world: World, tmp_path: Path
) -> None:
    """Review: a null bbox entry or a class without a value made /runs a 500, so the map showed no run."""
    from fastapi.testclient import TestClient

    from tiler.app import create_app
    from tiler.legend import legend_png

    variants = {
        "bbox-null": lambda i: i.update(bbox=[None, 1, 2, 3]),
        "bbox-nan": lambda i: i.update(bbox=["nan", 0, 1, 1]),
        "class-no-value": lambda i: i["assets"]["classes"]["classification:classes"][0].pop("value"),
        "class-string": lambda i: i["assets"]["classes"].update({"classification:classes": ["Water"]}),
        "bbox-3d": lambda i: i.update(bbox=[*i["bbox"][:2], 0.0, *i["bbox"][2:], 100.0]),
    }
    _copies_with_changed_items(tiler_runs.main, tmp_path, variants)
    settings = TilerSettings(allow=[str(tiler_world.root), str(tmp_path)], runs_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        listed = client.get("/runs")
        assert listed.status_code == 200, listed.text
        runs = {r["id"]: r for r in listed.json()}
        assert {"good", "bbox-null", "bbox-3d"} <= set(runs)
        # no usable bbox in the item: the map's own bounds (the web map opened on the whole world)
        assert runs["bbox-null"]["bbox"] == pytest.approx(runs["good"]["bbox"], abs=1e-6)
        assert runs["bbox-nan"]["bbox"] == pytest.approx(runs["good"]["bbox"], abs=1e-6)
        assert runs["bbox-3d"]["bbox"] == runs["good"]["bbox"]  # its heights dropped
        for name in ("class-no-value", "class-string"):
            answer = client.get("/legend", params={"url": str(tmp_path / name / "classes.tif")})
            assert answer.status_code < 500, answer.text
    # a class title of 20,000 characters: the PNG legend clips it instead of drawing 170,000 px of text
    from tiler.legend import Legend, LegendEntry

    entry = LegendEntry(value=1, name="x" * 20_000, color="#102030")
    huge = Legend(url="m.tif", source="stac", origin="item.json", nodata=255, classes=[entry])
    png = decode_png(legend_png(huge))
    assert png.shape[1] < 700


def test_items_and_collections_with_malformed_links_are_listed_without_them(
    tiler_runs: Runs, tiler_world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Review: an item.json with ``"links": null`` or ``5`` made /runs a 500, so the web map showed no run."""
    import json
    import logging

    from fastapi.testclient import TestClient

    from tiler.app import create_app

    variants = {
        "links-null": lambda i: i.update(links=None),
        "links-number": lambda i: i.update(links=5),
        "links-object": lambda i: i.update(links={"rel": "derived_from"}),
        # a cleaned map whose derived_from links are unreadable: a run of its own
        "clean-links-null": lambda i: i.update(
            links=None, properties={**i["properties"], "lulc:product": "clean"}
        ),
    }
    _copies_with_changed_items(tiler_runs.main, tmp_path, variants)
    (tmp_path / "collection.json").write_text(json.dumps({"type": "Collection", "id": "s", "links": None}))
    settings = TilerSettings(allow=[str(tiler_world.root), str(tmp_path)], runs_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="tiler"), TestClient(create_app(settings)) as client:
        listed = client.get("/runs")
    assert listed.status_code == 200, listed.text
    runs = {r["id"]: r for r in listed.json()}
    assert set(variants) | {"good"} <= set(runs)
    assert runs["good"]["backdrop"] is not None
    assert runs["links-null"]["backdrop"] is None
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    for name in ("links-null", "links-number", "links-object", "collection.json"):
        assert name in warned, warned


def test_the_tilers_document_limit_applies_to_runs_items_and_legends(
    tiler_runs: Runs, tiler_world: World, tmp_path: Path
) -> None:
    """LULC_TILER_MAX_RESPONSE_BYTES reaches every JSON read (the reader had only a built-in default)."""
    import shutil

    from fastapi.testclient import TestClient

    from tiler.app import create_app

    shutil.copytree(tiler_runs.main, tmp_path / "main")
    size = (tmp_path / "main" / "item.json").stat().st_size
    url = str(tmp_path / "main" / "classes.tif")
    for limit, listed in ((size, True), (size - 1, False)):
        settings = TilerSettings(allow=[str(tmp_path)], runs_dir=tmp_path, max_response_bytes=limit)
        with TestClient(create_app(settings)) as client:
            runs = client.get("/runs").json()
            legend = client.get("/legend", params={"url": url}).json()
        assert ("main" in {r["id"] for r in runs}) is listed, (limit, runs)
        assert (legend["source"] == "stac") is listed, (limit, legend["source"])
