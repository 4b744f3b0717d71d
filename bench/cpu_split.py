"""Where the CPU of one ``lulc classify`` goes: CPU seconds per step, measured in the running process.

Issue 14 asks for end to end at 0.85 of inference alone. With both cores busy inferring, every CPU second
spent on anything else (decoding the input, writing the maps, the COG step, start-up) lengthens the run by
about half a second, so the question is how many there are. This script runs ``lulc classify`` in its own
process (the command line's ``main``, with the arguments given after ``--``) and wraps the steps below so
each adds the CPU time of the thread that ran it (``time.thread_time``: reader, inference and writer threads
alike) to its line; steps nested in another are listed under it with a ``  `` indent and are part of it.

- ``read``: a block's pixels from the input (decoding, masks, scaling: ``BlockReader.read``);
- ``infer``: a block's inference as ``bench.peers``' "inference alone" times it (``infer_block``), and in it
  ``onnx`` (the runner: ONNX Runtime and the label rule), ``features`` and ``labels`` (the rule alone);
- ``write``: the blocks written into the staging maps with their overview levels (``BlockSink.write``), and
  in it ``levels``;
- ``cogs``: the COG step after the last block (``finish_cogs``; the process's CPU time meanwhile, since
  GDAL compresses on threads of its own);
- ``item``: the STAC item with its checksums.

``rest`` is the process's CPU time minus ``read``, ``infer``, ``write``, ``cogs`` and ``item``: imports,
model loading, thread hand-offs. ``python -m bench.cpu_split -- --image scene.tif --model m.onnx --out o``
prints one JSON line (and, with ``--table``, a Markdown table).
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import sys
import threading
import time
from collections import defaultdict
from typing import Any

STEPS: tuple[tuple[str, str, str, int], ...] = (
    ("lulc.pixels.image", "ImageBlockReader.read", "read", 0),
    ("lulc.pixels.stac", "StacBlockReader.read", "read", 0),
    ("service.blocks", "infer_block", "infer", 0),
    ("service.runner", "OnnxRunner.predict", "onnx", 1),
    ("service.runner", "decide_labels", "labels", 2),
    ("service.blocks", "block_features", "features", 1),
    ("service.output", "BlockSink.write", "write", 0),
    ("lulc.cog", "OverviewLevels.add", "levels", 1),
    ("service.engine", "finish_cogs", "cogs", 0),
    ("service.engine", "build_item", "item", 0),
)
PROCESS_CLOCK = {"cogs"}
"""Steps timed by the whole process's CPU time: the COG step runs after the last block, alone, and GDAL
compresses its tiles on threads of its own, which the calling thread's clock does not see."""
TOP = ("read", "infer", "write", "cogs", "item")


def instrument() -> tuple[defaultdict[str, float], dict[str, int]]:
    """Wrap every step (a module attribute or a class method) to add its thread's CPU time to a counter."""
    import importlib

    spent: defaultdict[str, float] = defaultdict(float)
    depth: dict[str, int] = {}
    lock = threading.Lock()
    for module_name, path, label, level in STEPS:
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original = getattr(owner, name)

        clock = _process_cpu if label in PROCESS_CLOCK else time.thread_time

        def timed(
            *args: Any, _original: Any = original, _label: str = label, _clock: Any = clock, **kwargs: Any
        ) -> Any:
            start = _clock()
            try:
                return _original(*args, **kwargs)
            finally:
                with lock:
                    spent[_label] += _clock() - start

        setattr(owner, name, functools.wraps(original)(timed))
        depth[label] = level
    return spent, depth


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(arguments: list[str]) -> dict[str, Any]:
    """``lulc classify ARGUMENTS`` in this process, and the CPU seconds of each step."""
    start_wall = time.perf_counter()
    spent, depth = instrument()
    from lulc.cli import main

    sys.argv = ["lulc", "classify", *arguments]
    try:
        main()
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise
    total = _process_cpu()
    steps = {label: round(spent[label], 4) for label in depth}
    steps["rest"] = round(total - sum(spent[label] for label in TOP), 4)
    return {
        "arguments": arguments,
        "wall_s": round(time.perf_counter() - start_wall, 2),
        "cpu_s": round(total, 2),
        "steps": steps,
        "depth": {**depth, "rest": 0},
    }


def table(result: dict[str, Any]) -> str:
    """The steps as a Markdown table: CPU seconds and share of the process's CPU time."""
    lines = ["| step | CPU s | share |", "|---|---|---|"]
    for label, seconds in result["steps"].items():
        indent = "&nbsp;&nbsp;" * result["depth"][label]
        lines.append(f"| {indent}{label} | {seconds:.2f} | {100 * seconds / result['cpu_s']:.0f} % |")
    lines.append(f"| **process** (wall {result['wall_s']:.2f} s) | {result['cpu_s']:.2f} | 100 % |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Command line: ``python -m bench.cpu_split [--table] -- <lulc classify arguments>``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--table", action="store_true", help="also print a Markdown table (to stderr)")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="after --: lulc classify's arguments")
    ns = parser.parse_args()
    arguments = ns.arguments[1:] if ns.arguments[:1] == ["--"] else ns.arguments
    result = run(arguments)
    if ns.table:
        sys.stderr.write(table(result))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
