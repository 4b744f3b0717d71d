"""Issue 14 side by side: ``lulc classify`` vs the tutorial's workflow vs pyspatialml, on the same SVM.

Two scenes, both the tutorial's real Sentinel-2 image (``shared/data/lulc_py/s2image.tif``: 763 x 406 px,
4 bands, float32 reflectance, nodata slivers) repeated: **tiled** (default 7 rows x 12 columns of it,
2,842 x 9,156 px = 26 Mpx) and a **full tile** (default 10,980 x 10,980 px, a Sentinel-2 tile's size),
written as local tiled, deflate-compressed GeoTIFFs (cached under the work folder). One model: the
tutorial's RBF SVM (default hyper-parameters, a stratified 70 % of the 121 points), exported by
``training.export`` (our graph, with its contract) and pickled for the others. Every approach runs in its
own process, one after the other:

- **(A)** ``lulc classify --image SCENE --model svm.onnx`` (defaults: 512 px blocks, 2 workers): wall
  time, CPU time, peak RSS;
- **(B)** the tutorial's workflow: read every band whole, reshape to (pixels, bands), ``predict``, write
  a plain GeoTIFF (skipped where its estimated peak does not fit in the memory available);
- **(P)** pyspatialml's ``Raster(SCENE).predict(model)`` (from PyPI; it pins numpy < 2, so it runs from
  its own virtual environment, made by this script under the work folder with the same scikit-learn);
- **per core**: ``bench.runtimes.measure`` on this model (the kind issue 14's per-core figures were taken
  on): our graph vs ONNX Runtime's ``SVMClassifier`` (skl2onnx's stock graph) vs scikit-learn, 1 thread, on
  ``RUNTIME_PIXELS`` valid pixels of the tiled scene, Mpx per CPU second (target >= 2.5 for ours);
- **(C)** inference alone: the engine's ``infer_block`` over the scene's blocks already in memory (read
  by the same reader), 2 blocks at a time, the same session settings; on large scenes every k-th block.

Figures: B / A and P / A wall time (target >= 4x on the tiled scene), A's wall time and peak RSS on the
full tile (targets < 60 s, < 1 GiB), A / C throughput (end to end over inference alone, target >= 0.85)
and the label agreement of the maps (A decides from the probabilities, B and P use ``predict``: SVM maps
differ near class borders). Part of ``bench/run.py`` (``--parts peers``); ``python -m bench.peers --size
2000 --tiles 2x3`` runs this part alone (``--no-pyspatialml`` skips the peer and its environment).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from bench.classify import LULC, agreement
from bench.common import (
    PYTHON,
    REPO,
    Measured,
    available_memory,
    bench_worker,
    emit,
    own_peak_rss,
    ratio,
    run_measured,
)
from lulc.gdal_env import gdal_env

TUTORIAL = REPO.parent / "shared" / "data" / "lulc_py"
"""The tutorial's data (read-only, beside the repository)."""
BANDS = ("blue", "green", "red", "nir")
DATETIME = "2023-05-01"
"""The tutorial image records no date; every run names one (as ``--datetime`` does)."""
TILES = (7, 12)
FULL_TILE = 10_980
TARGET_SPEEDUP = 4.0
TARGET_FULL_SECONDS = 60.0
TARGET_END_TO_END = 0.85
RSS_LIMIT = 1024**3
RUNTIME_PIXELS = 250_000
"""Pixels of the per-core comparison on the tutorial's SVM (as ``bench/runtimes.py``'s default; an eighth
of the tiled scene when that is fewer)."""
FLOOR_MPX = 25.0
"""Inference alone is timed on about this many megapixels (every k-th block of a larger scene)."""
TUTORIAL_BYTES_PER_PIXEL = 100
"""The tutorial's peak per pixel: the float32 bands, a float64 copy of the (pixels, bands) matrix, labels."""
MEMORY_SHARE = 0.7
SCENE_FORMAT = 2
"""Bumped when a scene's bytes change, so cached scenes are rebuilt."""
PYSPATIALML_WORKER = """
import json, pickle, resource, sys, time, warnings
warnings.simplefilter("ignore")
start = time.perf_counter()
from pyspatialml import Raster
with open(sys.argv[1], "rb") as f:
    model = pickle.load(f)
Raster(sys.argv[2]).predict(estimator=model, file_path=sys.argv[3], dtype="uint8", nodata=255)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_rss_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""
"""The pyspatialml run, executed by its own environment's Python (nothing of ours is importable there)."""


