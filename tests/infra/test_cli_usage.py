"""The `lulc` commands infra runs exist with the options it passes; the README's tables are current."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer
import yaml

from lulc.cli import app
from lulc.settings_doc import render
from tests.infra.conftest import INFRA, ROOT
from tests.infra.kustomize import _containers
from tests.infra.kustomize import render as kustomize


def _invocations(text: str) -> list[list[str]]:
    """Token lists following each `lulc` (or `.venv/bin/lulc`) in shell text."""
    text = text.replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        for match in re.finditer(r"(?:^|[\s;&|(])(?:\S*/)?lulc\s+([^;&|]*)", line):
            found.append(shlex.split(match.group(1).replace("$", "_")))
    return found


def _all_invocations() -> list[tuple[str, list[str]]]:
    calls: list[tuple[str, list[str]]] = []
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        ours = str(service.get("image", "")).startswith(("lulc-training", "lulc-service", "lulc-tiler"))
        if ours and isinstance(service.get("command"), list):
            calls.append((f"compose:{name}", service["command"]))
    shell_sources = [
        *(INFRA / "k8s" / "templates").glob("*.yaml"),
        ROOT / ".github" / "workflows" / "retrain.yml",
    ]
    for path in shell_sources:
        calls.extend((path.name, tokens) for tokens in _invocations(path.read_text()))
    for doc in kustomize(INFRA / "k8s" / "base"):
        for container in _containers(doc):
            script = "\n".join(str(a) for a in [*container.get("command", []), *container.get("args", [])])
            calls.extend((doc["metadata"]["name"], t) for t in _invocations(script))
    for dockerfile in (INFRA / "docker").glob("*.Dockerfile"):
        cmd = re.search(r"^CMD (\[.*\])$", dockerfile.read_text(), re.MULTILINE)
        if cmd and "lulc" in dockerfile.read_text():
            calls.append((dockerfile.name, yaml.safe_load(cmd.group(1))))
    return calls


def test_infra_runs_existing_commands_with_existing_options() -> None:
    group = typer.main.get_command(app)
    commands = getattr(group, "commands", None)
    assert isinstance(commands, dict), "lulc is a group of subcommands"
    calls = _all_invocations()
    used = {tokens[0] for _, tokens in calls if tokens}
    assert {"train", "classify", "demo-data", "serve", "tiler"} <= used
    for where, tokens in calls:
        if tokens == ["--help"]:
            continue
        command = commands.get(tokens[0])
        assert command is not None, f"{where}: `lulc {tokens[0]}` does not exist"
        options = {opt for param in command.params for opt in param.opts}
        for token in tokens[1:]:
            if token.startswith("--"):
                assert token.split("=")[0] in options, f"{where}: `lulc {tokens[0]}` has no option {token}"


def test_readme_settings_tables_are_generated_from_the_current_classes() -> None:
    readme = (INFRA / "README.md").read_text()
    for deployable in ("service", "tiler", "training"):
        assert f"<!-- settings:{deployable} -->" in readme
    assert render(readme) == readme, "run `make docs` to regenerate infra/README.md's tables"


def test_readme_names_every_deployable_piece() -> None:
    readme = (INFRA / "README.md").read_text()
    for path in [*(INFRA / "docker").glob("*.Dockerfile"), INFRA / "compose.yaml", INFRA / "serverless"]:
        assert path.name in readme or str(path.relative_to(INFRA)) in readme, path
    assert Path(".github/workflows/retrain.yml").name in readme
