"""Compose stack: compose-spec schema and documented wiring; workflows: their schema and their steps."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import INFRA, ROOT, venv_tool
from tests.infra.scripts import load_script

COMPOSE = INFRA / "compose.yaml"
WORKFLOWS = ROOT / ".github" / "workflows"


def _check_jsonschema(*args: str | Path) -> subprocess.CompletedProcess[str]:
    tool = venv_tool("check-jsonschema")
    return subprocess.run([tool, *map(str, args)], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("schema", ["vendored", "builtin"])
def test_compose_file_passes_the_compose_spec(schema: str) -> None:
    flag = ["--schemafile", INFRA / "schemas" / "compose-spec.json"]
    if schema == "builtin":
        flag = ["--builtin-schema", "vendor.compose-spec"]
    result = _check_jsonschema(*flag, COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_spec_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    """Control: an unknown service key and a malformed depends_on fail the schema."""
    bad = yaml.safe_load(COMPOSE.read_text())
    bad["services"]["service"]["enviroment"] = {"A": "b"}
    bad["services"]["tiler"]["depends_on"] = {"minio-init": {"condition": "when_ready"}}
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = _check_jsonschema("--schemafile", INFRA / "schemas" / "compose-spec.json", path)
    assert result.returncode != 0


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_has_the_whole_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["pgstac"]["image"].startswith("ghcr.io/stac-utils/pgstac:v0.9.")
    assert services["stac-api"]["image"].startswith("ghcr.io/stac-utils/stac-fastapi-pgstac:")
    assert services["minio"]["image"].startswith("quay.io/minio/minio:RELEASE.")
    for name, dockerfile in {
        "service": "infra/docker/service.Dockerfile",
        "tiler": "infra/docker/tiler.Dockerfile",
        "demo-data": "infra/docker/training.Dockerfile",
        "loader": "infra/docker/loader.Dockerfile",
    }.items():
        build = services[name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == ROOT / dockerfile
    # Nothing is configured through mounted config files: only environment variables (and data volumes).
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in compose["volumes"] or source == "./models/demo.yaml", (name, volume)
        assert "env_file" not in service
        assert "configs" not in service


def test_compose_dependency_order_loads_before_serving(compose: dict[str, Any]) -> None:
    services = compose["services"]

    def needs(name: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in services[name].get("depends_on", {}).items()}

    assert needs("loader") == {"pgstac": "service_healthy", "demo-data": "service_completed_successfully"}
    assert needs("stac-api")["loader"] == "service_completed_successfully"
    assert needs("service")["train"] == "service_completed_successfully"
    assert needs("service")["minio-init"] == "service_completed_successfully"
    # Every dependency exists, and there is no cycle.
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle {(*path, name)}"
        for dep in needs(name):
            assert dep in services
            visit(dep, (*path, name))
        if name not in order:
            order.append(name)

    for name in services:
        visit(name, ())
    assert order.index("loader") < order.index("stac-api") < order.index("service")


def test_compose_wiring_is_consistent(compose: dict[str, Any]) -> None:
    services = compose["services"]
    service_env = services["service"]["environment"]
    # The demo world's hrefs point at the files server, which the service may fetch from.
    base_url = services["demo-data"]["command"][
        services["demo-data"]["command"].index("--asset-base-url") + 1
    ]
    assert base_url.startswith("http://files/")
    assert "files" in service_env["LULC_SERVICE_ALLOWED_HOSTS"].split(",")
    assert service_env["LULC_SERVICE_STAC_URL"] == "http://stac-api:8080"
    assert "stac-api:8080" in service_env["LULC_SERVICE_ALLOWED_HOSTS"].split(",")
    # The model the service loads is the one the train step writes.
    train_out = services["train"]["command"][services["train"]["command"].index("--out") + 1]
    models_dir = service_env["LULC_SERVICE_MODELS_DIR"]
    assert train_out.replace("/work/", "/shared/") == f"{models_dir}/demo"
    # The bucket minio-init creates is where the service publishes and what the tiler may read.
    bucket = service_env["LULC_SERVICE_OUTPUT_URL"].removeprefix("s3://").split("/")[0]
    assert f"local/{bucket}" in services["minio-init"]["command"][0]
    allow = services["tiler"]["environment"]["LULC_TILER_ALLOW"].split(",")
    assert any(service_env["LULC_SERVICE_OUTPUT_PUBLIC_URL"].startswith(prefix) for prefix in allow)
    # The loader's pypgstac matches the pgstac database version.
    pgstac_version = services["pgstac"]["image"].split(":v")[1]
    assert f"pypgstac[psycopg]=={pgstac_version}" in (INFRA / "docker" / "loader.Dockerfile").read_text()


def test_loader_walks_the_demo_catalog(tmp_path: Path) -> None:
    from demo.world import MIN_SIZE, generate

    world = generate(tmp_path / "demo-world", size=MIN_SIZE, asset_base_url="http://files/demo-world")
    loader = load_script("load_demo")
    collections, items = loader.walk(world.catalog)
    assert [c["id"] for c in collections] == ["sentinel-2-l2a"]
    assert sorted(i["id"] for i in items) == sorted(world.item_ids)
    for item in items:
        assert item["collection"] == "sentinel-2-l2a"
        assert all(a["href"].startswith("http://files/demo-world/cogs/") for a in item["assets"].values())
    lines = loader.write_ndjson(items, tmp_path / "items.ndjson").read_text().splitlines()
    assert len(lines) == len(items)
    empty = tmp_path / "empty.json"
    empty.write_text('{"type": "Catalog", "id": "x", "links": []}')
    with pytest.raises(loader.CatalogError, match="no items"):
        loader.walk(empty)


@pytest.mark.parametrize("workflow", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
def test_workflows_pass_the_github_workflow_schema(workflow: Path) -> None:
    result = _check_jsonschema("--builtin-schema", "vendor.github-workflows", workflow)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every job has a timeout: a hung install or training run must not hold a runner for 6 hours.
    result = _check_jsonschema("--builtin-schema", "custom.github-workflows-require-timeout", workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_schema_rejects_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  t:\n    runs-on: ubuntu-24.04\n    step:\n      - run: make test\n")
    assert _check_jsonschema("--builtin-schema", "vendor.github-workflows", bad).returncode != 0


def _on(workflow: dict[str, Any]) -> dict[str, Any]:
    return workflow.get("on", workflow.get(True))  # PyYAML reads the bare key `on` as True


def test_test_workflow_runs_make_test_on_every_push() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "test.yml").read_text())
    assert "push" in _on(workflow)
    assert _on(workflow)["push"] is None, "every push: no branch or path filter"
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert any(run.startswith("make test") for run in runs)


def test_retrain_workflow_watches_the_model_declarations_and_closes_the_loop() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "retrain.yml").read_text())
    on = _on(workflow)
    assert on["push"]["paths"] == ["infra/models/*.yaml"]
    assert on["pull_request"]["paths"] == ["infra/models/*.yaml"]
    steps = workflow["jobs"]["retrain"]["steps"]
    text = "\n".join(str(step.get("run", "")) for step in steps)
    assert "make install" in text
    assert "infra/scripts/stage_config.py" in text
    assert '.venv/bin/lulc train --config "$CONFIG" --out' in text
    assert "$BASELINE_ARGS" in text
    assert "aws s3 cp" in text
    assert "model.json" in text
    assert "model_pointer.py set" in text
    uses = [step.get("uses", "") for step in steps]
    assert any(u.startswith("peter-evans/create-pull-request@") for u in uses)
    order = [step.get("name", "") for step in steps]
    assert order.index("Train, evaluate and run the promotion gate") < order.index(
        "Publish the model directory and its MLM item to the model store"
    )


def test_changed_models_names_only_model_declarations() -> None:
    changed = load_script("changed_models")
    paths = ["infra/models/demo.yaml", "infra/models/alps-2024.yaml", "infra/README.md", "models/x.yaml"]
    assert changed.model_names(paths) == ["alps-2024", "demo"]
    assert changed.model_names([]) == []
