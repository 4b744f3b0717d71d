"""What ``lulc smooth`` (sits' Bayesian smoothing) does to a map's accuracy, and what it costs.

For each demo world (``demo.world.generate``, world seeds ``--first-world`` ...): the SVM trained on the
world's recipe (``training.api.train``, seed 0), its map with probabilities (``service.api.classify``), then
``service.smooth.smooth_run`` with each ``--windows`` size (neighbourhood fraction 0.5, smoothness
``--smoothness``, sits' defaults being 9, 0.5 and 20) and one worker. Per setting: the share of the world's
1,500 independent validation points the map gets right and the share of all mapped pixels that agree with
the world's truth raster, each against the source map's, the pixels that changed class, and the CPU seconds
(this process's, threads included) per megapixel of the smoothing, the COG writing included.

The demo world's maps are already clean (about 95 % right) and hold narrow features (roads, rivers), the case
where a large window does harm; ``--noise`` adds Gaussian noise (reflectance units) to every band of the
world's scenes before the classification, for a speckled map, the case smoothing is for.

``python -m bench.smoothing --worlds 2 --size 1024 --out /tmp/bench-smoothing`` prints a markdown table and
writes ``OUT/smoothing.json`` (every figure, the machine, UTC start and end) and ``OUT/smoothing.md``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from bench.common import machine_info
from lulc.classes import NODATA


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def add_noise(world: Any, sigma: float, seed: int) -> None:
    """Gaussian noise of ``sigma`` (reflectance: DN / 10,000) on every uint16 band of ``world``, in place."""
    from lulc.cog import CogOptions, translate_to_cog

    rng = np.random.default_rng(seed)
    for path in sorted(Path(world.cogs_dir).rglob("*.tif")):
        with rasterio.open(path) as src:
            if src.dtypes[0] != "uint16" or src.count != 1:
                continue  # the SCL band
            data, profile = src.read(1), src.profile
        noisy = np.clip(data + rng.normal(0.0, sigma * 10_000, data.shape), 1, 65535).astype(np.uint16)
        noisy[data == (profile.get("nodata") or 0)] = data[data == (profile.get("nodata") or 0)]
        tmp = path.with_name(f"{path.stem}.noisy.tif")
        with rasterio.open(tmp, "w", **{**profile, "driver": "GTiff"}) as dst:
            dst.write(noisy, 1)
        translate_to_cog(tmp, path, CogOptions())
        tmp.unlink()


def truth_agreement(classes: Path, truth: Path) -> float:
    """Share of the pixels mapped on ``classes`` and known in ``truth`` where both agree (on truth's grid)."""
    from demo.report import on_truth_grid

    mapped, known = on_truth_grid(classes, truth)
    valid = (mapped != NODATA) & (known != NODATA)
    return float(np.mean(mapped[valid] == known[valid]))


def one_world(world: Any, windows: list[int], smoothness: float, out: Path) -> dict[str, Any]:
    """Train, map and smooth one world; the figures of the map and of each smoothing."""
    from bench.coverage import svm_map
    from demo.report import at_validation_points
    from service.bayes_smoothing import BayesSmoothing
    from service.smooth import smooth_run

    _, mapped = svm_map(world, 0, out)
    source = mapped.classes.parent
    at = at_validation_points(world, source)
    with rasterio.open(mapped.classes) as src:
        megapixels = src.width * src.height / 1e6
    rows = [
        {
            "setting": "source map",
            "points_right": round(float(np.mean(at["labels"] == at["truth"])), 6),
            "truth_agreement": round(truth_agreement(mapped.classes, world.truth), 6),
        }
    ]
    for window in windows:
        folder = out / f"smoothed-{window}"
        cpu = _cpu_seconds()
        result = smooth_run(source, folder, BayesSmoothing(window, 0.5, (smoothness,)), workers=1)
        cpu = _cpu_seconds() - cpu
        smoothed = at_validation_points(world, folder)
        rows.append(
            {
                "setting": f"{window} x {window}, fraction 0.5, smoothness {smoothness:g}",
                "window": window,
                "points_right": round(float(np.mean(smoothed["labels"] == smoothed["truth"])), 6),
                "truth_agreement": round(truth_agreement(folder / "classes.tif", world.truth), 6),
                "changed_pixels": result.changed_pixels,
                "cpu_s_per_mpx": round(cpu / megapixels, 3),
            }
        )
        _log(f"world {world.seed}: window {window}: {rows[-1]}")
    return {"world": world.seed, "size": world.size, "megapixels": round(megapixels, 3), "rows": rows}


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: every world's settings, with the change against the source map in points."""
    lines = [
        "| world | setting | validation points right | change | pixels agreeing with truth | change | "
        "pixels changed | CPU s per Mpx |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for world in results:
        base = world["rows"][0]
        for row in world["rows"]:
            points = 100 * (row["points_right"] - base["points_right"])
            pixels = 100 * (row["truth_agreement"] - base["truth_agreement"])
            lines.append(
                f"| {world['world']} | {row['setting']} | {100 * row['points_right']:.2f} % "
                f"| {points:+.2f} | "
                f"{100 * row['truth_agreement']:.2f} % | {pixels:+.2f} | {row.get('changed_pixels', '')} | "
                f"{row.get('cpu_s_per_mpx', '')} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run every world and write ``smoothing.json`` and ``smoothing.md``."""
    from demo.world import generate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--worlds", type=int, default=1)
    parser.add_argument("--first-world", type=int, default=0)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--windows", default="3,5,7,9")
    parser.add_argument("--smoothness", type=float, default=20.0)
    parser.add_argument("--noise", type=float, default=0.0, help="Gaussian noise (reflectance) on the bands")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    windows = [int(w) for w in args.windows.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    results = []
    for seed in range(args.first_world, args.first_world + args.worlds):
        work = args.out / f"world-{seed}"
        shutil.rmtree(work, ignore_errors=True)
        _log(f"world {seed}: generating ({args.size} px)")
        world = generate(work / "world", size=args.size, seed=seed)
        if args.noise > 0:
            add_noise(world, args.noise, seed)
        results.append(one_world(world, windows, args.smoothness, work))
        shutil.rmtree(work, ignore_errors=True)
    document = {
        "command": "python -m bench.smoothing " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine_info(),
        "started_utc": f"{started:%Y-%m-%d %H:%M:%S}",
        "ended_utc": f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}",
        "noise": args.noise,
        "results": results,
    }
    (args.out / "smoothing.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    markdown = table(results)
    (args.out / "smoothing.md").write_text(
        f"`{document['command']}` ({document['started_utc']} - {document['ended_utc']} UTC, "
        f"{document['machine'].get('cpu', '')})\n\n{markdown}\n",
        encoding="utf-8",
    )
    print(markdown)


if __name__ == "__main__":
    main()
