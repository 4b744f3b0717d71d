"""The service's request limits and error answers over a real uvicorn: kept-alive connections, 401/413 first.

Real parts only: the app under uvicorn on loopback, the demo world over loopback HTTP, real ONNX models.
"""

from __future__ import annotations

import json
import logging
import math
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from tests.service.app_support import SingleModel, World, models_dir, service_settings, shared_world
from tests.support.serve import BackgroundServer

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return shared_world(tmp_path_factory)


@pytest.fixture(scope="module")
def models(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models_dir(tmp_path_factory.mktemp("limits-models"), world)


class ExplodingModels(SingleModel):
    """A model provider whose listing fails with an unexpected (non-lulc) exception."""

    def __init__(self) -> None:
        super().__init__("none", None)  # type: ignore[arg-type]

    def list(self) -> list[Any]:
        raise ZeroDivisionError("secret internal detail")


@pytest.fixture(scope="module")
def service(world: World, models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service under uvicorn with a token, a 64 kB body limit and a 50-vertex AOI limit."""
    base = tmp_path_factory.mktemp("limits")
    settings = service_settings(
        base, world, models, auth_token=TOKEN, max_body_bytes=65536, max_aoi_vertices=50
    )
    with BackgroundServer(create_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="module")
def exploding_service(world: World, models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = service_settings(tmp_path_factory.mktemp("exploding"), world, models)
    with BackgroundServer(create_app(settings, models=ExplodingModels())) as server:
        yield server.url


def client_port(response: httpx.Response) -> int:
    """The local port of the connection a response came on."""
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


def test_a_pooled_client_gets_every_error_answered_on_one_connection(
    service: str, exploding_service: str, caplog: pytest.LogCaptureFixture
) -> None:
    """20 error requests of each kind, one kept-alive connection: 20 answers, no reset, no reconnect."""
    cases = [
        (service, "GET", "/jobs/nope", AUTH, None, 404),
        (service, "GET", "/no/such/route", AUTH, None, 404),
        (service, "GET", "/models", {}, None, 401),
        (service, "POST", "/classify", AUTH, b"{not json", 422),
        (exploding_service, "GET", "/models", {}, None, 500),
    ]
    for base, method, path, headers, body, status in cases:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        with httpx.Client(base_url=base, limits=limits, timeout=30) as client:
            answers, ports = [], set()
            for _ in range(20):
                response = client.request(
                    method, path, headers={**headers, "Content-Type": "application/json"}, content=body
                )
                answers.append(response.status_code)
                ports.add(client_port(response))
                assert response.headers["content-type"] == "application/json"
                assert response.headers.get("connection") != "close"
            assert answers == [status] * 20, (path, answers)
            assert len(ports) == 1, f"{path}: the connection was dropped and re-opened"
    internal = [
        r for r in caplog.records if r.levelno >= logging.ERROR and "ZeroDivisionError" in r.getMessage()
    ]
    assert len(internal) <= 20  # once per request, not again by uvicorn (that would be 40)


def test_the_500_names_only_the_type(exploding_service: str) -> None:
    response = httpx.get(f"{exploding_service}/models", timeout=30)
    assert response.status_code == 500
    assert response.json() == {
        "detail": "internal error (ZeroDivisionError); see the log",
        "type": "InternalError",
    }
    assert "secret" not in response.text


def _raw_exchange(base: str, head: bytes, body: bytes = b"", timeout: float = 10.0) -> tuple[int, bytes]:
    """Send raw request bytes; the status and body of the answer (read until the server closes or timeout)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        header, _, rest = data.partition(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in header.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        while len(rest) < length:
            rest += sock.recv(65536)
        return int(header.split(b" ")[1]), rest


def test_an_unauthenticated_huge_body_gets_401_unread(service: str) -> None:
    """Headers announce 100 MB and no byte of it is sent: the 401 must come anyway, at once."""
    head = (
        b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000000\r\n\r\n"
    )
    status, body = _raw_exchange(service, head)
    assert status == 401
    assert json.loads(body)["detail"] == "missing bearer token"


def test_a_body_over_the_limit_gets_413_unread(service: str) -> None:
    head = (
        b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer t0ken\r\nContent-Length: 100000000\r\n\r\n"
    )
    status, body = _raw_exchange(service, head)
    assert status == 413
    error = json.loads(body)
    assert error["type"] == "RequestTooLarge"
    assert "65,536 bytes" in error["detail"]


def test_a_streamed_body_over_the_limit_gets_413(service: str) -> None:
    """No Content-Length (chunked): counted as it arrives."""

    def chunks() -> Iterator[bytes]:
        yield b'{"aoi": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    response = httpx.post(
        f"{service}/classify",
        content=chunks(),
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413, response.text
    assert response.json()["type"] == "RequestTooLarge"
    # control: a small body is read and judged on its content
    small = httpx.post(f"{service}/classify", json={"aoi": {}}, headers=AUTH, timeout=30)
    assert small.status_code == 422


def test_docs_and_schema_need_the_token(service: str) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert httpx.get(f"{service}{path}", timeout=30).status_code == 401, path
        assert httpx.get(f"{service}{path}", headers=AUTH, timeout=30).status_code == 200, path
    assert httpx.get(f"{service}/healthz", timeout=30).status_code == 200


def _classify(service: str, world: World, **change: Any) -> httpx.Response:
    body = {"aoi": world.aoi(), "datetime": world.datetime, "model": "demo", **change}
    return httpx.post(f"{service}/classify", json=body, headers=AUTH, timeout=120)


def _many_vertices(world: World, n: int) -> dict[str, Any]:
    west, south, east, north = world.bounds
    cx, cy = (west + east) / 2, (south + north) / 2

    ring = [
        [cx + 0.002 * math.cos(2 * math.pi * i / n), cy + 0.002 * math.sin(2 * math.pi * i / n)]
        for i in range(n)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


@pytest.mark.parametrize(
    ("change", "status", "error_type", "words"),
    [
        ({"datetime": " "}, 422, "RequestValidationError", ("blank",)),
        ({"datetime": "x" * 101}, 422, "RequestValidationError", ("100",)),
        ({"crs": "EPSG:4326"}, 400, "InputError", ("not a projected CRS in metres", "10 m")),
        ({"crs": "IAU_2015:30100"}, 400, "InputError", ("not a projected CRS",)),
        ({"crs": "IAU_2015:30110"}, 400, "InputError", ("cannot be transformed",)),
        ({"crs": "x" * 300}, 422, "RequestValidationError", ("200",)),
        # PROJ opens a grid file named in a PROJ string by path (a FIFO there hung the service)
        ({"crs": "+proj=utm +zone=54 +nadgrids=/etc/passwd"}, 400, "InputError", ("AUTHORITY:CODE",)),
        ({"crs": "EPSG:x"}, 400, "InputError", ("unknown CRS",)),
        ({"crs": "EPSG:32654abc"}, 400, "InputError", ("unknown CRS",)),
        # Swiss LV95 for an AOI in Japan: finite numbers, which its inverse takes to 55°E (review: a 422
        # NoValidPixelsError after reading all imagery)
        ({"crs": "EPSG:2056"}, 400, "InputError", ("'EPSG:2056' cannot represent the AOI", "EPSG:32654")),
        ({"model": "m" * 300}, 422, "RequestValidationError", ("200",)),
        ({"aoi": "VERTICES"}, 413, "AoiTooComplexError", ("50 vertices",)),
    ],
)
def test_loose_inputs_are_refused_up_front(
    service: str, world: World, change: dict[str, Any], status: int, error_type: str, words: tuple[str, ...]
) -> None:
    if change.get("aoi") == "VERTICES":
        change = {"aoi": _many_vertices(world, 60)}
    response = _classify(service, world, **change)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == error_type
    for word in words:
        assert word in json.dumps(body["detail"], ensure_ascii=False), body
    assert len(response.content) < 5000  # the input is not echoed back


def test_within_the_vertex_limit_and_in_a_utm_crs_is_classified(service: str, world: World) -> None:
    """Control for the refusals above: 40 vertices and an explicit metric CRS are fine."""
    response = _classify(service, world, aoi=_many_vertices(world, 40), crs="EPSG:3857")
    assert response.status_code == 200, response.text
    assert response.json()["item"]["properties"]["proj:code"] == "EPSG:3857"


def _two_squares(world: World, apart: float) -> dict[str, Any]:
    """Two 0.005° squares ``apart`` degrees apart east and north, the first at the world's centre."""
    west, south, east, north = world.bounds
    cx, cy = (west + east) / 2, (south + north) / 2

    def square(x: float, y: float) -> list[list[list[float]]]:
        return [[[x, y], [x + 0.005, y], [x + 0.005, y + 0.005], [x, y + 0.005], [x, y]]]

    return {"type": "MultiPolygon", "coordinates": [square(cx, cy), square(cx + apart, cy + apart)]}


def test_a_small_aoi_whose_grid_is_huge_is_413(service: str, world: World) -> None:
    """Two tiny squares 3° apart: half a km², but a bounding box of about 270 x 330 km (1.4 Gpx at 10 m)."""
    response = _classify(service, world, aoi=_two_squares(world, 3.0), crs="EPSG:3857")
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["type"] == "AoiTooLargeError"
    assert "Mpx" in body["detail"]
    assert "100.0 Mpx" in body["detail"]
    # the control: the same two squares 0.01° apart make a small grid, and are classified
    close = _classify(service, world, aoi=_two_squares(world, 0.01))
    assert close.status_code == 200, close.text


def test_a_get_with_a_body_over_the_limit_is_413_as_its_openapi_says(service: str) -> None:
    with httpx.Client(timeout=30) as client:
        answer = client.request("GET", f"{service}/healthz", content=b"x" * 70_000)
        schema = client.get(f"{service}/openapi.json", headers=AUTH).json()
    assert answer.status_code == 413
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"400", "413"} <= set(operation["responses"]), (method, path)