# ---------------------------------------------------------------------------------------------
# Scenes and the model


def make_scene(path: Path, height: int, width: int) -> Path:
    """The tutorial image repeated over ``height`` x ``width`` px (its origin and pixel), a tiled GeoTIFF."""
    identity = {"height": height, "width": width, "format": SCENE_FORMAT}
    marker = path.with_suffix(".json")
    if path.is_file() and marker.is_file() and json.loads(marker.read_text()) == identity:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with gdal_env(), rasterio.open(TUTORIAL / "s2image.tif") as src:
        image = src.read()
        profile = {
            "driver": "GTiff",
            "width": width,
            "height": height,
            "count": src.count,
            "dtype": "float32",
            "crs": src.crs,
            "transform": src.transform,
            "nodata": src.nodata,
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
            "compress": "deflate",
            "interleave": "pixel",
            "bigtiff": "if_safer",
        }
        descriptions = src.descriptions
    cols = np.arange(width) % image.shape[2]
    partial = path.with_name(f".{path.name}.partial")
    with gdal_env(), rasterio.open(partial, "w", **profile) as dst:
        for band, name in enumerate(descriptions, start=1):
            if name:
                dst.set_band_description(band, name)
        for top in range(0, height, 512):
            rows = np.arange(top, min(top + 512, height)) % image.shape[1]
            dst.write(image[:, rows][:, :, cols], window=Window(0, top, width, len(rows)))
    os.replace(partial, path)
    marker.write_text(json.dumps(identity) + "\n")
    return path


def train_model(out: Path) -> tuple[Path, Path]:
    """The tutorial's SVM: ``out/svm.onnx`` (our export, with its contract) and ``out/svm.pkl``.

    Also ``out/svm-stock.onnx``, skl2onnx's own graph (``SVMClassifier``), for the per-core comparison.
    """
    onnx_path, pickled = out / "svm.onnx", out / "svm.pkl"
    if onnx_path.is_file() and pickled.is_file() and stock_path(onnx_path).is_file():
        return onnx_path, pickled
    import geopandas as gpd
    from sklearn.model_selection import train_test_split
    from sklearn.svm import SVC

    from lulc.classes import ClassTable
    from lulc.contract import Features, Inputs, ModelContract, Outputs, Provenance
    from training import export

    out.mkdir(parents=True, exist_ok=True)
    points = gpd.read_file(TUTORIAL / "samples.shp")
    with gdal_env(), rasterio.open(TUTORIAL / "s2image.tif") as src:
        values = np.array(list(src.sample([(p.x, p.y) for p in points.geometry])), dtype=np.float32)
    labels = points["labels"].to_numpy().astype(np.int64)
    x, _, y, _ = train_test_split(values, labels, test_size=0.3, stratify=labels, random_state=42)
    names = ["Water", "Dense Veg", "Veg", "Impervious"]
    colours = ["#1f78b4", "#33a02c", "#b2df8a", "#e31a1c"]
    table = ClassTable.model_validate(
        {
            "classes": [
                {"value": v, "name": n, "color": c}
                for v, n, c in zip((1, 2, 3, 4), names, colours, strict=True)
            ]
        }
    )
    with warnings.catch_warnings():  # scikit-learn 1.9 deprecates probability=True; the export needs it
        warnings.simplefilter("ignore", FutureWarning)
        svm = SVC(probability=True, random_state=0).fit(x, y)
    contract = ModelContract(
        name="tutorial-svm",
        version="bench",
        inputs=Inputs(bands=list(BANDS), resolution=10.0),
        features=Features(indices=[]),
        classes=table,
        outputs=Outputs(class_order=[int(c) for c in svm.classes_]),
        provenance=Provenance(model_type="svm", training_data="lulc_py samples.shp, stratified 70 %", seed=0),
    )
    onnx_path.write_bytes(export.embed_contract(export.to_onnx(svm, len(BANDS), "svm"), contract))
    stock = export.to_onnx(svm, len(BANDS), "svm", graph="stock")
    stock_path(onnx_path).write_bytes(export.embed_contract(stock, contract))
    pickled.write_bytes(pickle.dumps(svm))
    return onnx_path, pickled


