"""`lulc classify --probabilities`: a percent band per class that agrees with the labels, and its tiles."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import morecantile
import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from demo.world import DemoWorld
from service.api import MapRun, classify
from tests.support.serve import BackgroundServer
from tests.support.stac_validation import assert_valid_stac_file
from tiler.app import create_app
from tiler.settings import TilerSettings

MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "pre-move-demo"


@pytest.fixture(scope="module")
def run(demo_world: DemoWorld, tmp_path_factory: pytest.TempPathFactory) -> MapRun:
    return classify(
        MODEL,
        stac=str(demo_world.catalog),
        aoi=json.loads(demo_world.aoi.read_text()),
        datetime=demo_world.datetime_window,
        probabilities=True,
        out=tmp_path_factory.mktemp("probabilities") / "run",
    )


def test_the_probability_cog_has_a_named_percent_band_per_class(run: MapRun) -> None:
    assert run.probabilities is not None
    valid, errors, warnings = cog_validate(str(run.probabilities))
    assert valid, errors
    assert not warnings
    with rasterio.open(run.probabilities) as src:
        assert src.count == len(run.table.classes)
        assert list(src.descriptions) == [c.name for c in run.table.classes]
        assert src.nodata == 255
        assert src.dtypes[0] == "uint8"
    asset = run.item["assets"]["probabilities"]
    assert [b["name"] for b in asset["raster:bands"]] == [c.name for c in run.table.classes]
    assert_valid_stac_file(run.classes.parent / "item.json")


def test_every_pixel_sums_to_100_and_its_argmax_is_its_label(run: MapRun) -> None:
    labels = run.labels()
    assert run.probabilities is not None
    with rasterio.open(run.probabilities) as src:
        percent = src.read().astype(np.int64)
    valid = labels != 255
    assert valid.sum() > 100_000
    n_classes = percent.shape[0]
    sums = percent[:, valid].sum(axis=0)
    assert np.all(np.abs(sums - 100) <= n_classes)
    assert np.all(percent[:, ~valid] == 255)
    ranked = np.sort(percent[:, valid], axis=0)
    clear = ranked[-1] - ranked[-2] > 1  # the top two differ by more than rounding
    values = np.array([c.value for c in run.table.classes])
    top = values[np.argmax(percent[:, valid], axis=0)]
    assert clear.mean() > 0.9
    assert np.array_equal(top[clear], labels[valid][clear])


def test_the_tiler_serves_one_class_probability_with_a_colour_ramp(run: MapRun) -> None:
    assert run.probabilities is not None
    west, south, east, north = run.item["bbox"]
    tile = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, 13)
    settings = TilerSettings(allow=[str(run.classes.parent)])
    with BackgroundServer(create_app(settings)) as server:
        path = f"/cog/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png"
        params = {"url": str(run.probabilities), "bidx": 3, "rescale": "0,100", "colormap_name": "viridis"}
        answer = httpx.get(server.url + path, params=params, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    from io import BytesIO

    from PIL import Image

    image = np.asarray(Image.open(BytesIO(answer.content)).convert("RGBA"))
    opaque = image[..., 3] > 0
    assert opaque.mean() > 0.5
    colours = {tuple(c) for c in image[opaque][:, :3].tolist()}
    assert len(colours) > 5  # a ramp, not the handful of class colours
