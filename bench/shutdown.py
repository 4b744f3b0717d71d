"""What a ``lulc`` command costs after its work is done: the exit, with and without collecting the heap.

Python's finalisation runs the cyclic garbage collector over every object alive at exit, and a ``lulc
classify`` holds some 90,000 from its imports. ``lulc.cli`` freezes the heap when the command returns
(``gc.freeze``), so finalisation skips them. This script runs the same ``lulc`` command line in turns as
shipped (``frozen``) and with the heap handed back to the collector in the last ``atexit`` handler
(``collected``: the exit as it was), each in its own process, and reports per mode the median wall time
from the last ``atexit`` handler to the process's end (``exit_s``), of the whole run (``wall_s``) and its CPU
seconds (``cpu_s``), with the machine.

``python -m bench.shutdown --repeats 5 --out DIR -- classify --image scene.tif --model m.onnx ...``: each run
gets ``--out DIR/<mode>-<i>`` appended.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import machine_info

MODES = ("frozen", "collected")

CHILD = """
import atexit, gc, os, sys, time

def _last():
    if os.environ["LULC_BENCH_EXIT"] == "collected":
        gc.unfreeze()
    sys.stderr.write(f"\\nbench-exit {time.time():.6f}\\n")
    sys.stderr.flush()

atexit.register(_last)  # registered first: runs last
from lulc.cli import main

sys.argv[0] = "lulc"
main()
"""


def run_once(mode: str, arguments: list[str]) -> dict[str, float]:
    """One run of ``lulc ARGUMENTS``: seconds from the last ``atexit`` handler to the end, wall and CPU."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *arguments],
        env={**os.environ, "LULC_BENCH_EXIT": mode},
        capture_output=True,
        text=True,
        check=False,
    )
    end = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"lulc {' '.join(arguments)} failed ({done.returncode}): {done.stderr[-2000:]}")
    marks = [line for line in done.stderr.splitlines() if line.startswith("bench-exit ")]
    last = float(marks[-1].split()[1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"exit_s": end - last, "wall_s": end - start, "cpu_s": cpu}


def run(arguments: list[str], repeats: int, out: Path) -> dict[str, Any]:
    """Both modes in turns, ``repeats`` times each; medians per mode and their differences."""
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for i in range(repeats):
        for mode in MODES if i % 2 == 0 else MODES[::-1]:
            runs[mode].append(run_once(mode, [*arguments, "--out", str(out / f"{mode}-{i}")]))
    medians = {
        mode: {key: round(statistics.median(r[key] for r in runs[mode]), 3) for key in runs[mode][0]}
        for mode in MODES
    }
    saved = {key: round(medians["collected"][key] - medians["frozen"][key], 3) for key in medians["frozen"]}
    machine = machine_info()
    return {"arguments": arguments, "repeats": repeats, "median": medians, "saved": saved, "machine": machine}


def main() -> None:
    """Command line: ``python -m bench.shutdown [--repeats N] --out DIR -- <lulc arguments>``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=5, help="runs per mode (default 5)")
    parser.add_argument("--out", type=Path, required=True, help="the runs' outputs (a new folder)")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="after --: the lulc command line")
    ns = parser.parse_args()
    arguments = ns.arguments[1:] if ns.arguments[:1] == ["--"] else ns.arguments
    ns.out.mkdir(parents=True)
    sys.stdout.write(json.dumps(run(arguments, ns.repeats, ns.out)) + "\n")


if __name__ == "__main__":
    main()
