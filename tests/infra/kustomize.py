"""A small, strict Kustomize renderer for the features our overlays use (no kustomize binary offline).

Supported: ``resources`` (files and directories with a kustomization.yaml), ``namespace``, ``images``
(name -> newName / newTag / digest, in every containers / initContainers list), and ``patches`` with
``path:`` strategic-merge patches (target = the patch's kind + metadata.name; maps merge recursively,
lists of named maps merge by ``name``, other lists and scalars replace). Any other kustomization field,
or a patch that matches no resource, is an error: the overlays may only use what is rendered honestly.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


class KustomizeError(Exception):
    """The kustomization uses something this renderer does not support, or a patch misses."""


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge of ``patch`` into ``base`` for maps and lists of named maps."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    named = lambda items: all(isinstance(i, dict) and "name" in i for i in items)  # noqa: E731
    if isinstance(base, list) and isinstance(patch, list) and base and named(base) and named(patch):
        out_list = [copy.deepcopy(i) for i in base]
        index = {item["name"]: n for n, item in enumerate(out_list)}
        for item in patch:
            if item["name"] in index:
                out_list[index[item["name"]]] = merge(out_list[index[item["name"]]], item)
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(patch)


def _containers(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"containers", "initContainers"} and isinstance(value, list):
                found.extend(c for c in value if isinstance(c, dict))
            else:
                found.extend(_containers(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_containers(value))
    return found


def _image_name(image: str) -> str:
    """``registry/repo`` of ``registry/repo:tag`` or ``registry/repo@sha256:...``."""
    image = image.split("@")[0]
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


def _set_image(doc: dict[str, Any], rule: dict[str, Any]) -> None:
    for container in _containers(doc):
        image = container.get("image", "")
        name = _image_name(image)
        if name != rule["name"]:
            continue
        new_name = rule.get("newName", name)
        if "digest" in rule:
            container["image"] = f"{new_name}@{rule['digest']}"
        else:
            tag = rule.get("newTag", image[len(name) + 1 :] if image != name else "")
            container["image"] = f"{new_name}:{tag}" if tag else new_name


def render(directory: Path) -> list[dict[str, Any]]:
    """The resources ``kustomize build directory`` would output (for the supported subset)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{directory}: unsupported kustomization fields {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        target = (directory / entry).resolve()
        docs.extend(render(target) if target.is_dir() else _load_all(target))
    for patch_entry in kustomization.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise KustomizeError(f"{directory}: only `path:` strategic-merge patches are supported")
        for patch in _load_all(directory / patch_entry["path"]):
            key = (patch["kind"], patch["metadata"]["name"])
            hits = [n for n, doc in enumerate(docs) if (doc["kind"], doc["metadata"]["name"]) == key]
            if len(hits) != 1:
                raise KustomizeError(f"{directory}/{patch_entry['path']}: patch {key} matches {len(hits)}")
            docs[hits[0]] = merge(docs[hits[0]], patch)
    for rule in kustomization.get("images", []):
        if not set(rule) <= {"name", "newName", "newTag", "digest"}:
            raise KustomizeError(f"{directory}: unsupported image rule {rule}")
        names = {_image_name(c.get("image", "")) for doc in docs for c in _containers(doc)}
        if rule["name"] not in names:
            raise KustomizeError(f"{directory}: image rule {rule['name']} matches no container")
        for doc in docs:
            _set_image(doc, rule)
    if "namespace" in kustomization:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = kustomization["namespace"]
    return docs
