"""`lulc demo` end to end: world, model, map and assessment, then the web map it serves."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from demo.run import run_demo
from tests.support.serve import BackgroundServer
from tiler.app import create_app
from tiler.settings import TilerSettings


@pytest.mark.slow
def test_demo_trains_classifies_assesses_and_serves_the_map(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_demo(tmp_path / "demo", size=512, seed=0, echo=lines.append)
    assert [line[:4] for line in lines] == ["1/4 ", "2/4 ", "3/4 ", "4/4 "]
    assert (result.model / "model.onnx").is_file()
    assert {p.name for p in result.run.iterdir()} >= {
        "classes.tif",
        "confidence.tif",
        "item.json",
        "stats.json",
    }
    # a 512 px world has few points: the 2 pp agreement is checked on the default world elsewhere
    assert result.holdout_accuracy > 0.9
    assert result.map_accuracy > 0.9

    out = tmp_path / "demo"
    settings = TilerSettings(allow=[str(out)], runs_dir=out / "runs", models_dir=out / "models")
    with BackgroundServer(create_app(settings)) as server:
        page = httpx.get(f"{server.url}/", timeout=30)
        assert page.status_code == 200
        assert "leaflet" in page.text.lower()
        runs = httpx.get(f"{server.url}/runs", timeout=30).json()
        assert json.dumps(runs).count("classes.tif") >= 1
        legend = httpx.get(
            f"{server.url}/legend", params={"url": str(result.run / "classes.tif")}, timeout=30
        )
        assert legend.status_code == 200
        names = {c["name"] for c in legend.json()["classes"]}
        assert {"Water", "Forest"} <= names
