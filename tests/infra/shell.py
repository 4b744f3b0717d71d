"""Run the shell scripts of infra's containers here, with stand-ins for `aws` and `lulc` (no cluster, no S3).

A container's script runs with its own shell (``command``), the environment its ``envFrom`` ConfigMaps and
literal ``env`` values give it, and its absolute volume paths (``/models/``, ``/work/``) moved under a
temporary folder. The model store is a local folder standing in for ``s3://...``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

FAKE_AWS = '''#!{python}
"""Stand-in for `aws s3 cp [--only-show-errors] [--recursive] [--exclude PATTERN] SRC DST`.

Local paths play s3:// URLs. It behaves as the real CLI does where infra's scripts depend on it: a
recursive copy of a prefix holding nothing copies nothing and exits 0; copying a missing object exits 1.
A destination under s3:// is only logged. Every call is logged (argv, AWS_ENDPOINT_URL) to $FAKE_AWS_LOG.
"""
import fnmatch, json, os, shutil, sys

args = sys.argv[1:]
with open(os.environ["FAKE_AWS_LOG"], "a") as log:
    log.write(json.dumps({{"argv": args, "endpoint": os.environ.get("AWS_ENDPOINT_URL")}}) + "\\n")
if args[:2] != ["s3", "cp"]:
    sys.exit("fake aws: only `s3 cp` is emulated")
positional, excludes, rest = [], [], iter(args[2:])
for arg in rest:
    if arg == "--exclude":
        excludes.append(next(rest))
    elif not arg.startswith("--"):
        positional.append(arg)
src, dst = positional
if "--recursive" in args:
    if os.path.isdir(src) and not dst.startswith("s3://"):
        ignore = lambda folder, names: [n for n in names if any(fnmatch.fnmatch(n, p) for p in excludes)]
        shutil.copytree(src, dst, dirs_exist_ok=True, ignore=ignore)
    sys.exit(0)
if not os.path.isfile(src):
    sys.exit(f"fatal error: An error occurred (404) when calling the HeadObject operation: {{src}}")
if not dst.startswith("s3://"):
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    shutil.copyfile(src, dst)
'''

FAKE_LULC = '''#!{python}
"""Stand-in for `lulc`: appends its argv, as a JSON list, to $FAKE_LULC_LOG."""
import json, os, sys

with open(os.environ["FAKE_LULC_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
'''


def configmap_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """What ``container`` gets from its ``envFrom`` ConfigMaps (among ``docs``) and literal ``env`` values."""
    maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    env.update({e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e})
    return env


class Sandbox:
    """A temporary root with ``models/``, ``work/``, a model ``store/`` and the stand-in commands."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = root / "store"
        self.bin = root / "bin"
        for folder in (self.store, self.bin, root / "models", root / "work", root / "home"):
            folder.mkdir(parents=True, exist_ok=True)
        for name, text in {"aws": FAKE_AWS, "lulc": FAKE_LULC}.items():
            tool = self.bin / name
            tool.write_text(text.format(python=sys.executable))
            tool.chmod(0o755)

    def publish(self, name: str, version: str) -> Path:
        """A complete model version in the store (model.json, the MLM item, among its files)."""
        folder = self.store / name / version
        folder.mkdir(parents=True)
        for file in ("model.onnx", "metrics.json", "model.json"):
            (folder / file).write_text("{}")
        return folder

    def run(self, container: dict[str, Any], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """Run ``container``'s script with ``env`` (MODEL_STORE pointed at the store folder)."""
        script = str(container["args"][0])
        script = script.replace("/models/", f"{self.root}/models/").replace("/work/", f"{self.root}/work/")
        full_env = {
            **env,
            "MODEL_STORE": str(self.store),
            "HOME": str(self.root / "home"),
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "FAKE_AWS_LOG": str(self.root / "aws.log"),
            "FAKE_LULC_LOG": str(self.root / "lulc.log"),
        }
        return subprocess.run(
            [*container["command"], script],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def calls(self, tool: str) -> list[Any]:
        """What the stand-in ``tool`` (``aws`` or ``lulc``) was called with, in order."""
        log = self.root / f"{tool}.log"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
