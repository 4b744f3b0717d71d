"""The benchmark entry point (``make bench``): every part; results to ``bench/RESULTS.md`` and results.json.

Quick mode for development: ``.venv/bin/python bench/run.py --size 2000``. Parts can be chosen with
``--parts classify,sampling,tiles,scaleout,runtimes``. Results are written after every part, so a run that
is stopped (or passes ``--deadline``) still leaves the figures measured so far.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import classify, peers, report, runtimes, sampling, scaleout
from bench.common import available_memory, machine_info, start_http_server, utc_now
from bench.models import BenchModel, train_models
from bench.scene import Scene, generate

PARTS = ("classify", "sampling", "tiles", "scaleout", "runtimes", "peers")
BENCH = Path(__file__).resolve().parent


def _even(n: int) -> int:
    return max(256, n - n % 2)


class Run:
    """One benchmark run: options, scenes, models, results written as they come."""

    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns
        self.work: Path = ns.work.resolve()
        self.results_dir: Path = ns.results_dir.resolve()
        self.deadline = _deadline(ns.deadline)
        self.results: dict[str, Any] = {
            "started": utc_now(),
            "command": " ".join(["bench/run.py", *sys.argv[1:]]),
            "size": ns.size,
            "machine": machine_info(),
            "options": {k: str(v) for k, v in vars(ns).items()},
            "notes": [],
            "errors": {},
            "skipped": {},
        }
        self.scenes: dict[int, Scene] = {}
        self.models: dict[int, dict[str, BenchModel]] = {}
        self.server: Any = None

    def log(self, message: str) -> None:
        print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)

    def save(self) -> None:
        self.results["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
        self.results_dir.mkdir(parents=True, exist_ok=True)
        (self.results_dir / "results.json").write_text(json.dumps(self.results, indent=1) + "\n")
        text = report.render(self.results)
        (self.results_dir / "RESULTS.md").write_text(text)
        if self.results_dir == BENCH:
            quote_in_readme(BENCH / "README.md", text)

    def late(self) -> bool:
        return self.deadline is not None and datetime.now(UTC) >= self.deadline

    def scene(self, size: int) -> Scene:
        if size not in self.scenes:
            self.log(f"scene {size} x {size} px")
            scene = generate(self.work / f"scene-{size}", size, self.ns.seed)
            scene.write_items(self.base_url(scene), scene.root / "items.json")
            self.scenes[size] = scene
        return self.scenes[size]

    def base_url(self, scene: Scene) -> str:
        return f"{self.server.base_url}/{scene.root.name}"

    def trained(self, size: int, names: list[str]) -> dict[str, BenchModel]:
        scene = self.scene(size)
        have = self.models.setdefault(size, {})
        missing = [n for n in names if n not in have]
        if missing:
            self.log(f"training {', '.join(missing)} on the {size} px scene")
            have.update(train_models(scene, missing, self.work / f"models-{size}", self.ns.seed))
        return {n: have[n] for n in names}

    def server_alive(self) -> bool:
        try:
            self.server.requests.records()
        except OSError:
            return False
        return True

    def ensure_server(self) -> None:
        """Restart the file server if its process is gone (the machine is shared), re-pointing the items."""
        if self.server_alive():
            return
        self.log("the file server is gone: restarting it")
        self.server.close()
        self.server = start_http_server(self.work)
        self.results["notes"].append(
            f"the loopback file server died and was restarted before a part ({utc_now()})"
        )
        for scene in self.scenes.values():
            scene.write_items(self.base_url(scene), scene.root / "items.json")

    def step(self, key: str, action: Callable[[], Any]) -> None:
        """Run one part; record an error or a skip instead of failing the whole run."""
        self.ensure_server()
        if self.late():
            self.results["skipped"][key] = f"deadline {self.ns.deadline} UTC reached before it started"
            self.log(f"{key}: skipped (deadline)")
            self.save()
            return
        self.log(f"== {key}")
        for attempt in (1, 2):
            try:
                action()
                break
            except Exception as exc:  # one failing part must not lose the others' figures
                self.log(f"{key} failed:\n{traceback.format_exc()}")
                if attempt == 1 and not self.server_alive():
                    self.ensure_server()  # the server died under it: once more, from the start
                    continue
                self.results["errors"][key] = f"{type(exc).__name__}: {exc}"
                break
        self.save()

    # -- parts ---------------------------------------------------------------------------------

    def classify_model(self, name: str, size: int) -> None:
        scene = self.scene(size)
        model = self.trained(size, [name])[name]
        small_size = _even(size // 4) if size >= 1024 else _even(size // 2)
        small = self.scene(small_size) if small_size < size else None
        small_model = self.trained(small_size, [name])[name] if small is not None else None
        entry = classify.measure_model(
            scene,
            small,
            model,
            small_model,
            self.base_url(scene),
            self.base_url(small) if small is not None else None,
            self.work / f"classify-{size}",
            self.log,
            floor_fraction=self.ns.floor_fraction,
        )
        runs = entry["tutorial"]
        if len(runs) == 2:
            entry["tutorial_rss_growth"] = round(runs[1]["peak_rss_mib"] / runs[0]["peak_rss_mib"], 2)
        self.results.setdefault("classify", []).append(entry)

    def sampling(self) -> None:
        scene = self.scene(self.ns.size)
        self.results["sampling"] = sampling.run(
            scene, self.server, self.base_url(scene), self.ns.points, self.ns.seed, self.ns.naive_points
        )

    def tiles(self) -> None:
        try:
            from bench import tiles  # written by another part of the team
        except ImportError:
            self.results["tiles"] = {"skipped": "bench/tiles.py is not there yet"}
            return
        cog = self.work / f"classify-{self.ns.size}" / f"service-{self.ns.models[0]}" / "classes.tif"
        if not cog.is_file():
            scene = self.scene(self.ns.size)
            model = self.trained(self.ns.size, [self.ns.models[0]])[self.ns.models[0]]
            classify.run_service(scene, model, f"{self.base_url(scene)}/items.json", cog.parent)
        self.results["tiles"] = tiles.run(cog, seconds=self.ns.tile_seconds, clients=8)

    def scaleout(self) -> None:
        size = min(self.ns.size, self.ns.scaleout_size)
        scene = self.scene(size)
        model = self.trained(size, [self.ns.scaleout_model])[self.ns.scaleout_model]
        self.results["scaleout"] = scaleout.run(
            scene, model, self.base_url(scene), self.work / f"scaleout-{size}", self.log
        )

    def runtimes(self) -> None:
        scene = self.scene(self.ns.size)
        models = self.trained(self.ns.size, self.ns.runtime_models)
        self.results["runtimes"] = runtimes.run(scene, models, self.ns.runtime_pixels, self.log)

    def peers(self) -> None:
        self.results["peers"] = peers.run(
            self.work / "peers",
            self.log,
            tiles=self.ns.peer_tiles,
            full_size=self.ns.peer_size,
            pyspatialml=not self.ns.no_pyspatialml,
            full_peers=not self.ns.no_full_peers,
        )

    def main(self) -> None:
        parts = self.ns.parts
        self.log(
            f"benchmark: size {self.ns.size}, parts {', '.join(parts)}; "
            f"{available_memory() / 1024**3:.1f} GiB available"
        )
        self.work.mkdir(parents=True, exist_ok=True)
        self.server = start_http_server(self.work)
        try:
            if set(parts) - {"peers"}:
                self.scene(self.ns.size)
            first, *others = self.ns.models
            if "classify" in parts:
                self.step(f"classify {first}", functools.partial(self.classify_model, first, self.ns.size))
            if "sampling" in parts:
                self.step("sampling", self.sampling)
            if "tiles" in parts:
                self.step("tiles", self.tiles)
            if "runtimes" in parts:
                self.step("runtimes", self.runtimes)
            if "scaleout" in parts:
                self.step("scaleout", self.scaleout)
            if "peers" in parts:
                self.step("peers", self.peers)
            if "classify" in parts:
                other_size = min(self.ns.size, self.ns.other_size or self.ns.size)
                for name in others:
                    self.step(f"classify {name}", functools.partial(self.classify_model, name, other_size))
        finally:
            self.server.close()
        self.results["finished"] = utc_now()
        self.save()
        self.log(f"wrote {self.results_dir / 'RESULTS.md'} and results.json")


def quote_in_readme(readme: Path, results: str) -> None:
    """Put the results (without their title) between the README's ``results`` markers."""
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        return
    body = "\n".join(line for line in results.splitlines() if not line.startswith("# ")).strip()
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    readme.write_text(f"{head}{start}\n{body}\n{end}{tail}")


