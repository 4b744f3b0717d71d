"""Tile latency (p50, p95) and throughput under concurrent load: our tiler versus a bare TiTiler app.

Both servers run in their own process (uvicorn, one worker each) on the same COG; ``clients`` threads with
keep-alive connections request random tiles of the COG for ``seconds`` per server, split into ``rounds``
that alternate between the servers (ABBA order), so a shared machine's drifting load hits both alike.
Usage: ``python bench/tiles.py COG [--seconds 10] [--clients 8]``; ``run(cog_path)`` returns the numbers.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import morecantile
import numpy as np
import rasterio
from rasterio.warp import transform_bounds

TMS = morecantile.tms.get("WebMercatorQuad")
SERVERS = ("lulc", "titiler")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bare_titiler_app() -> Any:
    """TiTiler as its docs show it: a FastAPI app with ``TilerFactory`` at /cog and its error handlers."""
    from fastapi import FastAPI
    from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers
    from titiler.core.factory import TilerFactory

    app = FastAPI()
    app.include_router(TilerFactory(router_prefix="/cog").router, prefix="/cog")
    add_exception_handlers(app, DEFAULT_STATUS_CODES)
    return app


def _lulc_app(cog_dir: Path) -> Any:
    from tiler.app import create_app
    from tiler.settings import TilerSettings

    return create_app(TilerSettings(allow=[str(cog_dir)]))


def serve(kind: str, port: int, cog_dir: Path) -> None:
    """Run one server in this process until terminated."""
    import uvicorn

    app = _lulc_app(cog_dir) if kind == "lulc" else _bare_titiler_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def tiles_of(cog_path: Path, zooms: int = 3) -> list[tuple[int, int, int]]:
    """The WebMercatorQuad tiles of the COG at its native zoom and the ``zooms - 1`` below it.

    Candidates come from its geographic bounds; rio-tiler's own ``tile_exists`` keeps only those both
    servers can render (a tile that merely touches a reprojected edge would be a 404, not load).
    """
    from rio_tiler.io import Reader

    with rasterio.open(cog_path) as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
        native = TMS.zoom_for_res(max(src.res) if src.crs.is_projected else max(src.res) * 111_000)
    tiles = []
    with Reader(str(cog_path)) as cog:
        for z in range(max(0, native - zooms + 1), native + 1):
            for t in TMS.tiles(west, south, east, north, zooms=[z]):
                if cog.tile_exists(t.x, t.y, t.z):
                    tiles.append((t.z, t.x, t.y))
    return tiles


class _Server:
    """A server process started by this script (terminated by its own handle)."""

    def __init__(self, kind: str, cog_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--serve",
                kind,
                str(self.port),
                str(cog_path.parent),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(
                    f"{self.url}/cog/info", params={"url": str(cog_path)}, timeout=10
                ).raise_for_status()
                return
            except httpx.HTTPError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    self.close()
                    raise RuntimeError(f"{kind} server did not start: {exc}\n{err}") from exc
                time.sleep(0.2)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class _Tally:
    """Latencies (s) of the successful requests, error descriptions and load time (s) of one server."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0

    def summary(self) -> dict[str, Any]:
        values = np.array(self.latencies, dtype=float)
        return {
            "requests": int(values.size),
            "errors": len(self.errors),
            "error_samples": self.errors[:5],
            "p50_ms": round(float(np.percentile(values, 50)) * 1000, 2) if values.size else None,
            "p95_ms": round(float(np.percentile(values, 95)) * 1000, 2) if values.size else None,
            "throughput_rps": round(values.size / self.wall, 2) if self.wall else None,
        }