def stock_path(onnx_path: Path) -> Path:
    """Where ``train_model`` puts the stock graph of the model at ``onnx_path``."""
    return onnx_path.with_name(f"{onnx_path.stem}-stock.onnx")


def sklearn_version() -> str:
    """The scikit-learn version of this environment (the peer's environment gets the same)."""
    import sklearn

    return str(sklearn.__version__)


def pyspatialml_python(folder: Path, log: Any) -> Path:
    """The Python of pyspatialml's own environment under ``folder``, made (once) with the same scikit-learn.

    ``uv`` when it is on the PATH, else ``venv`` + ``pip``; both install from the configured package index,
    with the packages' bytecode compiled, as ``make install`` does ours: where PYTHONDONTWRITEBYTECODE is set,
    the peer's timed runs would otherwise compile scikit-learn, pandas and SciPy again each time.
    """
    requirements = ["pyspatialml", f"scikit-learn=={sklearn_version()}", "numpy<2"]
    python = folder / "bin" / "python"
    marker = folder / "bench-requirements.json"
    recorded = [*requirements, "compiled"]
    if python.is_file() and marker.is_file() and json.loads(marker.read_text()) == recorded:
        return python
    log(f"  making pyspatialml's environment in {folder} ({', '.join(requirements)})")
    shutil.rmtree(folder, ignore_errors=True)
    uv = shutil.which("uv")
    if uv:
        steps = [[uv, "venv", "-q", "--python", PYTHON, str(folder)]]
        install = [uv, "pip", "install", "-q", "--compile-bytecode", "--python", str(python)]
        steps.append([*install, *requirements])
    else:
        base = getattr(sys, "_base_executable", PYTHON)
        steps = [
            [base, "-m", "venv", str(folder)],
            [str(python), "-m", "pip", "install", "-q", *requirements],
        ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=1200)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"{' '.join(step[:4])} ... failed: {' | '.join(tail)}")
    marker.write_text(json.dumps(recorded) + "\n")
    return python


# ---------------------------------------------------------------------------------------------
# Workers (separate processes)


def valid_rows(pixels: np.ndarray[Any, Any], nodata: float | None) -> np.ndarray[Any, Any]:
    """Rows of a (pixels, bands) matrix with every band finite and none equal to ``nodata``."""
    valid = np.isfinite(pixels).all(axis=1)
    if nodata is not None:
        valid &= (pixels != np.float32(nodata)).all(axis=1)
    return valid


