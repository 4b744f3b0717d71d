"""The one request-limits layer of both web apps: bearer token, body size, unexpected errors (plain ASGI).

``RequestGuard`` wraps an ASGI app (inside Starlette's error middleware, outside its exception
handlers) and, per HTTP request:

1. refuses a missing or wrong bearer token with 401 before anything else, body unread;
2. refuses a body over ``max_body_bytes`` with 413: at once from ``Content-Length``, else as soon as
   the streamed body passes the limit (what the app answered then is dropped);
3. answers 408 when a body does not arrive within ``body_timeout_seconds`` of the app's first read (a client
   sending a brace and then nothing held its place, and its part of a body, for as long as it liked), and,
   with ``max_body_requests``, 429 before reading a body while that many requests with one are inside
   (``max_body_requests_per_client``: from the client's address, so that one client cannot hold them all);
4. answers an exception no handler took with a JSON 500 that names only the exception's type, and
   logs its traceback once. Starlette would answer too, but then re-raise, and uvicorn closes the
   kept-alive connection: a pooled client loses its next request.

No web framework is imported here: the apps pass how their error bodies look.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
from starlette.requests import ClientDisconnect

from lulc.http_status import clip, public_detail

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ErrorBody = Callable[[int, str, str], dict[str, Any]]
"""How an app's error bodies look: ``(status, detail, type) -> JSON object``."""


class _BodyTooLargeError(Exception):
    """Raised into the app when the streamed body passes the limit."""


class _BodyTooLateError(Exception):
    """Raised into the app when the body has not arrived within the timeout."""


