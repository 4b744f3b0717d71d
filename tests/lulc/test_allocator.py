"""The malloc arena cap of ``lulc`` processes, observed in glibc's own account of its heaps."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="malloc arenas are glibc's (this is not a glibc Linux)",
)

PROBE = """
import ctypes, sys, threading
from lulc.allocator import limit_arenas

capped = limit_arenas()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
together = threading.Barrier(8)

def allocate():
    libc.malloc(4096)  # this thread's first allocations take an arena of their own, up to the cap
    together.wait()  # all alive at once: none hands its arena on to the next

threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
report = sys.argv[1].encode()
fp = libc.fopen(report, b"w")
libc.malloc_info(0, fp)
libc.fclose(fp)
print(capped, open(report).read().count("<heap nr="))
"""


def _probe(tmp_path: Path, **env: str) -> tuple[str, int]:
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "malloc.xml")],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    capped, heaps = done.stdout.split()
    return capped, int(heaps)


def test_a_lulc_process_keeps_two_arenas(tmp_path: Path) -> None:
    assert _probe(tmp_path) == ("True", 2)


def test_malloc_arena_max_in_the_environment_decides(tmp_path: Path) -> None:
    capped, heaps = _probe(tmp_path, MALLOC_ARENA_MAX="6")
    assert capped == "False"
    assert heaps == 6  # control: without a cap, eight threads take more arenas than two
