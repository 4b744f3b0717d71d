"""Classification throughput and memory: ``lulc classify`` vs the tutorial's approach vs ONNX alone.

(A) ``lulc classify`` in its own process: COG windows over loopback HTTP, ONNX inference block by block,
    classes + confidence COGs written (the service's defaults: 512 blocks, 2 workers, 1 ORT thread each).
(B) The tutorial's approach in its own process, on the same pixels and the same (scikit-learn) model: read
    every band whole with rasterio (same URLs, same GDAL options), reshape to (pixels, bands), the same
    features, ``model.predict``, write a plain GeoTIFF.
(C) The compute floor in its own process: the scene already in memory, the engine's own ``infer_block``
    (features, ONNX Runtime, label decision) over the same blocks with the same 2-way block parallelism
    and the same session settings; only the timed part counts.

Run as ``python -m bench.classify tutorial|floor ...`` these are the worker processes the runner measures.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from bench.common import (
    Measured,
    available_memory,
    bench_worker,
    emit,
    own_peak_rss,
    ratio,
    run_measured,
)
from bench.models import SCALE, BenchModel, features_of, load_sklearn
from bench.scene import SCENE_BANDS, Scene
from lulc.gdal_env import gdal_env

LULC = str(Path(sys.executable).parent / "lulc")
TARGET_FLOOR_RATIO = 0.8
TARGET_SPEEDUP = 1.5
RSS_LIMIT = 1024**3
TUTORIAL_BYTES_PER_PIXEL = 120
MEMORY_SHARE = 0.7
"""(B) at full size runs only if its estimated peak fits in this share of the memory available."""


# ---------------------------------------------------------------------------------------------
# Workers (separate processes)


def tutorial_worker(model_path: Path, urls: list[str], out: Path) -> dict[str, Any]:
    """Read everything, reshape, featurise, ``predict``, write a plain GeoTIFF (the tutorial's workflow)."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    model = load_sklearn(model_path)
    with gdal_env():
        bands = []
        for url in urls:
            with rasterio.open(f"/vsicurl/{url}") as src:
                bands.append(src.read(1))
                profile = src.profile
    image = np.stack(bands)
    del bands
    timings["read_s"] = time.perf_counter() - start
    t = time.perf_counter()
    n_bands, height, width = image.shape
    pixels = image.reshape(n_bands, height * width)
    valid = np.all(pixels != 0, axis=0)
    features = features_of(pixels)
    timings["features_s"] = time.perf_counter() - t
    t = time.perf_counter()
    predicted = model.predict(features)
    labels = np.full(height * width, 255, dtype=np.uint8)
    labels[valid] = predicted[valid].astype(np.uint8)
    timings["predict_s"] = time.perf_counter() - t
    t = time.perf_counter()
    profile.update(driver="GTiff", dtype="uint8", count=1, nodata=255, compress=None, tiled=False)
    for key in ("blockxsize", "blockysize", "interleave", "predictor"):
        profile.pop(key, None)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(labels.reshape(height, width), 1)
    timings["write_s"] = time.perf_counter() - t
    return {"timings": {k: round(v, 3) for k, v in timings.items()}, "peak_rss_self": own_peak_rss()}


def floor_worker(
    model_path: Path, scene: Scene, block_size: int, workers: int, threads: int, step: int
) -> dict[str, Any]:
    """Time ``infer_block`` over every ``step``-th block of the in-memory scene (2 blocks at a time)."""
    from lulc.grid import OutputGrid
    from service.blocks import infer_block
    from service.runner import OnnxRunner

    dn = np.empty((len(SCENE_BANDS), scene.size, scene.size), dtype=np.uint16)
    with gdal_env():
        for b, name in enumerate(SCENE_BANDS):
            with rasterio.open(scene.band(name)) as src:
                dn[b] = src.read(1)
    runner = OnnxRunner(model_path, threads=threads)
    grid = OutputGrid(f"EPSG:{32654}", scene.transform, scene.size, scene.size, block_size, None)
    blocks = list(grid.blocks())[::step]
    scale = np.float32(SCALE)

    def one(block: Any) -> int:
        window = dn[:, block.row : block.row + block.height, block.col : block.col + block.width]
        reflectance = window.astype(np.float32) * scale
        reflectance[:, (window == 0).any(axis=0)] = np.nan
        result = infer_block(runner, grid, block, reflectance, True)
        return int(result.labels.size)

    one(blocks[0])  # session warm-up outside the timed part, as the service's session is reused
    start, cpu_start = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(workers) as pool:
        done = sum(pool.map(one, blocks))
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    return {
        "seconds": round(seconds, 3),
        "cpu_s": round(cpu, 3),
        "mpx_cpu_s": round(done / 1e6 / cpu, 3),
        "pixels": done,
        "blocks": len(blocks),
        "block_step": step,
        "mpx_s": round(done / 1e6 / seconds, 3),
    }


# ---------------------------------------------------------------------------------------------
# The runner side


def run_service(
    scene: Scene, model: BenchModel, stac_url: str, out: Path, extra: list[str] | None = None
) -> Measured:
    """(A) ``lulc classify`` as a subprocess."""
    command = [
        LULC,
        "classify",
        "--model",
        str(model.onnx),
        "--aoi",
        str(scene.aoi),
        "--datetime",
        scene.datetime_window,
        "--stac",
        stac_url,
        "--out",
        str(out),
        *(extra or []),
    ]
    return run_measured(command, env={"TERM": "dumb", "COLUMNS": "100"}).check()


def run_tutorial(scene: Scene, model: BenchModel, base_url: str, out: Path) -> Measured:
    """(B) the tutorial's approach as a subprocess."""
    urls = [scene.band_url(base_url, name) for name in SCENE_BANDS]
    args = ["tutorial", "--model", str(model.sklearn), "--out", str(out), *[f"--url={u}" for u in urls]]
    return run_measured(bench_worker("classify", *args)).check()


FLOOR_MPX = 25.0
"""By default (C) times every k-th block so that about this many megapixels are inferred: it is a rate."""


def run_floor(
    scene: Scene, model: BenchModel, workers: int = 2, threads: int = 1, fraction: float | None = None
) -> dict[str, Any]:
    """(C) the compute floor as a subprocess; returns its JSON result."""
    if fraction is None:
        fraction = min(1.0, FLOOR_MPX / scene.megapixels)
    step = max(1, round(1.0 / max(fraction, 1e-6)))
    args = ["floor", "--model", str(model.onnx), "--scene", str(scene.root), "--size", str(scene.size)]
    args += ["--step", str(step)]
    args += ["--workers", str(workers), "--threads", str(threads)]
    return run_measured(bench_worker("classify", *args)).check().result()


def agreement(a: Path, b: Path, truth: Path | None = None) -> dict[str, float]:
    """Share of pixels where two class maps agree (and each one's agreement with the truth), by strips."""
    same = total = right_a = right_b = 0
    with gdal_env(), rasterio.open(a) as ra, rasterio.open(b) as rb:
        rt = rasterio.open(truth) if truth is not None else None
        try:
            for top in range(0, ra.height, 1024):
                window = rasterio.windows.Window(0, top, ra.width, min(1024, ra.height - top))
                la, lb = ra.read(1, window=window), rb.read(1, window=window)
                same += int(np.count_nonzero(la == lb))
                total += la.size
                if rt is not None:
                    lt = rt.read(1, window=window)
                    right_a += int(np.count_nonzero(la == lt))
                    right_b += int(np.count_nonzero(lb == lt))
        finally:
            if rt is not None:
                rt.close()
    out = {"agreement": round(same / max(total, 1), 5)}
    if truth is not None:
        out["truth_agreement_service"] = round(right_a / max(total, 1), 5)
        out["truth_agreement_tutorial"] = round(right_b / max(total, 1), 5)
    return out


def measure_model(
    scene: Scene,
    small: Scene | None,
    model: BenchModel,
    small_model: BenchModel | None,
    base_url: str,
    small_base_url: str | None,
    work: Path,
    log: Any,
    floor_fraction: float | None = None,
) -> dict[str, Any]:
    """A, B (at full size if memory allows, and at the small size) and C for one model."""
    mpx = scene.megapixels
    stac_url = f"{base_url}/items.json"
    log(f"  A: lulc classify {model.name} on {scene.size} x {scene.size} px")
    service = run_service(scene, model, stac_url, work / f"service-{model.name}")
    out: dict[str, Any] = {
        "model": model.name,
        "megapixels": mpx,
        "service": {
            "wall_s": round(service.wall_s, 2),
            "mpx_s": round(mpx / service.wall_s, 3),
            "peak_rss_mib": service.max_rss_mib,
        },
    }
    log(f"     {service.wall_s:.1f} s, {service.max_rss_mib:.0f} MiB")
    log(f"  C: ONNX floor {model.name}")
    floor = run_floor(scene, model, fraction=floor_fraction)
    out["floor"] = floor
    log(f"     {floor['seconds']:.1f} s ({floor['mpx_s']} Mpx/s)")
    tutorial_runs: list[dict[str, Any]] = []
    if small is not None and small_model is not None and small_base_url is not None:
        log(f"  B: tutorial {model.name} at {small.size} px (memory growth)")
        b_small = run_tutorial(
            small, small_model, small_base_url, work / f"tutorial-{model.name}-{small.size}.tif"
        )
        tutorial_runs.append(_tutorial_entry(small, b_small))
        log(f"     {b_small.wall_s:.1f} s, {b_small.max_rss_mib:.0f} MiB")
    # The tutorial holds about 120 bytes per pixel at its peak (bands, reflectance, features, float64 copy).
    base = tutorial_runs[0]["peak_rss_mib"] * 1024**2 if tutorial_runs else 512 * 1024**2
    need = base + TUTORIAL_BYTES_PER_PIXEL * (scene.size**2 - (small.size**2 if small else 0))
    if small is None or scene.size != small.size:
        available = available_memory()
        if need < MEMORY_SHARE * available:
            log(f"  B: tutorial {model.name} at {scene.size} px (needs ~{need / 1024**3:.1f} GiB)")
            b_full = run_tutorial(scene, model, base_url, work / f"tutorial-{model.name}.tif")
            tutorial_runs.append(_tutorial_entry(scene, b_full))
            log(f"     {b_full.wall_s:.1f} s, {b_full.max_rss_mib:.0f} MiB")
            out["agreement"] = agreement(
                work / f"service-{model.name}" / "classes.tif",
                work / f"tutorial-{model.name}.tif",
                scene.truth,
            )
        else:
            out["tutorial_skipped"] = (
                f"would need ~{need / 1024**3:.1f} GiB, more than {100 * MEMORY_SHARE:.0f} % of the "
                f"{available / 1024**3:.1f} GiB available now"
            )
            log(f"  B skipped: {out['tutorial_skipped']}")
    out["tutorial"] = tutorial_runs
    full = next((t for t in tutorial_runs if t["size"] == scene.size), None)
    out["ratios"] = {
        "service_over_floor": ratio(out["service"]["mpx_s"], floor["mpx_s"]),
        "speedup_over_tutorial": ratio(full["wall_s"], service.wall_s) if full else None,
        "service_wall_over_tutorial_wall": ratio(service.wall_s, full["wall_s"]) if full else None,
    }
    out["targets"] = {
        "service_over_floor_ge_0.8": _ok(out["ratios"]["service_over_floor"], TARGET_FLOOR_RATIO),
        "speedup_over_tutorial_ge_1.5": _ok(out["ratios"]["speedup_over_tutorial"], TARGET_SPEEDUP),
        "service_peak_rss_lt_1GiB": service.max_rss_bytes < RSS_LIMIT,
    }
    return out


def _tutorial_entry(scene: Scene, run: Measured) -> dict[str, Any]:
    result = run.result()
    return {
        "size": scene.size,
        "megapixels": scene.megapixels,
        "wall_s": round(run.wall_s, 2),
        "mpx_s": round(scene.megapixels / run.wall_s, 3),
        "peak_rss_mib": run.max_rss_mib,
        "timings": result["timings"],
    }


def _ok(value: float | None, target: float) -> bool | None:
    return None if value is None else value >= target


def main() -> None:
    """Worker entry point: ``tutorial`` or ``floor``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="mode", required=True)
    tut = sub.add_parser("tutorial")
    tut.add_argument("--model", type=Path, required=True)
    tut.add_argument("--out", type=Path, required=True)
    tut.add_argument("--url", action="append", required=True)
    flo = sub.add_parser("floor")
    flo.add_argument("--model", type=Path, required=True)
    flo.add_argument("--scene", type=Path, required=True)
    flo.add_argument("--size", type=int, required=True)
    flo.add_argument("--block-size", type=int, default=512)
    flo.add_argument("--workers", type=int, default=2)
    flo.add_argument("--threads", type=int, default=1)
    flo.add_argument("--step", type=int, default=1)
    ns = parser.parse_args()
    if ns.mode == "tutorial":
        emit(tutorial_worker(ns.model, ns.url, ns.out))
    else:
        scene = Scene(ns.scene, ns.size, 0)
        emit(floor_worker(ns.model, scene, ns.block_size, ns.workers, ns.threads, ns.step))


if __name__ == "__main__":
    main()
