"""What sampling a polygon layer holds in memory, all at once vs in parts (``polygon_batch_pixels``).

One synthetic 4-band float32 scene (``--size`` px a side, tiled 512, deflate) and a grid of ``--grid`` x
``--grid`` square polygons of ``--polygon`` px a side; ``training.sampling.sample_polygons`` with the default
cap of 30 pixels a polygon and each ``--batches`` value (0: every polygon in one part, as before parts
existed), each in a fresh process. Per setting: the peak RSS of that process (``VmHWM``), the peak of the
memory Python's allocator traced during the sampling alone (numpy's arrays included), the wall time, the
blocks read (a block shared by two parts is read by each) and a digest of the samples, which must be the
same for every setting.

``python -m bench.polygon_sampling --out bench/polygon-sampling-run`` writes ``OUT/polygon-sampling.json``
(every figure, the machine, UTC start and end) and ``OUT/polygon-sampling.md``, and prints the JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import bench_worker, emit, machine_info, run_measured, utc_now

BANDS = ["blue", "green", "red", "nir"]
CAP = 30
"""Pixels kept a polygon (``max_pixels_per_polygon``'s default)."""


def make_scene(work: Path, size: int, grid: int, polygon: int) -> tuple[Path, Path]:
    """The scene and its polygons under ``work`` (made once per size and layout)."""
    import geopandas as gpd
    import rasterio
    from rasterio.transform import from_origin
    from shapely.geometry import box

    image = work / f"scene-{size}.tif"
    polygons = work / f"polygons-{size}-{grid}x{polygon}.gpkg"
    left, top, pixel = 500_000.0, 5_000_000.0, 10.0
    if not image.exists():
        rng = np.random.default_rng(0)
        profile = {
            "driver": "GTiff",
            "width": size,
            "height": size,
            "count": len(BANDS),
            "dtype": "float32",
            "crs": "EPSG:32633",
            "transform": from_origin(left, top, pixel, pixel),
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
            "compress": "deflate",
        }
        partial = image.with_suffix(".partial.tif")
        with rasterio.open(partial, "w", **profile) as dst:
            dst.write(rng.uniform(0.01, 0.5, (len(BANDS), size, size)).astype(np.float32))
            dst.descriptions = tuple(BANDS)
        partial.replace(image)
    if not polygons.exists():
        step = size // grid
        if polygon >= step:
            raise SystemExit(f"--polygon {polygon} does not fit {grid} polygons a side of a {size} px scene")
        shapes, labels = [], []
        for i in range(grid):
            for j in range(grid):
                x0, y0 = left + (i * step + 1) * pixel, top - (j * step + 1) * pixel
                shapes.append(box(x0, y0 - polygon * pixel, x0 + polygon * pixel, y0))
                labels.append(1 + (i + j) % 3)
        frame = gpd.GeoDataFrame({"label": labels}, geometry=shapes, crs="EPSG:32633")
        frame.to_file(polygons)
    return image, polygons


def worker(image: Path, polygons: Path, batch: int) -> dict[str, Any]:
    """Sample the polygons in parts of ``batch`` pixel centres (0: one part); figures of this process."""
    from training.imagery import open_local_imagery
    from training.points import read_points
    from training.sampling import sample_polygons

    imagery = open_local_imagery(image, BANDS, None, None, None)
    points = read_points(polygons, "label")
    tracemalloc.start()
    start = time.perf_counter()
    chosen, samples, _ = sample_polygons(imagery, points, CAP, 0, batch_pixels=batch or 2**62)
    wall = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    digest = hashlib.sha256()
    for array in (samples.reflectance, samples.index, chosen.x, chosen.y, chosen.labels):
        digest.update(np.ascontiguousarray(array).tobytes())
    return {
        "batch_pixels": batch,
        "sampling_wall_s": round(wall, 3),
        "traced_peak_mib": round(peak / 2**20, 1),
        "blocks_read": samples.blocks_read,
        "samples": int(samples.labels.size),
        "digest": digest.hexdigest(),
    }


def table(result: dict[str, Any]) -> str:
    """The markdown report."""
    lines = [
        "# Polygon sampling: memory all at once vs in parts",
        "",
        f"- Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores; "
        f"{result['started']} to {result['finished']}",
        f"- Command: `{result['command']}`",
        f"- Scene {result['size']} x {result['size']} px, 4 bands float32; {result['polygons']} polygons of "
        f"{result['polygon']} x {result['polygon']} px ({result['pixel_centres']:,} pixel centres), "
        f"{CAP} kept each",
        f"- Same samples for every setting: {result['same_samples']}",
        "",
        "| batch_pixels | process peak RSS (MiB) | traced peak in sampling (MiB) | sampling wall (s) "
        "| blocks read |",
        "|---|---|---|---|---|",
    ]
    for row in result["settings"]:
        batch = "all at once" if row["batch_pixels"] == 0 else f"{row['batch_pixels']:,}"
        lines.append(
            f"| {batch} | {row['peak_rss_mib']} | {row['traced_peak_mib']} | {row['sampling_wall_s']} | "
            f"{row['blocks_read']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.polygon_sampling [--size 4000 --grid 8 --polygon 400 --batches 0,...] --out DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--grid", type=int, default=8, help="Polygons a side.")
    parser.add_argument("--polygon", type=int, default=400, help="Polygon side, pixels.")
    parser.add_argument("--batches", default="0,2000000,1000000,500000")
    parser.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "work" / "polygons")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--worker", nargs=3, metavar=("IMAGE", "POLYGONS", "BATCH"), help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.worker:
        image, polygons, batch = ns.worker
        emit(worker(Path(image), Path(polygons), int(batch)))
        return
    started = utc_now()
    ns.work.mkdir(parents=True, exist_ok=True)
    image, polygons = make_scene(ns.work, ns.size, ns.grid, ns.polygon)
    settings = []
    for batch in (int(b) for b in ns.batches.split(",")):
        done = run_measured(bench_worker("polygon_sampling", "--out", str(ns.out), "--worker", str(image),
                                         str(polygons), str(batch)))  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"batch {batch}: exit {done.returncode}\n{done.stderr[-3000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["peak_rss_mib"] = round(done.max_rss_bytes / 2**20, 1)
        settings.append(row)
    result = {
        "machine": machine_info(),
        "command": "python -m bench.polygon_sampling " + " ".join(sys.argv[1:] if argv is None else argv),
        "started": started,
        "finished": utc_now(),
        "size": ns.size,
        "polygons": ns.grid**2,
        "polygon": ns.polygon,
        "pixel_centres": ns.grid**2 * ns.polygon**2,
        "same_samples": len({row["digest"] for row in settings}) == 1,
        "settings": settings,
    }
    ns.out.mkdir(parents=True, exist_ok=True)
    (ns.out / "polygon-sampling.json").write_text(json.dumps(result, indent=1) + "\n")
    (ns.out / "polygon-sampling.md").write_text(table(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
