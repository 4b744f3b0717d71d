"""Scale-out: ``lulc classify`` on 1 vs 2 Dask workers (``--dask-scheduler local:N``) and threaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.classify import run_service
from bench.models import BenchModel
from bench.scene import Scene


def run(scene: Scene, model: BenchModel, base_url: str, work: Path, log: Any) -> dict[str, Any]:
    """Wall time, throughput and peak RSS (client process) of each configuration on the same scene."""
    stac_url = f"{base_url}/items.json"
    runs: dict[str, dict[str, Any]] = {}
    for label, extra in (
        ("dask_local_1", ["--dask-scheduler", "local:1"]),
        ("dask_local_2", ["--dask-scheduler", "local:2"]),
        ("threaded_2_workers", ["--workers", "2"]),
    ):
        log(f"  {label}: lulc classify {model.name} on {scene.size} x {scene.size} px")
        measured = run_service(scene, model, stac_url, work / f"scaleout-{label}", extra)
        runs[label] = {
            "wall_s": round(measured.wall_s, 2),
            "mpx_s": round(scene.megapixels / measured.wall_s, 3),
            "client_peak_rss_mib": measured.max_rss_mib,
        }
        log(f"     {measured.wall_s:.1f} s")
    one, two = runs["dask_local_1"]["mpx_s"], runs["dask_local_2"]["mpx_s"]
    identical = _same_bytes(
        work / "scaleout-dask_local_1" / "classes.tif", work / "scaleout-dask_local_2" / "classes.tif"
    ) and _same_bytes(
        work / "scaleout-dask_local_1" / "classes.tif", work / "scaleout-threaded_2_workers" / "classes.tif"
    )
    return {
        "model": model.name,
        "scene_size": scene.size,
        "megapixels": scene.megapixels,
        "runs": runs,
        "speedup_2_over_1_workers": round(two / one, 3) if one else None,
        "outputs_byte_identical": identical,
    }


def _same_bytes(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()
