"""Every LULC_* variable named in infra exists in its deployable's settings class, which accepts its value."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter
from pydantic_settings import BaseSettings

from lulc.settings_doc import deployables, load_settings_class
from tests.infra.conftest import INFRA, ROOT
from tests.infra.kustomize import render

ENV_NAME = re.compile(r"\bLULC_[A-Z0-9_]*[A-Z0-9]\b")
SERVERLESS_PSEUDO = {"AWS::Region": "eu-central-1"}
"""CloudFormation pseudo parameters the function's environment may reference, with a sample value."""
SKIP_SUFFIXES = {".json", ".png"}


def infra_files() -> list[Path]:
    files = [p for p in INFRA.rglob("*") if p.is_file() and p.suffix not in SKIP_SUFFIXES]
    files = [p for p in files if "schemas" not in p.relative_to(INFRA).parts]
    return sorted(files + list((ROOT / ".github" / "workflows").glob("*.yml")))


def accepted_names(cls: type[BaseSettings]) -> set[str]:
    """Variable names ``cls`` reads: prefix + field (or alias), and nested fields with the delimiter."""
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    delimiter = cls.model_config.get("env_nested_delimiter")
    names: set[str] = set()
    for name, field in cls.model_fields.items():
        aliases = [a for a in (field.alias, field.validation_alias) if isinstance(a, str)]
        names.update(a.upper() for a in aliases)
        names.add(f"{prefix}{name}".upper())
        annotation = field.annotation
        if delimiter and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.update(f"{prefix}{name}{delimiter}{sub}".upper() for sub in annotation.model_fields)
    return names


def settings_for(variable: str) -> tuple[str, type[BaseSettings]]:
    for deployable in deployables():
        if variable.startswith(f"LULC_{deployable.upper()}_"):
            return deployable, load_settings_class(deployable)
    raise AssertionError(f"{variable}: no deployable has the prefix of this variable")


def unknown_variables(paths: list[Path]) -> dict[str, list[str]]:
    """Variables named in ``paths`` that no settings class reads, with the files naming them."""
    unknown: dict[str, list[str]] = {}
    for path in paths:
        shown = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        for variable in sorted(set(ENV_NAME.findall(path.read_text(errors="replace")))):
            try:
                _, cls = settings_for(variable)
            except AssertionError:
                unknown.setdefault(variable, []).append(shown)
                continue
            if variable not in accepted_names(cls):
                unknown.setdefault(variable, []).append(shown)
    return unknown


def test_infra_names_many_variables_of_each_deployable() -> None:
    named = {v for p in infra_files() for v in ENV_NAME.findall(p.read_text(errors="replace"))}
    for deployable in deployables():
        assert any(v.startswith(f"LULC_{deployable.upper()}_") for v in named), deployable
    assert len(named) >= 20


def test_every_lulc_variable_in_infra_exists_in_a_settings_class() -> None:
    assert unknown_variables(infra_files()) == {}


def test_checker_flags_an_unknown_variable(tmp_path: Path) -> None:
    """Control: a misspelt variable and one of no deployable are both reported."""
    sample = ROOT / "infra" / "docker" / "service.Dockerfile"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "env:\n  LULC_SERVICE_MODEL_DIR: /models\n  LULC_WORKER_THREADS: 2\n  LULC_TILER_ALLOW: /\n"
    )
    assert set(unknown_variables([sample, bad]).keys()) == {"LULC_SERVICE_MODEL_DIR", "LULC_WORKER_THREADS"}


def _compose_defaults(value: Any) -> str:
    """``${VAR:-default}`` interpolations replaced by their defaults, as compose does without a .env."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(value))


def _environments() -> list[tuple[str, dict[str, str]]]:
    envs: list[tuple[str, dict[str, str]]] = []
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        envs.append((f"compose:{name}", {k: _compose_defaults(v) for k, v in env.items()}))
    for build in ("overlays/dev", "overlays/prod"):
        for doc in render(INFRA / "k8s" / build):
            if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] in {"lulc-service", "lulc-tiler"}:
                envs.append((f"k8s:{build}:{doc['metadata']['name']}", dict(doc["data"])))
    template = yaml.safe_load((INFRA / "serverless" / "template.yaml").read_text())
    variables = template["Resources"]["ClassifyFunction"]["Properties"]["Environment"]["Variables"]
    # A Ref names a template parameter (its default) or a CloudFormation pseudo parameter (a sample value).
    values = {name: p["Default"] for name, p in template["Parameters"].items()} | SERVERLESS_PSEUDO
    envs.append(
        ("serverless", {k: values[v["Ref"]] if isinstance(v, dict) else v for k, v in variables.items()})
    )
    return [(where, env) for where, env in envs if any(k.startswith("LULC_") for k in env)]


@pytest.mark.parametrize(("where", "env"), _environments(), ids=[w for w, _ in _environments()])
def test_infra_values_are_accepted_by_the_settings_class(
    where: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("LULC_"):
            monkeypatch.delenv(key)
    deployables = {settings_for(k)[0] for k in env if k.startswith("LULC_")}
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    for deployable in deployables:
        settings = load_settings_class(deployable)()
        for key, value in env.items():
            if key.startswith(f"LULC_{deployable.upper()}_"):
                field = key.removeprefix(f"LULC_{deployable.upper()}_").lower()
                read = getattr(settings, field)
                if hasattr(read, "get_secret_value"):
                    read = read.get_secret_value()
                if isinstance(read, list):
                    assert read == [part.strip() for part in str(value).split(",")], (where, key, read)
                elif isinstance(read, str):
                    assert read == str(value), (where, key, read)
                else:  # numbers, flags, paths: the value read is the one given, as its type parses it
                    annotation = type(settings).model_fields[field].annotation
                    expected = TypeAdapter(annotation).validate_strings(str(value))
                    assert read == expected, (where, key, read, expected)
