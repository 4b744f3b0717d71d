"""A loopback HTTP server answering from a script: redirects, error pages with bodies, canned files.

For the SSRF tests: an allowed host that redirects elsewhere, or answers 502 with an internal page,
next to a canary server that must never be contacted. It runs in its own process (like
``tests.support.http_server``) and logs every request; ``GET /__log`` returns the log, ``DELETE /__log``
clears it.

A script maps URL paths to answers ``{"status": 302, "headers": {...}, "body": "..."}``; the path
``"*"`` answers every other path, a key ``"HEAD /x"`` (method, space, path) only that method there, and a
``Location`` ending in ``{path}`` gets the requested path and query substituted (a whole-host redirect).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

LOG_PATH = "/__log"


def _serve(fd: int, script: dict[str, Any]) -> None:
    """Child process: answer from ``script`` on the inherited listening socket ``fd``."""
    log: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            if self.path == LOG_PATH:
                if self.command == "DELETE":
                    log.clear()
                self._send(200, {"content-type": "application/json"}, json.dumps(log))
                return
            log.append({"method": self.command, "path": self.path})
            path = self.path.split("?", 1)[0]
            answer = (
                script.get(f"{self.command} {path}")
                or script.get(path)
                or script.get("*")
                or {"status": 404, "body": "no such path"}
            )
            headers = {k: v.replace("{path}", self.path) for k, v in answer.get("headers", {}).items()}
            self._send(int(answer.get("status", 200)), headers, str(answer.get("body", "")))

        def _send(self, status: int, headers: Mapping[str, str], body: str) -> None:
            data = body.encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def do_HEAD(self) -> None:
            self._answer()

        def do_DELETE(self) -> None:
            self._answer()

        def do_PUT(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)  # the upload, read before the answer
            self._answer()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = socket.socket(fileno=fd)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


class ScriptedServer:
    """A running scripted server: ``base_url``, ``url(path)``, ``requests()``, ``close()``."""

    def __init__(self, script: Mapping[str, Mapping[str, Any]]) -> None:
        from tests.support.http_server import die_with_parent  # here: the child runs this file as a script

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        fd = self._socket.fileno()
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(fd), json.dumps(script)],
            pass_fds=[fd],
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.requests()
                return
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("scripted server did not start") from None
                time.sleep(0.05)

    def url(self, path: str) -> str:
        """The URL of ``path`` on this server."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def requests(self) -> list[dict[str, str]]:
        """Every request answered so far (method and path with query)."""
        with urllib.request.urlopen(self.base_url + LOG_PATH, timeout=10) as response:
            return list(json.loads(response.read()))

    def clear(self) -> None:
        """Forget the requests logged so far."""
        request = urllib.request.Request(self.base_url + LOG_PATH, method="DELETE")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def close(self) -> None:
        """Stop the server (idempotent)."""
        from tests.support.http_server import stop_process  # here, as above: the child runs this file

        stop_process(self._process)
        self._socket.close()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def redirect_everything_to(target_base: str) -> dict[str, dict[str, Any]]:
    """A script answering every path with ``302`` to the same path on ``target_base``."""
    return {"*": {"status": 302, "headers": {"location": target_base.rstrip("/") + "{path}"}}}


if __name__ == "__main__":
    _serve(int(sys.argv[1]), json.loads(sys.argv[2]))