def tutorial_worker(model_path: Path, scene: Path, out: Path) -> dict[str, Any]:
    """Read every band whole, reshape to (pixels, bands), ``predict``, write a plain GeoTIFF."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    model = pickle.loads(model_path.read_bytes())
    with gdal_env(), rasterio.open(scene) as src:
        image = src.read()
        profile = src.profile
    timings["read_s"] = time.perf_counter() - start
    t = time.perf_counter()
    n_bands, height, width = image.shape
    pixels = image.reshape(n_bands, -1).T
    valid = valid_rows(pixels, profile["nodata"])
    predicted = model.predict(pixels)
    labels = np.where(valid, predicted, 255).astype(np.uint8)
    timings["predict_s"] = time.perf_counter() - t
    t = time.perf_counter()
    profile.update(driver="GTiff", dtype="uint8", count=1, nodata=255, compress=None, tiled=False)
    for key in ("blockxsize", "blockysize", "interleave", "predictor", "bigtiff"):
        profile.pop(key, None)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(labels.reshape(height, width), 1)
    timings["write_s"] = time.perf_counter() - t
    return {"timings": {k: round(v, 3) for k, v in timings.items()}, "peak_rss_self": own_peak_rss()}


def floor_worker(model_path: Path, scene: Path, step: int, workers: int) -> dict[str, Any]:
    """Time ``infer_block`` over every ``step``-th block of the scene, read into memory first."""
    from service.blocks import infer_block
    from service.readers import ImageReaderFactory
    from service.request import ClassifyRequest
    from service.runner import OnnxRunner

    runner = OnnxRunner(model_path, threads=1)
    factory = ImageReaderFactory(scene)
    request = ClassifyRequest(aoi=None, datetime=DATETIME)
    grid = factory.prepare_grid(request, runner.contract)
    reader = factory.open(request, grid, runner.contract)
    blocks = list(grid.blocks())[::step]
    pixels = [(block, reader.read(block)) for block in blocks]

    def one(item: tuple[Any, Any]) -> int:
        return int(infer_block(runner, grid, item[0], item[1], True).labels.size)

    one(pixels[0])  # session warm-up outside the timed part, as the service's session is reused
    start, cpu_start = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(workers) as pool:
        done = sum(pool.map(one, pixels))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "seconds": round(seconds, 3),
        "cpu_s": round(cpu, 3),
        "pixels": done,
        "blocks": len(blocks),
        "block_step": step,
        "mpx_s": round(done / 1e6 / seconds, 3),
        "mpx_cpu_s": round(done / 1e6 / cpu, 3),
    }


def runtimes_worker(model_path: Path, pickled: Path, scene: Path, n: int) -> dict[str, Any]:
    """``bench.runtimes.measure`` on the tutorial's SVM: ``n`` valid pixels from the scene's centre."""
    from bench.models import BenchModel
    from bench.runtimes import measure

    with gdal_env(), rasterio.open(scene) as src:
        side = min(src.height, src.width, math.ceil(math.sqrt(2 * n)))
        window = Window((src.width - side) // 2, (src.height - side) // 2, side, side)
        image = src.read(window=window)
        nodata = src.nodata
    pixels = image.reshape(image.shape[0], -1).T
    features = np.ascontiguousarray(pixels[valid_rows(pixels, nodata)][:n], dtype=np.float32)
    model = BenchModel("svm", model_path, pickled, stock_path(model_path))
    return {"scene": scene.name, **measure("svm", model, features)}


# ---------------------------------------------------------------------------------------------
# The runner side


def _entry(run: Measured, megapixels: float) -> dict[str, Any]:
    return {
        "wall_s": round(run.wall_s, 2),
        "cpu_s": round(run.cpu_s, 2),
        "mpx_s": round(megapixels / run.wall_s, 3),
        "peak_rss_mib": run.max_rss_mib,
    }


def measure_scene(
    label: str,
    scene: Path,
    model: tuple[Path, Path],
    work: Path,
    log: Any,
    peer_python: Path | None,
    with_tutorial: bool,
) -> dict[str, Any]:
    """A, C, B (if asked and memory allows) and P (if there is an environment) on one scene."""
    onnx_path, pickled = model
    with gdal_env(), rasterio.open(scene) as src:
        height, width = src.height, src.width
    mpx = height * width / 1e6
    out: dict[str, Any] = {"scene": label, "height": height, "width": width, "megapixels": round(mpx, 3)}
    maps: dict[str, Path] = {}
    log(f"  A: lulc classify on {label} ({width:,} x {height:,} px)")
    folder = work / f"service-{label}"
    command = [LULC, "classify", "--image", str(scene), "--model", str(onnx_path)]
    command += ["--datetime", DATETIME, "--out", str(folder)]
    service = run_measured(command, env={"TERM": "dumb", "COLUMNS": "100"}).check()
    out["service"] = _entry(service, mpx)
    maps["service"] = folder / "classes.tif"
    log(f"     {service.wall_s:.1f} s, {service.cpu_s:.1f} CPU s, {service.max_rss_mib:.0f} MiB")
    step = max(1, round(mpx / FLOOR_MPX))
    args = ["floor", "--model", str(onnx_path), "--scene", str(scene), "--step", str(step)]
    floor = run_measured(bench_worker("peers", *args)).check().result()
    out["floor"] = floor
    log(f"  C: inference alone {floor['mpx_s']} Mpx/s ({floor['mpx_cpu_s']} Mpx per CPU second)")
    need = TUTORIAL_BYTES_PER_PIXEL * height * width + 300 * 1024**2
    if not with_tutorial:
        out["tutorial_skipped"] = "not asked for at this size"
    elif need > MEMORY_SHARE * available_memory():
        out["tutorial_skipped"] = (
            f"would need ~{need / 1024**3:.1f} GiB, over {MEMORY_SHARE:.0%} of the free memory"
        )
    else:
        log(f"  B: tutorial workflow on {label}")
        target = work / f"tutorial-{label}.tif"
        args = ["tutorial", "--model", str(pickled), "--scene", str(scene), "--out", str(target)]
        tutorial = run_measured(bench_worker("peers", *args)).check()
        out["tutorial"] = {**_entry(tutorial, mpx), "timings": tutorial.result()["timings"]}
        maps["tutorial"] = target
        log(f"     {tutorial.wall_s:.1f} s, {tutorial.max_rss_mib:.0f} MiB")
    if peer_python is None or not with_tutorial:
        out["pyspatialml_skipped"] = (
            "not asked for at this size" if with_tutorial is False else "no environment"
        )
    else:
        log(f"  P: pyspatialml on {label}")
        target = work / f"pyspatialml-{label}.tif"
        target.unlink(missing_ok=True)
        command = [str(peer_python), "-c", PYSPATIALML_WORKER, str(pickled), str(scene), str(target)]
        peer = run_measured(command, env={"PYTHONPATH": ""}).check()
        out["pyspatialml"] = _entry(peer, mpx)
        maps["pyspatialml"] = target
        log(f"     {peer.wall_s:.1f} s, {peer.max_rss_mib:.0f} MiB")
    out["agreement"] = {
        f"service_vs_{name}": agreement(maps["service"], path)["agreement"]
        for name, path in maps.items()
        if name != "service"
    }
    wall = service.wall_s
    out["ratios"] = {
        "service_over_floor": ratio(out["service"]["mpx_s"], floor["mpx_s"]),
        "service_over_floor_cpu": ratio(mpx / service.cpu_s if service.cpu_s else None, floor["mpx_cpu_s"]),
        "tutorial_over_service": ratio(out.get("tutorial", {}).get("wall_s"), wall),
        "pyspatialml_over_service": ratio(out.get("pyspatialml", {}).get("wall_s"), wall),
        # CPU seconds: what a shared machine stretches least (A uses both cores, B and P one).
        "tutorial_over_service_cpu": ratio(out.get("tutorial", {}).get("cpu_s"), service.cpu_s),
        "pyspatialml_over_service_cpu": ratio(out.get("pyspatialml", {}).get("cpu_s"), service.cpu_s),
    }
    return out


def warm_up(model: tuple[Path, Path], work: Path, log: Any, peer_python: Path | None) -> None:
    """Run every approach's imports once, untimed, so that no measured process is the first to load them.

    The first process of a fresh installation compiles the modules it imports and writes their bytecode
    caches, and reads the libraries from disk: a one-off cost that would fall on whichever runs first.
    """
    log("  warm-up: lulc classify on the tutorial image, the workers' imports")
    command = [LULC, "classify", "--image", str(TUTORIAL / "s2image.tif"), "--model", str(model[0])]
    command += ["--datetime", DATETIME, "--out", str(work / "warm-up")]
    run_measured(command, env={"TERM": "dumb"}).check()
    imports = "import bench.peers, geopandas, onnxruntime, sklearn.svm, service.blocks, service.readers"
    run_measured([PYTHON, "-c", imports]).check()
    if peer_python is not None:
        run_measured(
            [str(peer_python), "-c", "import pyspatialml, sklearn.svm"], env={"PYTHONPATH": ""}
        ).check()


def _at_least(value: float | None, target: float) -> bool | None:
    return None if value is None else value >= target


def run(
    work: Path,
    log: Any,
    tiles: tuple[int, int] = TILES,
    full_size: int = FULL_TILE,
    pyspatialml: bool = True,
    full_peers: bool = True,
) -> dict[str, Any]:
    """Both scenes, every approach; the figures, ratios and targets of issue 14."""
    if not (TUTORIAL / "s2image.tif").is_file():
        raise FileNotFoundError(f"the tutorial scene is not at {TUTORIAL}")
    work.mkdir(parents=True, exist_ok=True)
    model = train_model(work / "model")
    result: dict[str, Any] = {"tiles": list(tiles), "full_size": full_size, "scenes": []}
    peer_python = None
    if pyspatialml:
        try:
            peer_python = pyspatialml_python(work / "pyspatialml-venv", log)
            result["pyspatialml_env"] = _versions(peer_python)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            result["pyspatialml_error"] = str(exc)
            log(f"  pyspatialml unavailable: {exc}")
    else:
        result["pyspatialml_skipped"] = "--no-pyspatialml"
    warm_up(model, work, log, peer_python)
    with gdal_env(), rasterio.open(TUTORIAL / "s2image.tif") as src:
        base_height, base_width = src.height, src.width
    rows, cols = tiles
    tiled_label = f"tutorial-{rows}x{cols}"
    tiled = make_scene(work / f"{tiled_label}.tif", rows * base_height, cols * base_width)
    full_label = f"tile-{full_size}"
    full = make_scene(work / f"{full_label}.tif", full_size, full_size)
    n = min(RUNTIME_PIXELS, rows * cols * base_height * base_width // 8)
    log(f"  runtimes: the tutorial's SVM per core, {n:,} px of {tiled_label}")
    args = ["runtimes", "--model", str(model[0]), "--sklearn", str(model[1]), "--scene", str(tiled)]
    result["runtimes"] = run_measured(bench_worker("peers", *args, "--pixels", str(n))).check().result()
    small = measure_scene(tiled_label, tiled, model, work, log, peer_python, True)
    large = measure_scene(full_label, full, model, work, log, peer_python if full_peers else None, full_peers)
    result["scenes"] = [small, large]
    result["marginal"] = marginal(small, large)
    result["targets"] = {
        "tiled_over_tutorial_ge_4": _at_least(small["ratios"]["tutorial_over_service"], TARGET_SPEEDUP),
        "tiled_over_pyspatialml_ge_4": _at_least(small["ratios"]["pyspatialml_over_service"], TARGET_SPEEDUP),
        "full_tile_lt_60s": large["service"]["wall_s"] < TARGET_FULL_SECONDS,
        "full_tile_rss_lt_1GiB": large["service"]["peak_rss_mib"] * 1024**2 < RSS_LIMIT,
        "end_to_end_ge_0.85": all(
            _at_least(s["ratios"]["service_over_floor"], TARGET_END_TO_END) for s in (small, large)
        ),
    }
    return result


def marginal(small: dict[str, Any], large: dict[str, Any]) -> dict[str, float | None]:
    """A's CPU seconds per extra megapixel from the smaller scene to the larger, and inference alone's.

    The fixed cost of a run (interpreter, imports, model, search, item) cancels out: what is left is what
    every further megapixel costs end to end, against what it costs to infer alone.
    """
    extra = large["megapixels"] - small["megapixels"]
    if extra <= 0:
        return {"service_cpu_s_per_mpx": None, "floor_cpu_s_per_mpx": None, "floor_over_service": None}
    service = (large["service"]["cpu_s"] - small["service"]["cpu_s"]) / extra
    floor = (small["floor"]["cpu_s"] + large["floor"]["cpu_s"]) / (
        (small["floor"]["pixels"] + large["floor"]["pixels"]) / 1e6
    )
    return {
        "service_cpu_s_per_mpx": round(service, 4),
        "floor_cpu_s_per_mpx": round(floor, 4),
        "floor_over_service": ratio(floor, service) if service > 0 else None,
    }


def _versions(python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in "
        "('pyspatialml', 'scikit-learn', 'numpy', 'rasterio')}))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120, check=True)
    versions: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return versions


def parse_tiles(text: str) -> tuple[int, int]:
    """``RxC`` (rows x columns of the tutorial image), e.g. ``7x12``."""
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLUMNS such as 7x12, got {text!r}") from None
    if rows < 1 or cols < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1x1, got {text!r}")
    return rows, cols


def main(argv: list[str] | None = None) -> None:
    """Workers (``tutorial``, ``floor``, ``runtimes``), or this part alone (``bench/run.py`` part)."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("tutorial", "floor", "runtimes"):
        parser = argparse.ArgumentParser()
        parser.add_argument("mode")
        parser.add_argument("--model", type=Path, required=True)
        parser.add_argument("--scene", type=Path, required=True)
        parser.add_argument("--out", type=Path)
        parser.add_argument("--sklearn", type=Path)
        parser.add_argument("--step", type=int, default=1)
        parser.add_argument("--pixels", type=int, default=RUNTIME_PIXELS)
        parser.add_argument("--workers", type=int, default=2)
        ns = parser.parse_args(args)
        if ns.mode == "tutorial":
            emit(tutorial_worker(ns.model, ns.scene, ns.out))
        elif ns.mode == "runtimes":
            emit(runtimes_worker(ns.model, ns.sklearn, ns.scene, ns.pixels))
        else:
            emit(floor_worker(ns.model, ns.scene, ns.step, ns.workers))
        return
    from bench import run as runner

    parser = argparse.ArgumentParser(
        description="Issue 14's side-by-side benchmark alone (bench/run.py's part)."
    )
    parser.add_argument("--size", type=int, default=FULL_TILE, help="Full-tile scene edge (default 10980).")
    parser.add_argument(
        "--tiles", default="7x12", help="Tutorial image repeated ROWSxCOLUMNS (default 7x12)."
    )
    parser.add_argument("--no-pyspatialml", action="store_true", help="Skip pyspatialml and its environment.")
    parser.add_argument(
        "--no-full-peers", action="store_true", help="Tutorial and pyspatialml on the tiled only."
    )
    ns, rest = parser.parse_known_args(args)
    forwarded = ["--parts=peers", f"--peer-size={ns.size}", f"--peer-tiles={ns.tiles}", *rest]
    if ns.no_pyspatialml:
        forwarded.append("--no-pyspatialml")
    if ns.no_full_peers:
        forwarded.append("--no-full-peers")
    sys.argv = ["bench/run.py", *forwarded]  # the command the results record: the one this is
    runner.main(forwarded)


def megapixels(tiles: tuple[int, int]) -> float:
    """Megapixels of the tutorial image tiled ``tiles`` times (763 x 406 px each)."""
    return math.prod(tiles) * 763 * 406 / 1e6


if __name__ == "__main__":
    main()
