"""A loopback HTTP file server with Range support, a request log and deterministic failure injection.

Starlette's ``StaticFiles`` answers ``Range`` requests with ``206 Partial Content`` (Python's
``http.server`` does not), so GDAL's ``/vsicurl/`` reads COGs from it as from object storage. A small
ASGI middleware around it records every request (method, path, query, Range header, status) and, when
asked, fails every n-th request: with a ``503`` (GDAL retries those) or by dropping the connection
after the response headers (the body never arrives).

The server runs in its own process (uvicorn on a loopback socket the parent binds and hands over), NOT
in a thread of the test process: rasterio keeps the GIL during some GDAL calls that do HTTP (sidecar
probes, mask and overview discovery), which would stall an in-process server until curl times out.
The parent reads and resets the log, and changes the failure policy, through control endpoints under
``/__server__/`` that are neither logged nor counted by the failure policy.

``set_sas(token)`` makes it an Azure Blob container as the Planetary Computer's are: every ``.tif`` request
without the token's ``sig`` gets 403 (Azure's XML error body), and ``GET /api/sas/v1/token/<account>/
<container>`` hands the token out (``{"token": ..., "msft:expiry": ...}``), as the Planetary Computer's
token service does.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

Failure = Literal["503", "drop"]
CONTROL_PREFIX = "/__server__/"


@dataclass(frozen=True)
class RequestRecord:
    """One request the server answered (recorded when its response starts)."""

    method: str
    path: str
    query: str
    range: str | None
    status: int | None
    failed: bool  # True when failure injection answered this request


# --------------------------------------------------------------------------------------------------
# Server side (runs in the child process)


class FailurePolicy:
    """Fails every ``fail_every``-th HTTP request (1-based, counted since the policy was set)."""

    def __init__(self, fail_every: int | None = None, failure: str = "503") -> None:
        if fail_every is not None and fail_every < 1:
            raise ValueError(f"fail_every must be >= 1, got {fail_every}")
        if failure not in ("503", "drop"):
            raise ValueError(f"failure must be '503' or 'drop', got {failure!r}")
        self.fail_every = fail_every
        self.failure = failure
        self._count = 0

    def next_fails(self) -> bool:
        """Count one request; True if this one must fail."""
        self._count += 1
        return self.fail_every is not None and self._count % self.fail_every == 0


TOKEN_PATH = "/api/sas/v1/token/"
"""Where the server hands out its SAS token once ``set_sas`` gave it one (the Planetary Computer's path)."""


class RecordingMiddleware:
    """ASGI middleware: logs every HTTP request, applies the failure policy, serves the control API."""

    def __init__(self, app: Any, policy: FailurePolicy) -> None:
        self.app = app
        self.policy = policy
        self.records: list[RequestRecord] = []  # one event loop: no lock needed
        self.sas: dict[str, Any] | None = None  # {"token": "...", "expires_in": seconds}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(CONTROL_PREFIX):
            await self._control(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        recorded = False

        def record(status: int | None, failed: bool) -> None:
            # Called before the response starts: a client never sees an answer the log lacks.
            nonlocal recorded
            if not recorded:
                recorded = True
                self.records.append(
                    RequestRecord(
                        method=scope["method"],
                        path=scope["path"],
                        query=scope.get("query_string", b"").decode("latin-1"),
                        range=headers.get("range"),
                        status=status,
                        failed=failed,
                    )
                )

        if self.sas is not None and await self._sas(scope, send, record):
            return
        fail = self.policy.next_fails()
        if fail and self.policy.failure == "503":
            record(503, failed=True)
            await _send_bytes(send, 503, b"Service Unavailable (injected failure)", b"text/plain")
            return

        async def send_and_record(message: Any) -> None:
            if message["type"] == "http.response.start":
                record(int(message["status"]), failed=fail)
                await send(message)
            elif not fail:
                await send(message)
            # A "drop" failure swallows the body: the client got a Content-Length and no bytes, and
            # uvicorn closes the connection because the response never completed.

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            record(None, failed=fail)

    async def _sas(self, scope: Any, send: Any, record: Callable[[int | None, bool], None]) -> bool:
        """Answer a token request, or refuse a file request without the token's signature: True if so."""
        from urllib.parse import parse_qs

        assert self.sas is not None
        if scope["path"].startswith(TOKEN_PATH):
            expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + self.sas["expires_in"]))
            record(200, False)
            body = json.dumps({"msft:expiry": expiry, "token": self.sas["handed"]}).encode()
            await _send_bytes(send, 200, body, b"application/json")
            return True
        wanted = parse_qs(self.sas["token"])["sig"]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if not scope["path"].endswith(".tif") or query.get("sig") == wanted:  # STAC JSON stays public
            return False
        record(403, False)
        error = b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code></Error>'
        await _send_bytes(send, 403, error, b"application/xml")
        return True

    async def _control(self, scope: Any, receive: Any, send: Any) -> None:
        action = scope["path"][len(CONTROL_PREFIX) :]
        method = scope["method"]
        if action == "log" and method == "GET":
            body = json.dumps([asdict(r) for r in self.records]).encode()
        elif action == "log" and method == "DELETE":
            self.records.clear()
            body = b"[]"
        elif action in ("policy", "sas") and method == "PUT":
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            spec = json.loads(b"".join(chunks) or b"{}")
            if action == "policy":
                self.policy = FailurePolicy(spec.get("fail_every"), spec.get("failure", "503"))
            else:
                self.sas = spec or None
            body = json.dumps(spec).encode()
        else:
            await _send_bytes(send, 404, b"unknown control endpoint", b"text/plain")
            return
        await _send_bytes(send, 200, body, b"application/json")


