"""What decoding a scene costs alone: GDAL's read of every 512 px window, no masking and no scaling.

The floor under ``bench.cpu_split``'s ``read`` step: ``python -m bench.decode SCENE.tif`` prints the best of
three CPU times (``time.thread_time``; GDAL decodes in the calling thread here) as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import rasterio
from rasterio.windows import Window

BLOCK = 512


def decode_cpu_seconds(path: str, repeats: int = 3) -> float:
    """The least CPU time of ``repeats`` reads of every ``BLOCK`` px window of ``path``."""
    best = float("inf")
    for _ in range(repeats):
        with rasterio.open(path) as src:
            start = time.thread_time()
            for top in range(0, src.height, BLOCK):
                for left in range(0, src.width, BLOCK):
                    width, height = min(BLOCK, src.width - left), min(BLOCK, src.height - top)
                    src.read(window=Window(left, top, width, height))
            best = min(best, time.thread_time() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.decode SCENE [--repeats N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene")
    parser.add_argument("--repeats", type=int, default=3)
    ns = parser.parse_args(argv)
    seconds = decode_cpu_seconds(ns.scene, ns.repeats)
    print(json.dumps({"scene": ns.scene, "decode_cpu_s_best": round(seconds, 3), "repeats": ns.repeats}))


if __name__ == "__main__":
    main()