def _load(
    base: str,
    cog_path: Path,
    tiles: list[tuple[int, int, int]],
    seconds: float,
    clients: int,
    tally: _Tally,
    seed: int,
) -> None:
    """``clients`` threads requesting random tiles for ``seconds``; adds to ``tally``."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        with httpx.Client(base_url=base, timeout=60) as client:
            start.wait()
            while time.perf_counter() < stop_at[0]:
                z, x, y = rng.choice(tiles)
                t0 = time.perf_counter()
                try:
                    response = client.get(
                        f"/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png", params={"url": str(cog_path)}
                    )
                    ok = response.status_code == 200
                    detail = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, detail = False, repr(exc)
                elapsed = time.perf_counter() - t0
                if ok:
                    latencies[index].append(elapsed)
                else:
                    with lock:
                        errors.append(f"{z}/{x}/{y}: {detail}")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    tally.wall += time.perf_counter() - began
    tally.latencies.extend(v for per in latencies for v in per)
    tally.errors.extend(errors)


def run(cog_path: Path, seconds: float = 10, clients: int = 8, rounds: int = 4) -> dict:
    """Benchmark tiles of ``cog_path`` on our tiler and on a bare TiTiler app, in alternating rounds.

    Returns ``{"cog", "tiles", "clients", "seconds", "rounds", "lulc": {...}, "titiler": {...}, "ratio":
    {...}}`` where each server entry has ``requests, errors, p50_ms, p95_ms, throughput_rps`` over all its
    rounds and ``ratio`` is lulc over titiler (latency ratios > 1 and a throughput ratio < 1 mean our tiler
    is slower).
    """
    cog_path = Path(cog_path).resolve()
    tiles = tiles_of(cog_path)
    results: dict[str, Any] = {
        "cog": str(cog_path),
        "tiles": len(tiles),
        "clients": clients,
        "seconds": seconds,
        "rounds": rounds,
    }
    bodies: dict[str, bytes] = {}
    servers: dict[str, _Server] = {}
    try:
        for kind in SERVERS:
            servers[kind] = server = _Server(kind, cog_path)
            z, x, y = tiles[len(tiles) // 2]
            sample = httpx.get(
                f"{server.url}/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png",
                params={"url": str(cog_path)},
                timeout=60,
            )
            bodies[kind] = sample.content
            with httpx.Client(base_url=server.url, timeout=60) as warm:  # each tile once: both start warm
                for z, x, y in tiles:
                    warm.get(f"/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png", params={"url": str(cog_path)})
        tallies = {kind: _Tally() for kind in SERVERS}
        for round_index in range(rounds):
            order = SERVERS if round_index % 2 == 0 else tuple(reversed(SERVERS))
            for kind in order:
                _load(
                    servers[kind].url,
                    cog_path,
                    tiles,
                    seconds / rounds,
                    clients,
                    tallies[kind],
                    round_index,
                )
    finally:
        for server in servers.values():
            server.close()
    for kind in SERVERS:
        results[kind] = tallies[kind].summary()
    results["same_tile_bytes"] = bodies["lulc"] == bodies["titiler"]
    ours, bare = results["lulc"], results["titiler"]
    results["ratio"] = {
        "p50": round(ours["p50_ms"] / bare["p50_ms"], 3) if ours["p50_ms"] and bare["p50_ms"] else None,
        "p95": round(ours["p95_ms"] / bare["p95_ms"], 3) if ours["p95_ms"] and bare["p95_ms"] else None,
        "throughput": round(ours["throughput_rps"] / bare["throughput_rps"], 3)
        if ours["throughput_rps"] and bare["throughput_rps"]
        else None,
    }
    return results


def _print(results: dict) -> None:
    print(f"tiles of {results['cog']}: {results['tiles']} tiles, {results['clients']} clients, ", end="")
    print(f"{results['seconds']} s per server in {results['rounds']} alternating rounds")
    print(f"{'server':<10}{'requests':>10}{'errors':>8}{'p50 ms':>10}{'p95 ms':>10}{'req/s':>10}")
    for kind in SERVERS:
        r = results[kind]
        print(
            f"{kind:<10}{r['requests']:>10}{r['errors']:>8}{r['p50_ms']!s:>10}{r['p95_ms']!s:>10}{r['throughput_rps']:>10}"
        )
    ratio = results["ratio"]
    print(f"ratio lulc/titiler: p50 {ratio['p50']}, p95 {ratio['p95']}, throughput {ratio['throughput']}")
    print(f"identical tile bytes: {results['same_tile_bytes']}")


def main(argv: list[str] | None = None) -> int:
    """Command line: benchmark a COG, or (internally) serve one app."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("cog", nargs="?", type=Path, help="COG to tile")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per server")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--serve", nargs=3, metavar=("KIND", "PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        kind, port, folder = args.serve
        serve(kind, int(port), Path(folder))
        return 0
    if args.cog is None:
        parser.error("a COG path is required")
    results = run(args.cog, seconds=args.seconds, clients=args.clients, rounds=args.rounds)
    _print(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if results["lulc"]["errors"] or results["titiler"]["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
