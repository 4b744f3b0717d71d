"""The order of a request's checks: cheap ones first, the AOI's last and a few at a time.

Review: a 2.5 MB MultiPolygon with model "nope" took 2.1 s to get its 404 (the AOI was parsed first), and
20 such requests at once made ``/healthz`` take 7.7 s (probes time out at 3 s).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import AOI_CHECKS_AT_ONCE, create_app
from service.output_crs import check_aoi
from service.runner import ModelRunner, load_model
from service.settings import ServiceSettings
from service.workflow import AoiTooLargeError, Order
from tests.service.app_support import SingleModel, World, models_dir, service_settings, shared_world
from tests.support.serve import BackgroundServer

BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[140.0, 36.0], [140.01, 36.01], [140.01, 36.0], [140.0, 36.01], [140.0, 36.0]]],
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return shared_world(tmp_path_factory)


@pytest.fixture(scope="module")
def models(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models_dir(tmp_path_factory.mktemp("order-models"), world)


class CountingAoiCheck:
    """The service's AOI checks, counted (and optionally held at a gate, or refused after it)."""

    def __init__(self, then: Callable[[Order, ServiceSettings, float], float] = check_aoi) -> None:
        self.then = then
        self.calls = 0
        self.inside = 0
        self.most_inside = 0
        self._lock = threading.Lock()

    def __call__(self, order: Order, settings: ServiceSettings, resolution: float) -> float:
        with self._lock:
            self.calls += 1
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            return self.then(order, settings, resolution)
        finally:
            with self._lock:
                self.inside -= 1


def test_an_unknown_model_is_404_before_the_aoi_is_parsed(world: World, models: Path, tmp_path: Path) -> None:
    check = CountingAoiCheck()
    client = TestClient(create_app(service_settings(tmp_path, world, models), aoi_check=check))
    request = {"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"model": "nope"}, 404, "ModelNotFoundError"),
        ({"model": "nope", "aoi": BOWTIE}, 404, "ModelNotFoundError"),  # was a 400 for the AOI
        ({"datetime": "last summer", "aoi": BOWTIE}, 400, "InputError"),
        ({"crs": "EPSG:4326"}, 400, "InputError"),
        ({"stac": "https://evil.example/stac/v1"}, 403, "HostNotAllowedError"),
    ]
    for change, status, error_type in cases:
        answer = client.post("/classify", json={**request, **change})
        assert answer.status_code == status, (change, answer.text)
        assert answer.json()["type"] == error_type, (change, answer.text)
        assert "Self-intersection" not in answer.text
    assert check.calls == 0
    # control: a request passing the cheap checks has its AOI checked, once
    refused = client.post("/classify", json={**request, "aoi": BOWTIE})
    assert refused.status_code == 400
    assert "Self-intersection" in refused.json()["detail"]
    assert check.calls == 1


class CountingModels(SingleModel):
    """The demo model, counting the requests that asked for it (the first step of every classify)."""

    def __init__(self, runner: ModelRunner) -> None:
        super().__init__("demo", runner)
        self.asked = 0
        self._lock = threading.Lock()

    def get(self, model_id: str) -> ModelRunner:
        with self._lock:
            self.asked += 1
        return super().get(model_id)


def held_checks() -> tuple[threading.Event, CountingAoiCheck]:
    """AOI checks that wait at a gate, then refuse the request (413): no job runs."""
    gate = threading.Event()

    def held(order: Order, settings: ServiceSettings, resolution: float) -> float:
        if not gate.wait(60):
            raise TimeoutError("the test never opened the gate")
        raise AoiTooLargeError("held, then refused: no job runs")

    return gate, CountingAoiCheck(then=held)