async def _send_bytes(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _serve(fd: int, directory: str, fail_every: int | None, failure: str) -> None:
    """Child process entry point: serve ``directory`` on the inherited listening socket ``fd``."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    # Mounted in a Starlette app so a missing file is a quick 404, not an unhandled HTTPException.
    files = Starlette(routes=[Mount("/", app=StaticFiles(directory=directory))])
    app = RecordingMiddleware(files, FailurePolicy(fail_every, failure))
    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(app, log_level="critical", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


# --------------------------------------------------------------------------------------------------
# Client side (the test process)


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Terminate a server process, kill it if it has not exited 10 s later (a no-op once it has exited)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` making a child get ``sig`` when the test process dies (even by SIGKILL).

    Linux sends it when the forking *thread* ends, so only children started from the main thread
    get it (a server started from a worker thread must outlive that thread).
    """
    if threading.current_thread() is not threading.main_thread() or not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(sig))  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), int(sig))

    return set_parent_death_signal


class RequestLog:
    """The server's request log, read and reset over its control endpoint."""

    def __init__(self, base_url: str) -> None:
        self._url = f"{base_url}{CONTROL_PREFIX}log"

    def records(self) -> list[RequestRecord]:
        """The requests the server has answered since the last ``clear()``, in order."""
        with urllib.request.urlopen(self._url, timeout=30) as response:
            return [RequestRecord(**r) for r in json.loads(response.read())]

    def clear(self) -> None:
        """Forget every request recorded so far (call it right before the reads you want to count)."""
        request = urllib.request.Request(self._url, method="DELETE")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    reset = clear

    def for_path(self, suffix: str) -> list[RequestRecord]:
        """The recorded requests whose URL path ends with ``suffix``."""
        return [r for r in self.records() if r.path.endswith(suffix)]

    def __len__(self) -> int:
        return len(self.records())

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.records())


class ServerHandle:
    """A running loopback file server: ``base_url``, its ``requests`` log, ``close()``."""

    def __init__(
        self, directory: str | Path, fail_every: int | None = None, failure: Failure = "503"
    ) -> None:
        FailurePolicy(fail_every, failure)  # validate here, in the caller's process
        self.directory = Path(directory).resolve()
        if not self.directory.is_dir():
            raise FileNotFoundError(f"cannot serve {self.directory}: not a directory")
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(128)
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.requests = RequestLog(self.base_url)
        fd = self._socket.fileno()
        args = [sys.executable, str(Path(__file__).resolve()), str(fd), str(self.directory)]
        args += ["--fail-every", str(fail_every)] if fail_every else []
        args += ["--failure", failure]
        self._process = subprocess.Popen(
            args,
            pass_fds=[fd],
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
        )
        self._lock = threading.Lock()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                self.requests.records()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"loopback HTTP server over {self.directory} did not start") from exc
                time.sleep(0.05)

    @property
    def log(self) -> RequestLog:
        """Alias of ``requests``."""
        return self.requests

    def set_failure(self, fail_every: int | None, failure: Failure = "503") -> None:
        """Replace the failure policy; its request counter restarts at zero."""
        FailurePolicy(fail_every, failure)
        body = json.dumps({"fail_every": fail_every, "failure": failure}).encode()
        request = urllib.request.Request(f"{self.base_url}{CONTROL_PREFIX}policy", data=body, method="PUT")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def set_sas(self, token: str | None, expires_in: float = 3600.0, handed: str | None = None) -> None:
        """Require ``token``'s ``sig`` on every ``.tif`` request, and hand ``token`` out at ``TOKEN_PATH``.

        ``token`` is a query string as Azure's (``se=...&sig=...``); None serves files freely again.
        ``handed``: another token to hand out instead (one the store refuses).
        """
        spec = {"token": token, "handed": handed or token, "expires_in": expires_in}
        body = json.dumps(spec if token else {}).encode()
        request = urllib.request.Request(f"{self.base_url}{CONTROL_PREFIX}sas", data=body, method="PUT")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def url(self, path: str | Path) -> str:
        """The URL of ``path`` (relative to the served directory, or absolute inside it)."""
        p = Path(path)
        rel = p.resolve().relative_to(self.directory) if p.is_absolute() else p
        return f"{self.base_url}/{rel.as_posix()}"

    def vsicurl(self, path: str | Path) -> str:
        """The GDAL ``/vsicurl/`` path of ``path``."""
        return f"/vsicurl/{self.url(path)}"

    def close(self) -> None:
        """Stop the server process (idempotent)."""
        with self._lock:
            stop_process(self._process)
            self._socket.close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ServerHandle({self.base_url!r}, directory={str(self.directory)!r})"


def start_http_server(
    directory: str | Path, *, fail_every: int | None = None, failure: Failure = "503"
) -> ServerHandle:
    """Serve ``directory`` on a free loopback port (Range requests answered with 206).

    Args:
        directory: The folder to serve; URL paths are relative to it.
        fail_every: If set, every ``fail_every``-th request (1-based, deterministic) fails.
        failure: ``"503"`` answers ``503 Service Unavailable``; ``"drop"`` sends the real response's
            headers and closes the connection without the body.
    """
    return ServerHandle(directory, fail_every, failure)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("fd", type=int)
    parser.add_argument("directory")
    parser.add_argument("--fail-every", type=int, default=None)
    parser.add_argument("--failure", default="503", choices=["503", "drop"])
    ns = parser.parse_args()
    os.chdir(ns.directory)
    _serve(ns.fd, ns.directory, ns.fail_every, ns.failure)
