"""Read or bump the model versions a Kustomize overlay deploys (``<overlay>/models.yaml``).

``models.yaml`` holds two strategic-merge patches that must agree: the ``lulc-models`` ConfigMap's
``MODEL_VERSIONS`` (``name=version,...``, read by the init container that fetches the models) and the
``lulc-stac/models`` annotation of the service's pod template (so that a bump rolls the pods).

    model_pointer.py get OVERLAY NAME             -> the deployed version of NAME (``none`` if none)
    model_pointer.py list OVERLAY                 -> ``NAME VERSION`` of every deployed model, a line each
    model_pointer.py set OVERLAY NAME VERSION     -> deploy VERSION of NAME in OVERLAY
    model_pointer.py version MODEL_JSON           -> the version in a trained model's MLM item
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

POINTER_FILE = "models.yaml"
ANNOTATION = "lulc-stac/models"
NONE = "none"
_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def parse_versions(text: str) -> dict[str, str]:
    """``{"demo": "abc"}`` from ``"demo=abc"``; raises ValueError on malformed text."""
    versions: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, version = pair.partition("=")
        if not sep or not _TOKEN.match(name) or not _TOKEN.match(version):
            raise ValueError(f"malformed model version pair {pair!r} (expected name=version)")
        versions[name] = version
    return versions


def format_versions(versions: dict[str, str]) -> str:
    """The inverse of ``parse_versions``, sorted by name."""
    return ",".join(f"{name}={versions[name]}" for name in sorted(versions))


def _documents(overlay: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((overlay / POINTER_FILE).read_text()) if d]
    configmaps = [d for d in docs if d.get("kind") == "ConfigMap"]
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    if len(configmaps) != 1 or len(deployments) != 1:
        raise ValueError(f"{overlay / POINTER_FILE} must hold one ConfigMap and one Deployment patch")
    return configmaps[0], deployments[0]


def deployed(overlay: Path) -> dict[str, str]:
    """The model versions ``overlay`` deploys, checking that both patches agree."""
    configmap, deployment = _documents(overlay)
    from_configmap = parse_versions(configmap["data"]["MODEL_VERSIONS"])
    annotation = deployment["spec"]["template"]["metadata"]["annotations"][ANNOTATION]
    if parse_versions(annotation) != from_configmap:
        raise ValueError(f"{overlay / POINTER_FILE}: ConfigMap and pod annotation disagree")
    return from_configmap


def set_version(overlay: Path, name: str, version: str) -> None:
    """Deploy ``version`` of model ``name`` in ``overlay`` (both patches, atomically)."""
    if not _TOKEN.match(name) or not _TOKEN.match(version):
        raise ValueError(f"invalid model name or version: {name!r} {version!r}")
    versions = deployed(overlay)
    versions[name] = version
    text = format_versions(versions)
    configmap, deployment = _documents(overlay)
    configmap["data"]["MODEL_VERSIONS"] = text
    deployment["spec"]["template"]["metadata"]["annotations"][ANNOTATION] = text
    path = overlay / POINTER_FILE
    header = "".join(line + "\n" for line in path.read_text().splitlines() if line.startswith("#"))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(header + yaml.safe_dump_all([configmap, deployment], sort_keys=False))
    tmp.replace(path)


def model_version(model_json: Path) -> str:
    """The version recorded in a trained model's MLM STAC item (``properties.version``)."""
    item = json.loads(model_json.read_text())
    version = str(item.get("properties", {}).get("version", ""))
    if not _TOKEN.match(version):
        raise ValueError(f"{model_json} has no usable properties.version ({version!r})")
    return version


def main(argv: list[str]) -> int:
    """Dispatch the ``get`` / ``list`` / ``set`` / ``version`` subcommands."""
    if len(argv) == 3 and argv[0] == "get":
        print(deployed(Path(argv[1])).get(argv[2], NONE))
    elif len(argv) == 4 and argv[0] == "set":
        set_version(Path(argv[1]), argv[2], argv[3])
    elif len(argv) == 2 and argv[0] == "list":
        for name, version in sorted(deployed(Path(argv[1])).items()):
            if version != NONE:
                print(name, version)
    elif len(argv) == 2 and argv[0] == "version":
        print(model_version(Path(argv[1])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
