"""What a finished job keeps, in memory and in its record: a poll's worth, whatever the AOI's vertex count.

Review: each finished job kept its whole ``Outcome``, the STAC item with the AOI's full geometry, in memory
and in ``.jobs/<id>.json``: 14 MB per job for a 90,000-vertex AOI, ``max_finished_jobs`` (1000) of them.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lulc.errors import ReadError
from service.app import create_app
from service.jobs import Job, JobRegistry, JobState
from tests.service.app_support import World, models_dir, service_settings, shared_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return shared_world(tmp_path_factory)


@pytest.fixture(scope="module")
def models(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models_dir(tmp_path_factory.mktemp("memory-models"), world)


def circle(world: World, vertices: int, radius: float = 0.003) -> dict[str, Any]:
    """A polygon of ``vertices`` vertices around the world's centre."""
    west, south, east, north = world.bounds
    cx, cy = (west + east) / 2, (south + north) / 2
    ring = [
        [
            cx + radius * math.cos(2 * math.pi * i / vertices),
            cy + radius * math.sin(2 * math.pi * i / vertices),
        ]
        for i in range(vertices)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def kept_bytes(job: Job) -> int:
    """The size of what the registry holds for a finished job (pickled: everything reachable from it)."""
    return len(pickle.dumps((job.result, job.error, job.info, job.progress)))


def test_a_finished_job_keeps_the_same_small_state_for_any_aoi(
    world: World, models: Path, tmp_path: Path
) -> None:
    settings = service_settings(tmp_path, world, models, sync_max_km2=100.0)
    app = create_app(settings)
    kept: dict[str, tuple[int, int]] = {}
    answers: list[tuple[dict[str, Any], dict[str, Any]]] = []
    with TestClient(app, raise_server_exceptions=False) as client:
        for name, aoi in (("square", world.aoi()), ("50k vertices", circle(world, 50_000))):
            response = client.post(
                "/classify", json={"aoi": aoi, "datetime": world.datetime, "model": "demo"}
            )
            assert response.status_code == 200, response.text
            body = response.json()
            ring = body["item"]["geometry"]["coordinates"][0]
            assert len(ring) >= len(aoi["coordinates"][0])  # the answer carries the item whole
            job = app.state.jobs.get(body["job_id"])
            record = settings.output_dir / ".jobs" / f"{body['job_id']}.json"
            kept[name] = (kept_bytes(job), record.stat().st_size)
            answers.append((body, client.get(f"/jobs/{body['job_id']}").json()))
    (square_memory, square_record), (many_memory, many_record) = kept["square"], kept["50k vertices"]
    # the 50,000 vertices alone are about 1 MB as JSON: none of it is kept
    assert many_memory < 20_000, kept
    assert many_record < 20_000, kept
    assert abs(many_memory - square_memory) < 2_000, kept
    assert abs(many_record - square_record) < 2_000, kept
    for body, polled in answers:  # a poll still gives everything but the item, and the item's URL
        assert polled["status"] == "succeeded"
        assert polled["result"]["item_url"] == body["assets"]["item.json"]
        assert polled["result"]["item"] is None
        assert polled["result"]["assets"] == body["assets"]
        assert polled["result"]["stats"] == body["stats"]
        assert polled["result"]["tiles"] == body["tiles"]
        assert polled["result"]["output_url"] == body["output_url"]


def test_a_failed_job_keeps_its_error_without_the_work_s_frames(tmp_path: Path) -> None:
    """A traceback keeps every frame of the work alive, with its locals (the order and its AOI)."""
    registry = JobRegistry(1)

    def failing(job: Job) -> None:
        aoi = {"coordinates": [[float(i), float(i)] for i in range(50_000)]}  # a local of the failing frame
        raise ReadError(f"server gone after {len(aoi['coordinates'])} vertices")

    job = registry.submit(failing)
    assert job.wait(30)
    registry.shutdown()
    assert job.state is JobState.FAILED
    assert type(job.error) is ReadError  # same class, so the same status
    assert str(job.error) == "server gone after 50000 vertices"
    assert job.error.__traceback__ is None
    assert job.error.__context__ is None
    assert job.error.__cause__ is None


def test_a_record_written_before_keeps_answering(world: World, models: Path, tmp_path: Path) -> None:
    """A record of an earlier version holds the whole ``Outcome``: polled, it answers as a new one does."""
    from service.job_store import JobStore
    from service.jobs import Job as StoredJob
    from service.workflow import Outcome

    settings = service_settings(tmp_path, world, models)
    outcome = Outcome(
        output_url="/out/x",
        assets={"classes.tif": "/out/x/classes.tif", "item.json": "/out/x/item.json"},
        item={"id": "x", "geometry": circle(world, 100)},
        stats={"valid": 1},
    )
    old = StoredJob(id="a" * 32, state=JobState.SUCCEEDED, result=outcome, info={"area_km2": 1.0})
    old.finished = old.created
    JobStore(settings.output_dir).save(old.record())
    record = json.loads((settings.output_dir / ".jobs" / f"{old.id}.json").read_text())
    assert record["result"]["fields"]["item"]["id"] == "x"  # as earlier versions wrote it
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        polled = client.get(f"/jobs/{old.id}")
    assert polled.status_code == 200, polled.text
    result = polled.json()["result"]
    assert result["item"] is None
    assert result["item_url"] == "/out/x/item.json"
    assert result["assets"] == outcome.assets