def _deadline(text: str | None) -> datetime | None:
    if not text:
        return None
    hour, minute = (int(v) for v in text.split(":"))
    now = datetime.now(UTC)
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0)


def _list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=10_000, help="Scene edge in pixels (default 10000).")
    parser.add_argument("--parts", type=_list, default=list(PARTS), help=f"Comma list of {', '.join(PARTS)}.")
    parser.add_argument(
        "--models", type=_list, default=["svm", "rf"], help="Classification models, in this order."
    )
    parser.add_argument(
        "--other-size",
        type=int,
        default=None,
        help="Scene edge for the other classification models (default: --size).",
    )
    parser.add_argument(
        "--floor-fraction", type=float, default=None, help="Share of the scene's blocks timed for (C)."
    )
    parser.add_argument("--points", type=int, default=10_000, help="Points sampled.")
    parser.add_argument(
        "--naive-points", type=int, default=None, help="Points for the naive loop (default: all)."
    )
    parser.add_argument("--scaleout-size", type=int, default=3000)
    parser.add_argument("--scaleout-model", default="svm")
    parser.add_argument("--runtime-models", type=_list, default=["rf", "svm", "dt", "hgb"])
    parser.add_argument("--runtime-pixels", type=int, default=250_000)
    parser.add_argument("--tile-seconds", type=float, default=20.0)
    parser.add_argument(
        "--peer-size", type=int, default=peers.FULL_TILE, help="peers: full-tile scene edge (10980)."
    )
    parser.add_argument(
        "--peer-tiles", type=peers.parse_tiles, default=peers.TILES, help="peers: tutorial image RxC (7x12)."
    )
    parser.add_argument("--no-pyspatialml", action="store_true", help="peers: skip pyspatialml and its venv.")
    parser.add_argument(
        "--no-full-peers",
        action="store_true",
        help="peers: tutorial and pyspatialml on the tiled scene only.",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=BENCH / "work", help="Scenes, models and outputs.")
    parser.add_argument(
        "--results-dir", type=Path, default=BENCH, help="Where RESULTS.md and results.json go."
    )
    parser.add_argument(
        "--deadline", default=None, help="HH:MM (UTC): parts not started by then are skipped."
    )
    ns = parser.parse_args(argv)
    unknown = [p for p in ns.parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown parts {unknown}; known: {', '.join(PARTS)}")
    return ns


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark."""
    Run(parse(argv)).main()


if __name__ == "__main__":
    main()
