"""Shared benchmark helpers: the machine, measured subprocesses (wall time, own peak RSS), the file server."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
LIBRARIES = (
    "numpy",
    "rasterio",
    "onnxruntime",
    "scikit-learn",
    "skl2onnx",
    "dask",
    "distributed",
    "titiler.core",
    "uvicorn",
    "starlette",
)
MIB = 1024 * 1024


def utc_now() -> str:
    """The time of a run's start or end as its JSON keeps it (``started``, ``finished``)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python and library versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))} ({platform.release()})"
    except OSError:
        pass
    import rasterio

    versions = {"GDAL": str(rasterio.__gdal_version__)}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(ram / 1024**3, 1),
        "os": os_name,
        "python": platform.python_version(),
        "libraries": versions,
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def available_memory() -> int:
    """``MemAvailable`` of this machine, bytes (0 where unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class Measured:
    """One measured subprocess: wall time, its own peak RSS, exit code, output tails, parsed JSON result."""

    command: list[str]
    wall_s: float
    max_rss_bytes: int
    returncode: int
    stdout: str
    stderr: str
    cpu_s: float = 0.0
    """User + system CPU time of the process (all its threads), from ``wait4``: on a shared machine it is
    stretched much less than the wall time by other processes."""

    @property
    def max_rss_mib(self) -> float:
        """Peak RSS in MiB."""
        return round(self.max_rss_bytes / MIB, 1)

    def check(self) -> Measured:
        """Raise with the stderr tail unless the process succeeded."""
        if self.returncode != 0:
            raise RuntimeError(
                f"{' '.join(self.command[:6])} ... exited {self.returncode}:\n{self.stderr[-3000:]}"
            )
        return self

    def result(self) -> dict[str, Any]:
        """The JSON object the process printed on its last stdout line (bench worker protocol)."""
        lines = [line for line in self.stdout.splitlines() if line.strip().startswith("{")]
        if not lines:
            raise RuntimeError(f"no JSON result from {' '.join(self.command[:6])}:\n{self.stdout[-2000:]}")
        parsed: dict[str, Any] = json.loads(lines[-1])
        return parsed


def _vm_hwm(pid: int) -> int:
    """``VmHWM`` (peak resident set since its last exec) of a live process, bytes; 0 once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def run_measured(
    command: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    logs: Path | None = None,
) -> Measured:
    """Run ``command`` and measure it: wall time and the peak RSS of that process alone.

    The peak is the child's own ``VmHWM`` (the kernel's high-water mark of its address space since
    ``exec``), polled every 10 ms while it runs. Not ``ru_maxrss``: through ``vfork`` + ``exec`` a child's
    ``ru_maxrss`` starts at the *parent's* high-water mark, so it would report this runner's peak.
    """
    logs = logs or Path(os.environ.get("TMPDIR", "/tmp"))
    logs.mkdir(parents=True, exist_ok=True)
    stamp = f"{os.getpid()}-{time.monotonic_ns()}"
    out_path, err_path = logs / f"bench-{stamp}.out", logs / f"bench-{stamp}.err"
    full_env = dict(os.environ)
    # As a normal installation does, the measured processes keep Python's bytecode caches: without them
    # (PYTHONDONTWRITEBYTECODE, set on some shared machines) every process compiles each module it imports
    # from source, seconds of CPU at every start that no user pays twice.
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join([str(REPO), full_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    peak = 0
    cpu = 0.0
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(command), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=full_env, cwd=cwd or REPO
        )
        deadline = None if timeout is None else start + timeout
        while True:
            peak = max(peak, _vm_hwm(process.pid))  # read before reaping: a reaped pid has no /proc entry
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid == process.pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - start
        cpu = usage.ru_utime + usage.ru_stime
    process.returncode = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    out_path.unlink(missing_ok=True)
    err_path.unlink(missing_ok=True)
    return Measured(
        command=list(command),
        wall_s=wall,
        max_rss_bytes=peak,
        returncode=process.returncode,
        stdout=stdout,
        stderr=stderr,
        cpu_s=cpu,
    )


def bench_worker(module: str, *args: str) -> list[str]:
    """The command line of a benchmark worker: ``python -m bench.<module> <args>`` (a fresh process)."""
    return [PYTHON, "-m", f"bench.{module}", *args]


def emit(result: dict[str, Any]) -> None:
    """Print a worker's result as one JSON line (read back by ``Measured.result``)."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def own_peak_rss() -> int:
    """This process's peak RSS so far, bytes."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def start_http_server(directory: Path) -> Any:
    """A loopback HTTP server over ``directory`` (own process, Range -> 206, request log at the server).

    This is the test suite's server (``tests.support.http_server``): Starlette ``StaticFiles`` under
    uvicorn, with a request log the benchmark reads to count HTTP requests. Close it with ``.close()``.
    """
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.support.http_server import start_http_server as start

    return start(directory)


@contextmanager
def file_server(directory: Path) -> Iterator[Any]:
    """``start_http_server`` as a context manager."""
    server = start_http_server(directory)
    try:
        yield server
    finally:
        server.close()


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` rounded to 3 decimals, None if either is missing or zero."""
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 3)
