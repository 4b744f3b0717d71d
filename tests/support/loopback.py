"""In-process loopback HTTP servers for tests: a handler class served on a thread, and a misbehaving one.

``threaded_server(Handler)`` serves any ``BaseHTTPRequestHandler`` on 127.0.0.1 until the block ends and
yields its base URL. ``misbehaving_server(log, safety)`` answers what a broken or hostile upstream sends:

- ``/endless`` and ``/endless.json``: a JSON object whose one string never ends (chunked), until ``safety``
  bytes were sent, so code without a limit finishes (and its test fails on the assertion, not by memory);
- ``/declared``, ``/declared.json``: a ``Content-Length`` of a GiB, then a few bytes and a hang-up;
- ``/drip``: a 160-byte STAC catalog, one byte every 50 ms;
- ``/padded.json``: a STAC catalog of 2 MiB.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MiB = 2**20
CATALOG = {"type": "Catalog", "stac_version": "1.0.0", "id": "padded", "description": "x", "links": []}


@contextmanager
def threaded_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on a loopback port on a thread of this process; yields ``http://127.0.0.1:PORT``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def stac_api_landing(base_url: str, api_id: str, description: str, *, sort: bool = False) -> dict[str, Any]:
    """The landing page of a loopback STAC API with POST ``/search`` (and the sort extension if ``sort``)."""
    return {
        "type": "Catalog",
        "id": api_id,
        "stac_version": "1.0.0",
        "description": description,
        "conformsTo": [
            "https://api.stacspec.org/v1.0.0/core",
            "https://api.stacspec.org/v1.0.0/item-search",
            "https://api.stacspec.org/v1.0.0/item-search#query",
            *(["https://api.stacspec.org/v1.1.0/item-search#sort"] if sort else []),
        ],
        "links": [
            {"rel": "self", "href": f"{base_url}/", "type": "application/json"},
            {"rel": "root", "href": f"{base_url}/", "type": "application/json"},
            {"rel": "search", "href": f"{base_url}/search", "type": "application/geo+json", "method": "POST"},
        ],
    }


@dataclass
class Log:
    """What the misbehaving server did: requests, bytes sent, and whether its last answer ended."""

    requests: int = 0
    sent: int = 0
    done: threading.Event = field(default_factory=threading.Event)


@contextmanager
def misbehaving_server(log: Log, safety: int) -> Iterator[str]:
    """The misbehaving upstream of the module docstring, its endless bodies bounded by ``safety`` bytes."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            log.requests += 1
            try:
                getattr(self, "_" + self.path.strip("/").split(".")[0])()
            except OSError:  # the client hung up
                self.close_connection = True
            finally:
                log.done.set()

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        def _endless(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._chunk(b'{"type": "Feature", "pad": "')
            while log.sent < safety:
                self._chunk(b"x" * 65536)
                log.sent += 65536
            self._chunk(b'"}')
            self.wfile.write(b"0\r\n\r\n")

        def _declared(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(2**30))
            self.end_headers()
            self.wfile.write(b'{"a": ')
            self.wfile.flush()
            time.sleep(3)  # the rest never comes: the connection closes short
            self.close_connection = True

        def _drip(self) -> None:
            body = json.dumps({**CATALOG, "description": "x" * 60}).encode()  # 160 bytes: 8 s at 50 ms
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                log.sent += 1
                time.sleep(0.05)

        def _padded(self) -> None:
            body = json.dumps({**CATALOG, "description": "x" * (2 * MiB)}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with threaded_server(Handler) as base:
        yield base