def test_health_and_polls_answer_while_many_aoi_checks_wait(
    world: World, models: Path, tmp_path: Path
) -> None:
    """More slow AOI checks than the server has worker threads (anyio's 40): /healthz, polls still answer."""
    gate, check = held_checks()
    provider = CountingModels(load_model(models / "demo"))
    waiting = 45
    settings = service_settings(tmp_path, world, models, max_waiting_requests=waiting)
    app = create_app(settings, models=provider, aoi_check=check)
    request = {"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}
    with BackgroundServer(app) as server, ThreadPoolExecutor(waiting) as pool:
        try:
            answers = [
                pool.submit(httpx.post, f"{server.url}/classify", json=request, timeout=90)
                for _ in range(waiting)
            ]
            deadline = time.monotonic() + 30
            while provider.asked < waiting and time.monotonic() < deadline:
                time.sleep(0.05)
            started = time.monotonic()
            health = httpx.get(f"{server.url}/healthz", timeout=3)
            listing = httpx.get(f"{server.url}/models", timeout=3)
            job = httpx.get(f"{server.url}/jobs/{'0' * 32}", timeout=3)
            took = time.monotonic() - started
            arrived, inside = provider.asked, check.inside
        finally:
            gate.set()
        statuses = [answer.result().status_code for answer in answers]
    assert health.status_code == 200
    assert listing.status_code == 200
    assert job.status_code == 404
    assert took < 3
    assert arrived == waiting  # every request was past its cheap checks, waiting for (or in) its AOI check
    assert inside == AOI_CHECKS_AT_ONCE
    assert check.most_inside == AOI_CHECKS_AT_ONCE
    assert statuses == [413] * waiting


def test_posts_beyond_the_admission_limit_get_429_before_their_body_is_read(
    world: World, models: Path, tmp_path: Path
) -> None:
    """Review: 60 bodies of 3.8 MB waiting for their AOI check, each held parsed, took a service to 1.2 GB."""
    gate, check = held_checks()
    provider = CountingModels(load_model(models / "demo"))
    settings = service_settings(tmp_path, world, models, max_concurrent_jobs=1, max_waiting_requests=2)
    app = create_app(settings, models=provider, aoi_check=check)
    request = {"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}
    limit = settings.max_concurrent_jobs + settings.max_waiting_requests
    with BackgroundServer(app) as server, ThreadPoolExecutor(limit) as pool:
        try:
            inside = [
                pool.submit(httpx.post, f"{server.url}/classify", json=request, timeout=90)
                for _ in range(limit)
            ]
            deadline = time.monotonic() + 30
            while provider.asked < limit and time.monotonic() < deadline:
                time.sleep(0.05)
            huge = b'{"model": "demo", "aoi": ' + b" " * 3_000_000 + b"}"  # refused with 422 once read
            with httpx.Client(base_url=server.url, timeout=10) as client:
                busy = [client.post("/classify", content=huge, headers={"content-type": "application/json"})]
                busy.append(client.post("/classify", json=request))  # the same connection, still open
                health = client.get("/healthz")
            asked = provider.asked
        finally:
            gate.set()
        statuses = [answer.result().status_code for answer in inside]
        after = httpx.post(f"{server.url}/classify", json={**request, "model": "nope"}, timeout=10)
    for answer in busy:
        assert answer.status_code == 429, answer.text
        assert answer.json()["type"] == "BusyError"
        assert f"the limit is {limit}" in answer.json()["detail"]
        assert answer.headers["retry-after"] == str(settings.retry_after_seconds)
    assert health.status_code == 200
    assert asked == limit  # the refused requests never reached the model lookup
    assert statuses == [413] * limit
    assert after.status_code == 404  # the slots are free again


def test_a_body_that_does_not_arrive_is_408_and_frees_its_place(
    world: World, models: Path, tmp_path: Path
) -> None:
    """Diff review: ten clients sending a brace, then nothing, held every place for as long as they liked."""
    import http.client
    import socket
    from urllib.parse import urlparse

    settings = service_settings(
        tmp_path, world, models, max_concurrent_jobs=1, max_waiting_requests=1, body_timeout_seconds=1.0
    )
    request = {"aoi": world.aoi(), "datetime": world.datetime, "model": "nope"}
    with BackgroundServer(create_app(settings)) as server:
        address = urlparse(server.url)
        idle = []
        for _ in range(2):  # every place
            client = socket.create_connection((address.hostname, address.port), timeout=30)
            client.sendall(
                b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n{"
            )
            idle.append(client)
        time.sleep(0.3)
        busy = httpx.post(f"{server.url}/classify", json=request, timeout=10)
        answers = []
        for client in idle:  # after about a second; headers and body may come in two packets
            response = http.client.HTTPResponse(client)
            response.begin()
            answers.append((response.status, response.read().decode()))
            client.close()
        after = httpx.post(f"{server.url}/classify", json=request, timeout=10)
    assert busy.status_code == 429, busy.text
    for status, body in answers:
        assert status == 408, body
        assert "did not arrive within 1 s" in body
    assert after.status_code == 404, after.text  # the places are free again
