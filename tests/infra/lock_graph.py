"""Resolved dependency sets per extra, read from ``uv.lock`` by walking its dependency graph."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.markers import Marker

PROJECT = "lulc-stac"

# The images' interpreter and platform: python:3.11 slim on linux/amd64.
IMAGE_ENVIRONMENT = {
    "python_version": "3.11",
    "python_full_version": "3.11.14",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@dataclass
class LockGraph:
    """Packages of a uv lock file, indexed by canonical name."""

    packages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> LockGraph:
        data = tomllib.loads(path.read_text())
        graph = cls()
        for package in data["package"]:
            graph.packages.setdefault(_canonical(package["name"]), []).append(package)
        return graph

    def _package(self, dep: dict[str, Any]) -> dict[str, Any]:
        candidates = self.packages[_canonical(dep["name"])]
        if "version" in dep:
            candidates = [p for p in candidates if p.get("version") == dep["version"]]
        if len(candidates) != 1:
            raise ValueError(f"lock entry {dep} matches {len(candidates)} packages")
        return candidates[0]

    def closure(self, extras: list[str], environment: dict[str, str] = IMAGE_ENVIRONMENT) -> set[str]:
        """Canonical names of every package ``lulc-stac[extras]`` installs in ``environment``."""
        seen: set[tuple[str, str, frozenset[str]]] = set()
        names: set[str] = set()
        stack: list[tuple[dict[str, Any], frozenset[str]]] = [
            (self._package({"name": PROJECT}), frozenset(extras))
        ]
        while stack:
            package, wanted = stack.pop()
            key = (_canonical(package["name"]), str(package.get("version")), wanted)
            if key in seen:
                continue
            seen.add(key)
            names.add(_canonical(package["name"]))
            deps = list(package.get("dependencies", []))
            optional = package.get("optional-dependencies", {})
            for extra in wanted:
                if extra not in optional:
                    raise ValueError(f"{package['name']} has no extra {extra!r} in the lock")
                deps.extend(optional[extra])
            for dep in deps:
                marker = dep.get("marker")
                if marker and not Marker(marker).evaluate(environment):
                    continue
                stack.append((self._package(dep), frozenset(dep.get("extra", []))))
        return names


def parse_requirements_export(text: str, environment: dict[str, str] = IMAGE_ENVIRONMENT) -> set[str]:
    """Canonical names in a ``uv export`` requirements file whose markers hold in ``environment``."""
    names: set[str] = set()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "-")):
            continue
        requirement, _, marker = line.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(environment):
            continue
        names.add(_canonical(requirement.split("==")[0].split("[")[0].strip()))
    return names
