"""A loopback STAC API that always offers a next page, and a landing page that never ends.

Real HTTP on 127.0.0.1 (a ``ThreadingHTTPServer`` in a thread): the server side of the two findings the
item sources must survive, an API paging forever and a response body without end. Each stops by itself
at a safety bound (``max_pages``, ``max_body_bytes``), so code without the limits finishes too: its test
then fails on what it asserts, not by eating the machine.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback import stac_api_landing, threaded_server

PAGE = 100
"""Items per page, whatever the request asks (the sources ask 100)."""


def feature(n: int, base_url: str) -> dict[str, Any]:
    """Sentinel-2-like item number ``n``: a small square near 14°E 48°N, its bands on ``base_url``."""
    x, y = 14.0 + (n % 10) * 0.001, 48.0
    ring = [[x, y], [x + 0.1, y], [x + 0.1, y + 0.1], [x, y + 0.1], [x, y]]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": f"S2X_{n:07d}",
        "collection": "sentinel-2-l2a",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [x, y, x + 0.1, y + 0.1],
        "properties": {
            "datetime": f"2024-06-{1 + n % 28:02d}T10:00:00Z",
            "eo:cloud_cover": float(n % 50),
            "proj:epsg": 32633,
            "s2:processing_baseline": "05.10",
        },
        "assets": {
            key: {"href": f"{base_url}/cogs/{n}/{name}.tif", "roles": ["data"]}
            for key, name in (("red", "B04"), ("nir", "B08"), ("scl", "SCL"))
        },
        "links": [],
    }


@dataclass
class EndlessApi:
    """What the server did: pages answered, bytes of the endless landing page sent, where it listens."""

    max_pages: int = 60
    endless_landing: bool = False
    max_body_bytes: int = 96 * 2**20
    base_url: str = ""
    pages: int = 0
    landing_bytes_sent: int = 0
    landing_done: threading.Event = field(default_factory=threading.Event)

    def landing(self) -> dict[str, Any]:
        return stac_api_landing(self.base_url, "endless-stac-api", "loopback API that always has a next page")

    def page(self, body: dict[str, Any]) -> dict[str, Any]:
        self.pages += 1
        start = int(body.get("token", 0))
        links = []
        if self.pages < self.max_pages:
            next_body = {**body, "token": str(start + PAGE)}
            links.append(
                {"rel": "next", "href": f"{self.base_url}/search", "method": "POST", "body": next_body}
            )
        features = [feature(n, self.base_url) for n in range(start, start + PAGE)]
        return {"type": "FeatureCollection", "features": features, "links": links}


@contextmanager
def serve_endless_api(api: EndlessApi) -> Iterator[EndlessApi]:
    """``api`` served on a loopback port (``api.base_url``) until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _json(self, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _endless(self) -> None:
            """A chunked body of spaces, sent until the client hangs up (or the safety bound)."""
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b" " * 65536
            try:
                while api.landing_bytes_sent < api.max_body_bytes:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    api.landing_bytes_sent += len(chunk)
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True
            finally:
                api.landing_done.set()

        def do_GET(self) -> None:
            if api.endless_landing:
                self._endless()
            else:
                self._json(api.landing())

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            self._json(api.page(json.loads(self.rfile.read(length) or b"{}")))

    with threaded_server(Handler) as api.base_url:
        yield api
