"""Sampling 10,000 points over a multi-band item via HTTP: our block-grouped sampler vs one open per point.

(grouped) ``training.sampling.sample_points`` over ``training.composite.open_stac_imagery``: the STAC item
    read through ``/vsicurl/`` by ``lulc.pixels`` (the classifier's reader), each block holding points read
    once (what ``lulc train`` does).
(naive) the tutorial's loop: for every point, ``rasterio.open`` each band and ``sample`` one pixel.

Each runs in its own fresh process (a fresh GDAL cache); the server counts the HTTP requests.
Run as ``python -m bench.sampling grouped|naive ...`` these are the worker processes.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS

from bench.common import bench_worker, emit, run_measured
from bench.scene import SCENE_BANDS, Scene
from lulc.gdal_env import gdal_env
from lulc.grid import Block, OutputGrid

TARGET_FEWER = 10.0
COG_TILE = 512


def points(scene: Scene, n: int, seed: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """``n`` random pixel-centre coordinates (EPSG:32654) inside the scene."""
    rng = np.random.default_rng([seed, n])
    rows = rng.integers(0, scene.size, n)
    cols = rng.integers(0, scene.size, n)
    left, _, _, top = scene.bounds
    return left + (cols + 0.5) * 10.0, top - (rows + 0.5) * 10.0


def tiles_touched(scene: Scene, n: int, seed: int) -> int:
    """COG tiles (per band) holding at least one point."""
    x, y = points(scene, n, seed)
    left, _, _, top = scene.bounds
    cols = ((x - left) / 10.0).astype(int) // COG_TILE
    rows = ((top - y) / 10.0).astype(int) // COG_TILE
    return len(set(zip(rows.tolist(), cols.tolist(), strict=True)))


def grouped_worker(scene: Scene, stac_url: str, n: int, seed: int, first: int) -> dict[str, Any]:
    """Sample through the training package (STAC item over HTTP, blocks read once).

    ``checksum_first``: the sum of the reflectance of the ``first`` points, which the naive loop samples.
    """
    from demo.landscape import CLASS_TABLE
    from training.composite import open_stac_imagery
    from training.config import TrainingConfig
    from training.points import LabelledPoints
    from training.sampling import sample_points
    from training.settings import TrainingSettings

    x, y = points(scene, n, seed)
    config = TrainingConfig(
        stac=stac_url,
        aoi=str(scene.aoi),
        datetime=scene.datetime_window,
        bands=list(SCENE_BANDS),
        resolution=10.0,
        composite="first-valid",
    )
    start = time.perf_counter()
    imagery = open_stac_imagery(config, TrainingSettings())
    labelled = LabelledPoints(
        source="bench points",
        crs=CRS.from_epsg(32654),
        x=x,
        y=y,
        labels=np.ones(n, dtype=np.int64),
        classes=CLASS_TABLE,
        fields=["label"],
    )
    samples = sample_points(imagery, labelled)
    seconds = time.perf_counter() - start
    grid = imagery.grid
    # COG tiles under the blocks the sampler read: its block grid need not align with the COGs' tiles.
    left, _, _, top = scene.bounds
    cog_tiles: set[tuple[int, int]] = set()
    for block in _blocks_with_points(grid, x, y):
        c0 = (grid.transform.c - left) / 10.0 + block.col
        r0 = (top - grid.transform.f) / 10.0 + block.row
        for tr in range(
            max(0, int(r0 // COG_TILE)), min(_ntiles(scene), math.ceil((r0 + block.height) / COG_TILE))
        ):
            for tc in range(
                max(0, int(c0 // COG_TILE)),
                min(_ntiles(scene), math.ceil((c0 + block.width) / COG_TILE)),
            ):
                cog_tiles.add((tr, tc))
    return {
        "seconds": round(seconds, 3),
        "points": n,
        "sampled": int(samples.labels.size),
        "blocks_read": samples.blocks_read,
        "cog_tiles_under_blocks": len(cog_tiles),
        "checksum": float(np.round(samples.reflectance.astype(np.float64).sum(), 3)),
        "sampled_first": int(np.count_nonzero(samples.index < first)),
        "checksum_first": float(
            np.round(samples.reflectance[samples.index < first].astype(np.float64).sum(), 3)
        ),
    }


def _ntiles(scene: Scene) -> int:
    return -(-scene.size // COG_TILE)


def _blocks_with_points(grid: OutputGrid, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> set[Block]:
    rows, cols = grid.pixel_index(x, y)
    inside = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
    size = grid.block_size
    pairs = zip(rows[inside].tolist(), cols[inside].tolist(), strict=True)
    return {grid.block_at(r // size, c // size) for r, c in pairs}


def naive_worker(scene: Scene, base_url: str, n: int, seed: int, first: int) -> dict[str, Any]:
    """The tutorial's loop: open every band per point and sample it, for the ``first`` of the ``n`` points.

    DN x 1e-4: the bench scene's items carry no offset (``bench.scene``), so this is the reflectance the
    grouped sampler reads.
    """
    x, y = points(scene, n, seed)
    x, y = x[:first], y[:first]
    n = first
    urls = [f"/vsicurl/{scene.band_url(base_url, name)}" for name in SCENE_BANDS]
    values = np.zeros((n, len(urls)), dtype=np.float64)
    start = time.perf_counter()
    with gdal_env():
        for i in range(n):
            for b, url in enumerate(urls):
                with rasterio.open(url) as src:
                    values[i, b] = next(src.sample([(float(x[i]), float(y[i]))]))[0]
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 3),
        "points": n,
        "checksum": float(np.round((values * 1e-4).sum(), 3)),
    }


def run(
    scene: Scene, server: Any, base_url: str, n: int = 10_000, seed: int = 0, naive_points: int | None = None
) -> dict[str, Any]:
    """Both samplers, each in a fresh process; ``server`` (serving ``base_url``) counts the HTTP requests."""
    stac_url = f"{base_url}/items.json"
    server.requests.clear()
    naive_n = naive_points or n
    grouped = run_measured(
        bench_worker("sampling", "grouped", *_args(scene, stac_url, n, seed, naive_n))
    ).check()
    records = server.requests.records()
    grouped_requests = len(records)
    seen: set[tuple[str, str | None]] = set()
    repeated = 0
    for record in records:
        key = (record.path, record.range)
        repeated += key in seen and record.range is not None
        seen.add(key)
    g = grouped.result()
    server.requests.clear()
    naive = run_measured(bench_worker("sampling", "naive", *_args(scene, base_url, n, seed, naive_n))).check()
    naive_requests = len(server.requests.records())
    nv = naive.result()
    scale = n / naive_n
    naive_total = round(naive_requests * scale)
    # Bounded by blocks: a 512 px block that is not aligned with the COG's 512 px tiles covers at most 4
    # of them, so per band at most 4 ranged reads per block, plus a HEAD and the header read at open;
    # plus the one request for the item collection.
    bound = (4 * g["blocks_read"] + 2) * len(SCENE_BANDS) + 1
    touched = tiles_touched(scene, n, seed)
    out = {
        "points": n,
        "grouped_repeated_range_requests": repeated,
        "bands": len(SCENE_BANDS),
        "scene_size": scene.size,
        "cog_tiles_touched_per_band": touched,
        "grouped": {**g, "requests": grouped_requests, "wall_s": round(grouped.wall_s, 2)},
        "naive": {
            **nv,
            "requests": naive_requests,
            "requests_for_all_points": naive_total,
            "extrapolated": naive_n != n,
            "seconds_for_all_points": round(nv["seconds"] * scale, 2),
            "wall_s": round(naive.wall_s, 2),
        },
    }
    out["ratios"] = {
        "fewer_requests": round(naive_total / max(grouped_requests, 1), 2),
        "faster": round(nv["seconds"] * scale / max(g["seconds"], 1e-9), 2),
        "requests_per_block_and_band": round(
            grouped_requests / max(g["blocks_read"] * len(SCENE_BANDS), 1), 3
        ),
    }
    out["targets"] = {
        "requests_bounded_by_blocks": grouped_requests <= bound,
        "fewer_requests_ge_10x": naive_total >= TARGET_FEWER * grouped_requests,
    }
    out["bound"] = f"(4 x blocks read + 2) x bands + 1 = {bound}"
    return out


def _args(scene: Scene, url: str, n: int, seed: int, first: int) -> list[str]:
    return [
        "--scene",
        str(scene.root),
        "--size",
        str(scene.size),
        "--url",
        url,
        "--points",
        str(n),
        "--seed",
        str(seed),
        "--first",
        str(first),
    ]


def main() -> None:
    """Worker entry point: ``grouped`` or ``naive``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("mode", choices=["grouped", "naive"])
    parser.add_argument("--scene", type=Path, required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", type=int, required=True, help="Points the naive loop samples.")
    ns = parser.parse_args()
    scene = Scene(ns.scene, ns.size, 0)
    if ns.mode == "grouped":
        emit(grouped_worker(scene, ns.url, ns.points, ns.seed, ns.first))
    else:
        emit(naive_worker(scene, ns.url, ns.points, ns.seed, ns.first))


if __name__ == "__main__":
    main()
