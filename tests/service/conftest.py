"""Engine test fixtures: a model trained in-test on the session's demo world."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

if TYPE_CHECKING:
    from demo.world import DemoWorld

WORLD_BANDS = ("blue", "green", "red", "nir", "swir16")
WORLD_INDICES = ("ndvi", "ndwi", "ndbi")


@dataclass(frozen=True)
class EngineWorld:
    """A generated demo world and a model trained on its training points."""

    root: Path
    catalog: Path
    aoi: dict[str, Any]
    datetime: str
    truth: Path
    validation: Path
    model: Path


@pytest.fixture(scope="session")
def engine_world(demo_world: DemoWorld, tmp_path_factory: pytest.TempPathFactory) -> EngineWorld:
    """The session's demo world and a random forest trained on it through the engine's own reader.

    Training samples the same composite inference reads; the map is larger than a COG tile, so it has
    overviews.
    """
    world = demo_world
    root = tmp_path_factory.mktemp("engine-model")
    aoi = json.loads(world.aoi.read_text())
    model = train_world_model(
        world.catalog, aoi, world.datetime_window, world.train_points, world.classes, root
    )
    return EngineWorld(
        root=world.root,
        catalog=world.catalog,
        aoi=aoi,
        datetime=world.datetime_window,
        truth=world.truth,
        validation=world.validation_points,
        model=model,
    )


def train_world_model(
    catalog: Path, aoi: dict[str, Any], datetime: str, points: Path, classes_yaml: Path, out: Path
) -> Path:
    """Fit a small random forest on composite reflectance sampled at the training points; export it."""
    import geopandas as gpd

    from lulc.classes import load_class_table
    from lulc.features import compute_features
    from service.readers import StacReaderFactory
    from service.request import ClassifyRequest
    from tests.service.engine_support import export_onnx, fit_forest, make_contract

    classes = load_class_table(classes_yaml)
    order = sorted(classes.values)
    contract = make_contract(classes, order, bands=WORLD_BANDS, indices=WORLD_INDICES, model_type="rf")
    factory = StacReaderFactory(str(catalog))
    request = ClassifyRequest(aoi=aoi, datetime=datetime)
    grid = factory.prepare_grid(request, contract)
    reader = factory.open(request, grid, contract)
    frame = gpd.read_file(points).to_crs(grid.crs)
    inv = ~grid.transform
    cols, rows = zip(*(inv @ (p.x, p.y) for p in frame.geometry), strict=True)
    rows_i, cols_i = np.floor(rows).astype(int), np.floor(cols).astype(int)
    samples = np.full((len(frame), len(WORLD_BANDS)), np.nan, dtype=np.float32)
    for block in grid.blocks():
        inside = (
            (rows_i >= block.row)
            & (rows_i < block.row + block.height)
            & (cols_i >= block.col)
            & (cols_i < block.col + block.width)
        )
        if inside.any():
            reflectance = reader.read(block)
            samples[inside] = reflectance[:, rows_i[inside] - block.row, cols_i[inside] - block.col].T
    keep = np.isfinite(samples).all(axis=1)
    x = compute_features(samples[keep].T, WORLD_BANDS, WORLD_INDICES)
    y = frame["label"].to_numpy()[keep].astype(np.int64)
    forest = fit_forest(x, y)
    return export_onnx(forest, x.shape[1], contract, out / "model.onnx")


S3_KEY = "test"
"""Access key id and secret of the loopback S3 server (moto accepts any)."""


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, Any]]:
    """A real S3 HTTP server (moto) on loopback: ``endpoint``, a boto3 ``client``, the service's ``options``.

    Each test module creates the buckets it writes to.
    """
    import boto3
    import moto.server as moto_server

    from service.publish import S3Options

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_KEY,
    )
    options = S3Options(
        endpoint=endpoint, access_key_id=S3_KEY, secret_access_key=S3_KEY, allow_http=True, region="us-east-1"
    )
    yield {"endpoint": endpoint, "client": client, "options": options}
    server.stop()
