"""``RequestGuard``'s body timer: it times the body's arrival from the app's first read, nothing else.

Plain ASGI: a small app and hand-made ``receive``/``send`` (a body that arrives, or stalls), no server.
"""

from __future__ import annotations

import json
from typing import Any

import anyio

from lulc.http_guard import RequestGuard


def _app(work_seconds: float) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await anyio.sleep(work_seconds)  # the app's own work before it reads the body
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def _run(work_seconds: float, stalls: bool) -> tuple[int, bytes]:
    chunks = [{"type": "http.request", "body": b"ab", "more_body": True}]
    if not stalls:
        chunks.append({"type": "http.request", "body": b"cd", "more_body": False})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await anyio.sleep(0)  # a server's receive waits on its queue: a checkpoint, where a timeout bites
        if chunks:
            return chunks.pop(0)
        await anyio.sleep(3600)  # the client sends nothing more
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    guard = RequestGuard(
        _app(work_seconds),
        error_body=lambda status, detail, kind: {"detail": detail},
        max_body_bytes=1000,
        body_timeout_seconds=0.3,
    )
    scope = {"type": "http", "method": "POST", "path": "/x", "headers": [(b"content-length", b"4")]}

    async def main() -> None:
        with anyio.fail_after(10):
            await guard(scope, receive, send)

    anyio.run(main)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(sent[0]["status"]), body


def test_the_apps_work_before_reading_is_not_the_clients_delay() -> None:
    """Review: the deadline ran from the request's arrival, so 0.5 s of the app's work made a 408."""
    assert _run(work_seconds=0.5, stalls=False) == (200, b"abcd")


def test_a_body_that_stalls_is_408_from_the_first_read() -> None:
    status, body = _run(work_seconds=0.0, stalls=True)
    assert status == 408
    assert json.loads(body) == {"detail": "the request body did not arrive within 0.3 s"}
