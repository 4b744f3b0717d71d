"""Shared libraries an environment's native code needs from the system, read with binutils' ``readelf``.

For every ELF file in a folder (a venv, an image's site-packages): its ``NEEDED`` sonames, minus those
the environment itself provides, i.e. found on the object's ``RPATH``/``RUNPATH`` (``$ORIGIN`` expanded:
auditwheel points it at the wheel's ``<dist>.libs`` folder) or being the file name or ``SONAME`` of
another ELF file in the folder (the dynamic loader reuses a library already loaded under that soname,
e.g. pyarrow's plugins and ``libarrow``). What remains must come from the image's system libraries.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
_ENTRY = re.compile(r"\((NEEDED|SONAME|RPATH|RUNPATH)\)\s+[^\[]*\[(.*)\]")


@dataclass
class Dynamic:
    """The parts of one ELF file's dynamic section that decide where its libraries come from."""

    needed: list[str] = field(default_factory=list)
    soname: str | None = None
    search: list[str] = field(default_factory=list)
    """RPATH and RUNPATH entries, unexpanded."""


def readelf() -> str | None:
    """Path of binutils' readelf, or None."""
    return shutil.which("readelf")


def _is_elf(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(4) == ELF_MAGIC


def elf_files(root: Path) -> Iterator[Path]:
    """Regular files under ``root`` starting with the ELF magic; symlinks are not followed."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if _is_elf(path):
                yield path


def dynamic_sections(paths: Iterable[Path], tool: str, batch: int = 64) -> dict[Path, Dynamic]:
    """``readelf -d`` of each file (in batches; readelf names each file when it reads several)."""
    out: dict[Path, Dynamic] = {}
    pending = list(paths)
    for start in range(0, len(pending), batch):
        chunk = pending[start : start + batch]
        result = subprocess.run(
            [tool, "--dynamic", "--wide", *map(str, chunk)], capture_output=True, text=True, check=False
        )
        current: Path | None = chunk[0] if len(chunk) == 1 else None
        for line in result.stdout.splitlines():
            if line.startswith("File: "):
                current = Path(line[len("File: ") :].strip())
                continue
            match = _ENTRY.search(line)
            if match is None or current is None:
                continue
            entry = out.setdefault(current, Dynamic())
            kind, value = match.groups()
            if kind == "NEEDED":
                entry.needed.append(value)
            elif kind == "SONAME":
                entry.soname = value
            else:
                entry.search.extend(part for part in value.split(":") if part)
    return out


def _search_dirs(path: Path, entries: list[str]) -> list[Path]:
    origin = str(path.parent)
    return [Path(e.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)) for e in entries]


def system_needs(files: Iterable[Path], tool: str) -> dict[str, list[Path]]:
    """Sonames needed by the ELF ``files`` (one environment's) that none of them provides -> who needs them.

    ``files`` that are not ELF files are left out.
    """
    files = sorted(path for path in files if _is_elf(path))
    sections = dynamic_sections(files, tool)
    bundled = {path.name for path in files} | {d.soname for d in sections.values() if d.soname}
    needs: dict[str, list[Path]] = {}
    for path, dynamic in sections.items():
        dirs = _search_dirs(path, dynamic.search)
        for soname in dynamic.needed:
            if soname in bundled or any((folder / soname).is_file() for folder in dirs):
                continue
            needs.setdefault(soname, []).append(path)
    return needs


# What python:3.11.x-slim-bookworm gives a wheel's native code without any `apt-get install`, by Debian
# package. Kept minimal: only libraries the image is known to hold, each for the reason given.
# debian:bookworm-slim (the image's base) holds these because its required tools link them:
#   libc6       glibc itself (every ELF file; manylinux wheels may use these glibc libraries, PEP 600)
#   libgcc-s1   libgcc_s (libc6 and libstdc++6 depend on it)
#   libstdc++6  the C++ runtime (apt is C++)
#   zlib1g      libz (dpkg links it)
# docker-library/python's slim Dockerfile builds CPython, then keeps (apt-mark manual) the package of
# every library its own binaries and extension modules link to (ldd over /usr/local, tkinter excluded):
#   libssl3 (_ssl, _hashlib), libffi8 (_ctypes), libsqlite3-0 (_sqlite3), libbz2-1.0 (_bz2),
#   liblzma5 (_lzma), libncursesw6 + libtinfo6 (_curses), libreadline8 (readline), libuuid1 (_uuid).
# NOT libexpat1: since docker-library/python#984 (October 2024) CPython is built with its bundled expat
# (no --with-system-expat), so nothing keeps libexpat1 and the slim images no longer have it.
BASE_SONAMES: dict[str, frozenset[str]] = {
    "libc6": frozenset(
        {
            "libc.so.6",
            "libm.so.6",
            "libpthread.so.0",
            "libdl.so.2",
            "librt.so.1",
            "libresolv.so.2",
            "libutil.so.1",
            "ld-linux-x86-64.so.2",
        }
    ),
    "libgcc-s1": frozenset({"libgcc_s.so.1"}),
    "libstdc++6": frozenset({"libstdc++.so.6"}),
    "zlib1g": frozenset({"libz.so.1"}),
    "libssl3": frozenset({"libssl.so.3", "libcrypto.so.3"}),
    "libffi8": frozenset({"libffi.so.8"}),
    "libsqlite3-0": frozenset({"libsqlite3.so.0"}),
    "libbz2-1.0": frozenset({"libbz2.so.1.0"}),
    "liblzma5": frozenset({"liblzma.so.5"}),
    "libncursesw6": frozenset({"libncursesw.so.6"}),
    "libtinfo6": frozenset({"libtinfo.so.6"}),
    "libreadline8": frozenset({"libreadline.so.8"}),
    "libuuid1": frozenset({"libuuid.so.1"}),
}

# Sonames of the Debian bookworm (amd64) packages an image's runtime stage may apt-get install
# (`dpkg -L <package>` on bookworm; test_image_envs.py checks this table against dpkg where it can).
APT_SONAMES: dict[str, frozenset[str]] = {
    "libexpat1": frozenset({"libexpat.so.1", "libexpatw.so.1"}),
    "libgomp1": frozenset({"libgomp.so.1"}),
}


def image_sonames(apt_packages: Iterable[str]) -> set[str]:
    """Sonames of the base image plus those of ``apt_packages`` (each must be in APT_SONAMES)."""
    provided = set().union(*BASE_SONAMES.values())
    for package in apt_packages:
        if package not in APT_SONAMES:
            raise KeyError(f"{package}: add its sonames (dpkg -L {package} on bookworm) to APT_SONAMES")
        provided |= APT_SONAMES[package]
    return provided


def dpkg_sonames(package: str) -> set[str] | None:
    """File names of the shared libraries ``dpkg -L package`` lists on this host; None if not installed."""
    dpkg = shutil.which("dpkg")
    if dpkg is None:
        return None
    result = subprocess.run([dpkg, "-L", package], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    return {Path(line).name for line in result.stdout.splitlines() if re.search(r"/[^/]+\.so(\.\d+)+$", line)}
