"""Cancelling jobs: ``DELETE /jobs/{id}``, and a synchronous request whose client goes away."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.jobs import JobNotFoundError, JobState
from service.settings import ServiceSettings
from tests.service.app_support import World, blocking_provider, models_dir, service_settings, shared_world
from tests.support.serve import BackgroundServer

AOI_DEG = 0.03
"""About 330 x 270 px: four blocks of 256 px, so a job cancelled at its first block has more to do."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return shared_world(tmp_path_factory)


@pytest.fixture(scope="module")
def models(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models_dir(tmp_path_factory.mktemp("cancel-models"), world)


def _client(settings: ServiceSettings, **kwargs: Any) -> TestClient:
    return TestClient(create_app(settings, **kwargs), raise_server_exceptions=False)


def _finished(client: TestClient, href: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(href).json()
        if body["status"] != "running":
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {href} still running after {timeout} s")


def _maps_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name in {"classes.tif", "item.json"})


def _known(jobs: Any, job_id: str) -> bool:
    try:
        jobs.get(job_id)
    except JobNotFoundError:
        return False
    return True


def test_a_cancelled_job_stops_publishes_nothing_and_frees_its_slot(
    world: World, models: Path, tmp_path: Path
) -> None:
    provider, runner = blocking_provider(models)
    settings = service_settings(tmp_path, world, models, sync_max_km2=0.01, max_concurrent_jobs=1)
    client = _client(settings, models=provider)
    request = {"aoi": world.aoi(AOI_DEG), "datetime": world.datetime, "model": "demo"}
    first = client.post("/classify", json=request)
    assert first.status_code == 202, first.text
    href = first.json()["href"]
    assert runner.entered.wait(60), "the job never reached inference"
    try:
        asked = client.delete(href)
        assert asked.status_code == 202, asked.text
        assert asked.json()["status"] == "running"  # it stops at its next block
    finally:
        runner.gate.set()
    done = _finished(client, href)
    assert done["status"] == "cancelled", done
    assert done["error"]["type"] == "JobCancelledError"
    assert done["error_status"] == 409
    assert done["result"] is None
    assert done["progress"]["done"] < done["progress"]["total"], done["progress"]
    assert _maps_under(settings.output_dir) == []
    assert client.get("/healthz").json()["running_jobs"] == 0

    again = client.delete(href)
    assert again.status_code == 409, again.text
    assert again.json()["type"] == "JobFinishedError"
    assert "already cancelled" in again.json()["detail"]
    unknown = client.delete("/jobs/" + "0" * 32)
    assert unknown.status_code == 404, unknown.text
    # the slot is free: the next job runs to its end, and cancelling it then is a 409
    second = client.post("/classify", json=request)
    assert second.status_code == 202, second.text
    assert _finished(client, second.json()["href"])["status"] == "succeeded"
    late = client.delete(second.json()["href"])
    assert late.status_code == 409, late.text
    assert "already succeeded" in late.json()["detail"]
    # the cancelled job's record outlives a restart
    restarted = _client(settings, models=provider)
    assert restarted.get(href).json()["status"] == "cancelled"


def test_a_synchronous_request_whose_client_leaves_cancels_its_job(
    world: World, models: Path, tmp_path: Path
) -> None:
    provider, runner = blocking_provider(models)
    settings = service_settings(tmp_path, world, models, max_concurrent_jobs=1)
    app = create_app(settings, models=provider)
    request = {"aoi": world.aoi(AOI_DEG), "datetime": world.datetime, "model": "demo"}
    body = json.dumps(request).encode()
    with BackgroundServer(app) as server:
        client = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        client.sendall(
            b"POST /classify HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        try:
            assert runner.entered.wait(60), "the request's job never reached inference"
            jobs = [p.name for p in settings.output_dir.iterdir() if not p.name.startswith(".")]
            assert len(jobs) == 1, jobs
            job = app.state.jobs.get(jobs[0])
            assert not job.cancelling.is_set()  # the client is still waiting
            client.close()  # its timeout, a closed page
            assert job.cancelling.wait(10), "the job was not cancelled when its client went away"
        finally:
            runner.gate.set()
        assert job.wait(60)
        assert job.state is JobState.CANCELLED
        deadline = time.monotonic() + 10  # its id was never given out: the handler forgets it
        while time.monotonic() < deadline and _known(app.state.jobs, job.id):
            time.sleep(0.05)
        assert not _known(app.state.jobs, job.id)
        assert _maps_under(settings.output_dir) == []
        assert httpx.get(f"{server.url}/healthz").json()["running_jobs"] == 0
        # a client that waits gets its answer
        answer = httpx.post(f"{server.url}/classify", json=request, timeout=120)
        assert answer.status_code == 200, answer.text


def _gone(caplog: pytest.LogCaptureFixture, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any("went away" in r.getMessage() for r in caplog.records if r.name == "service.app"):
            return True
        time.sleep(0.05)
    return False


def _post_and_leave(port: int, body: bytes, sent: int, ready: threading.Event | None = None) -> None:
    """POST ``sent`` bytes of ``body`` (announcing all of it); close once ``ready`` is set."""
    client = socket.create_connection(("127.0.0.1", port), timeout=60)
    client.sendall(
        b"POST /classify HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:sent]
    )
    if ready is not None:
        assert ready.wait(60)
    client.close()


def test_a_client_gone_mid_body_is_not_an_internal_error(
    world: World, models: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Review: it was logged as a 500 (``ClientDisconnect``) with its traceback; 500 means a bug."""
    caplog.set_level(logging.INFO, logger="service.app")
    body = json.dumps({"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}).encode()
    with BackgroundServer(create_app(service_settings(tmp_path, world, models))) as server:
        _post_and_leave(server.port, body, len(body) // 2)
        assert _gone(caplog), [r.getMessage() for r in caplog.records]
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_client_gone_while_its_aoi_is_checked_gets_no_search_and_no_job(
    world: World, models: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from service.output_crs import check_aoi

    caplog.set_level(logging.INFO, logger="service.app")
    checking, closed = threading.Event(), threading.Event()

    def held_check(*args: Any) -> float:
        checking.set()
        assert closed.wait(60)
        time.sleep(0.5)  # uvicorn sees the closed connection meanwhile
        return check_aoi(*args)

    provider, runner = blocking_provider(models)
    runner.gate.set()
    settings = service_settings(tmp_path, world, models)
    app = create_app(settings, models=provider, aoi_check=held_check)
    body = json.dumps({"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}).encode()
    with BackgroundServer(app) as server:
        asked = len(world.server.requests)
        leaving = threading.Thread(target=_post_and_leave, args=(server.port, body, len(body), checking))
        leaving.start()
        leaving.join(60)
        closed.set()
        assert _gone(caplog), [r.getMessage() for r in caplog.records]
    assert len(world.server.requests) == asked  # no search of the imagery
    assert not runner.entered.is_set()
    assert app.state.jobs.running == 0
    if settings.output_dir.exists():
        assert not list(settings.output_dir.rglob("*"))  # no job folder, no job record


def test_healthz_answers_head_as_probes_send_it(world: World, models: Path, tmp_path: Path) -> None:
    from tiler.app import create_app as create_tiler
    from tiler.settings import TilerSettings

    client = _client(service_settings(tmp_path, world, models))
    tiler = TestClient(create_tiler(TilerSettings(allow=[str(tmp_path)])))
    for app in (client, tiler):
        assert app.head("/healthz").status_code == 200
        assert app.get("/healthz").json()["status"] == "ok"
        assert "head" in app.get("/openapi.json").json()["paths"]["/healthz"]
