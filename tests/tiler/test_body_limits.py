"""The tiler's request bodies: one that does not arrive is 408, more at once than the setting 429.

HTTP review: a client sending ``{`` of a promised body and then nothing held its connection for good, and 100
clients each stalling on a 4 MB body held 450 MB that stayed. Real parts: the app served by uvicorn on
loopback, raw sockets as the slow clients.
"""

from __future__ import annotations

import http.client
import socket
import time
from urllib.parse import urlparse

import httpx

from tests.support.serve import BackgroundServer
from tests.tiler.conftest import Runs, World
from tiler.app import create_app
from tiler.settings import TilerSettings

POLYGON = (
    b'{"type": "Polygon", "coordinates": [[[140.0, 36.0], [140.01, 36.0], [140.01, 36.01], [140.0, 36.0]]]}'
)


def stalled(url: str, path: str, source: str = "127.0.0.1") -> socket.socket:
    """A connection that sent a POST's headers and the first byte of its 1,000-byte body, then nothing."""
    address = urlparse(url)
    client = socket.create_connection(
        (address.hostname, address.port), timeout=30, source_address=(source, 0)
    )
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
    client.sendall(f"{head}\r\n{{".encode())
    return client


def answer(client: socket.socket) -> tuple[int, str]:
    response = http.client.HTTPResponse(client)
    response.begin()
    body = response.read().decode()
    client.close()
    return response.status, body


def test_a_late_body_is_408_and_too_many_bodies_429(tiler_world: World, tiler_runs: Runs) -> None:
    settings = TilerSettings(
        allow=[str(tiler_world.root), str(tiler_runs.root)], body_timeout_seconds=1.0, max_body_requests=2
    )
    path = f"/statistics?url={tiler_runs.main / 'classes.tif'}"
    with BackgroundServer(create_app(settings)) as server:
        idle = [stalled(server.url, path) for _ in range(2)]  # every place
        time.sleep(0.3)
        busy = httpx.post(
            f"{server.url}{path}", content=POLYGON, headers={"content-type": "application/json"}
        )
        health = httpx.get(f"{server.url}/healthz")  # no body: never counted, never refused
        started = time.monotonic()
        answers = [answer(client) for client in idle]
        waited = time.monotonic() - started
        after = httpx.post(
            f"{server.url}{path}", content=POLYGON, headers={"content-type": "application/json"}, timeout=60
        )
    assert busy.status_code == 429, busy.text
    assert busy.headers["retry-after"] == "5"
    assert "(max_body_requests)" in busy.json()["detail"]
    assert health.status_code == 200
    for status, body in answers:
        assert status == 408, body
        assert "did not arrive within 1 s" in body
    assert waited < 10
    assert after.status_code != 429, after.text  # the places are free again
    assert after.status_code != 408, after.text


def test_one_client_cannot_hold_every_place(tiler_world: World, tiler_runs: Runs) -> None:
    """Review: 16 stalled bodies from one client kept every POST at 429 for everyone for 30 s at a time."""
    settings = TilerSettings(
        allow=[str(tiler_world.root), str(tiler_runs.root)],
        body_timeout_seconds=2.0,
        max_body_requests=4,
        max_body_requests_per_client=2,
    )
    path = f"/statistics?url={tiler_runs.main / 'classes.tif'}"
    other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=60)
    with BackgroundServer(create_app(settings)) as server, other:
        idle = [stalled(server.url, path) for _ in range(2)]  # the one client's places
        time.sleep(0.3)
        busy = stalled(server.url, path)
        busy.sendall(b"x" * 999)
        served = other.post(
            f"{server.url}{path}", content=POLYGON, headers={"content-type": "application/json"}
        )
        refused = answer(busy)
        for client in idle:
            answer(client)
    assert refused[0] == 429, refused
    assert "2 requests with a body from your address" in refused[1]
    assert "(max_body_requests_per_client)" in refused[1]
    assert served.status_code not in (408, 429), served.text  # another address still has places