class RequestGuard:
    """ASGI middleware: token check, body-size limit, and JSON 500s that keep the connection alive.

    Args:
        app: the wrapped ASGI app.
        error_body: builds the app's JSON error body.
        max_body_bytes: largest request body accepted.
        token: the bearer token every request needs (but those to ``public_paths``); None: no check.
        public_paths: paths served without the token: exact, or prefixes ending in ``/`` (``/`` itself
            is exact).
        logger: where unexpected errors are logged (once, with traceback).
        body_timeout_seconds: how long a request's body may take to arrive, from the app's first read of
            it; None: no limit. Only the body's reading is timed: an app waiting for the client to go away
            once the body is in is not.
        max_body_requests: requests with a body inside the app at once (read, then answered); beyond: 429
            with ``Retry-After: retry_after_seconds``, the body unread. None: no limit.
        max_body_requests_per_client: as many from one client address (the ASGI scope's ``client``: behind
            a proxy, the address the server takes from its forwarded headers). None: no limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        error_body: ErrorBody,
        max_body_bytes: int,
        token: str | None = None,
        public_paths: tuple[str, ...] = ("/healthz",),
        logger: str = "lulc.http",
        body_timeout_seconds: float | None = None,
        max_body_requests: int | None = None,
        max_body_requests_per_client: int | None = None,
        retry_after_seconds: int = 30,
    ) -> None:
        self.app = app
        self.error_body = error_body
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout_seconds
        self.max_body_requests = max_body_requests
        self.retry_after = retry_after_seconds
        self.per_client = max_body_requests_per_client
        self.with_body = 0  # counted in the event loop's thread alone: no lock
        self.by_client: dict[str, int] = {}
        self.token = token.encode() if token else None
        self.public_paths = public_paths
        self.log = logging.getLogger(logger)

    def is_public(self, path: str) -> bool:
        """Whether ``path`` is served without the token."""
        return any(
            path == p or (len(p) > 1 and p.endswith("/") and path.startswith(p)) for p in self.public_paths
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Guard one HTTP request (other scopes pass through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, detail, kind, extra = refusal
            await self._answer(send, status, detail, kind, extra)
            return
        length = headers.get("content-length", b"0").strip()
        if length in (b"0", b"") and "transfer-encoding" not in headers:  # no body to wait for
            await self._guarded(scope, receive, send)
            return
        client = str((scope.get("client") or ("",))[0])
        busy = self._busy(client)
        if busy is not None:
            detail = f"{busy}; retry after {self.retry_after} s"
            await self._answer(send, 429, detail, "Busy", {"Retry-After": str(self.retry_after)})
            return
        self.with_body += 1
        self.by_client[client] = self.by_client.get(client, 0) + 1
        try:
            await self._guarded(scope, receive, send)
        finally:
            self.with_body -= 1
            self.by_client[client] -= 1
            if not self.by_client[client]:
                del self.by_client[client]

    def _busy(self, client: str) -> str | None:
        """Why a request with a body from ``client`` must wait (429), or None."""
        if self.max_body_requests is not None and self.with_body >= self.max_body_requests:
            return (
                f"{self.with_body} requests with a body are being read or answered, this server's limit "
                "(max_body_requests)"
            )
        held = self.by_client.get(client, 0)
        if self.per_client is not None and held >= self.per_client:
            return (
                f"{held} requests with a body from your address are being read or answered, this server's "
                "limit for one client (max_body_requests_per_client)"
            )
        return None

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request with its body counted and timed, and the app's unexpected errors answered."""
        state = {"started": False, "over": False, "late": False, "received": 0, "complete": False}
        deadline = math.inf  # set at the app's first read: the body is timed, not the app's work before it

        async def counted_receive() -> Message:
            nonlocal deadline
            if self.body_timeout is not None and deadline == math.inf:
                deadline = anyio.current_time() + self.body_timeout
            if state["complete"] or deadline == math.inf:
                message = await receive()
            else:
                with anyio.move_on_after(max(0.0, deadline - anyio.current_time())) as waiting:
                    message = await receive()
                if waiting.cancelled_caught:
                    state["late"] = True
                    raise _BodyTooLateError
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if not message.get("more_body", False):
                    state["complete"] = True
                if state["received"] > self.max_body_bytes:
                    state["over"] = True
                    raise _BodyTooLargeError
            return message

        async def tracked_send(message: Message) -> None:
            if state["over"] or state["late"]:
                return  # the app's answer to a cut-off or late body is replaced by the 413 or 408 below
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except ClientDisconnect:  # mid-body, or seen by the app: no one to answer, and not a bug
            self.log.info(
                "%s %s: the client went away before its answer", scope.get("method"), scope.get("path")
            )
            return
        except Exception as exc:
            if state["over"] or isinstance(exc, _BodyTooLargeError):
                state["over"] = True
            elif state["late"] or isinstance(exc, _BodyTooLateError):
                state["late"] = True
            elif state["started"]:
                raise  # half a response is out: only closing the connection tells the client
            else:
                self.log.error(
                    "%s %s failed: %s",
                    scope.get("method"),
                    scope.get("path"),
                    type(exc).__name__,
                    exc_info=exc,
                )
                await self._answer(send, 500, public_detail(exc), "InternalError")
                return
        if state["over"] and not state["started"]:
            await self._answer(send, 413, self._too_large(None), "RequestTooLarge")
        elif state["late"] and not state["started"]:
            detail = f"the request body did not arrive within {self.body_timeout:g} s"
            await self._answer(send, 408, detail, "RequestTimeout")

    def _refusal(
        self, scope: Scope, headers: dict[str, bytes]
    ) -> tuple[int, str, str, dict[str, str]] | None:
        """A 401, 400 or 413 decided from the request line and headers alone, or None."""
        if self.token is not None and not self.is_public(scope.get("path", "")):
            scheme, _, given = headers.get("authorization", b"").partition(b" ")
            if scheme.lower() != b"bearer" or not given.strip():
                return 401, "missing bearer token", "AuthenticationError", {"WWW-Authenticate": "Bearer"}
            if not secrets.compare_digest(given.strip(), self.token):
                return 401, "wrong bearer token", "AuthenticationError", {"WWW-Authenticate": "Bearer"}
        length = headers.get("content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                return 400, f"invalid Content-Length {clip(length.decode('latin-1'), 40)!r}", "BadRequest", {}
            if size > self.max_body_bytes:
                return 413, self._too_large(size), "RequestTooLarge", {}
        return None

    def _too_large(self, size: int | None) -> str:
        given = f"of {size:,} bytes " if size is not None else ""
        return f"the request body {given}is over this server's limit of {self.max_body_bytes:,} bytes"

    async def _answer(
        self, send: Send, status: int, detail: str, kind: str, extra: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(self.error_body(status, detail, kind)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
