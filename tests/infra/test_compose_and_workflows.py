"""Compose stack: compose-spec schema and documented wiring; workflows: their schema and their steps."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import INFRA, ROOT, VENV_BIN, venv_tool
from tests.infra.scripts import load_script

COMPOSE = INFRA / "compose.yaml"
WORKFLOWS = ROOT / ".github" / "workflows"


def _check_jsonschema(*args: str | Path) -> subprocess.CompletedProcess[str]:
    tool = venv_tool("check-jsonschema")
    return subprocess.run([tool, *map(str, args)], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("schema", ["vendored", "builtin"])
def test_compose_file_passes_the_compose_spec(schema: str) -> None:
    flag: list[str | Path] = ["--schemafile", INFRA / "schemas" / "compose-spec.json"]
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


def _on(workflow: dict[Any, Any]) -> dict[str, Any]:
    on: dict[str, Any] = workflow["on"] if "on" in workflow else workflow[True]  # PyYAML: `on` -> True
    return on


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


def _retrain() -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / "retrain.yml").read_text())


def _git(repo: Path, *args: str) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(repo.parent),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_retrain_workflow_retrains_a_renamed_model(tmp_path: Path) -> None:
    """The `changed` job's own script, on a push that renames a recipe: the new name is retrained."""
    (step,) = [s for s in _retrain()["jobs"]["changed"]["steps"] if s.get("id") == "list"]
    repo = tmp_path / "repo"
    models = repo / "infra" / "models"
    models.mkdir(parents=True)
    (repo / "infra" / "scripts").mkdir()
    shutil.copy(INFRA / "scripts" / "changed_models.py", repo / "infra" / "scripts")
    recipe = (INFRA / "models" / "demo.yaml").read_text()
    (models / "demo.yaml").write_text(recipe)
    (models / "alps.yaml").write_text(recipe.replace("name: demo", "name: alps"))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "declare")
    base = _git(repo, "rev-parse", "HEAD")
    _git(repo, "mv", "infra/models/alps.yaml", "infra/models/alps-2024.yaml")
    (models / "alps-2024.yaml").write_text(recipe.replace("name: demo", "name: alps-2024"))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "rename")
    _git(repo, "rm", "-q", "infra/models/demo.yaml")
    _git(repo, "commit", "-q", "-m", "delete")
    statuses = [
        line.split("\t")[0][0] for line in _git(repo, "diff", "--name-status", base, "HEAD").splitlines()
    ]
    assert sorted(statuses) == ["D", "R"], "git sees a rename (and a deletion, not retrained)"
    output = tmp_path / "github_output"
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "EVENT": "push",
        "INPUT_MODEL": "",
        "BASE": base,
        "GITHUB_SHA": _git(repo, "rev-parse", "HEAD"),
        "GITHUB_OUTPUT": str(output),
    }
    result = subprocess.run(
        ["bash", "-e", "-c", step["run"]], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert output.read_text().strip() == 'models=["alps-2024"]'


def test_retrain_jobs_of_one_merge_are_never_dropped_by_the_next() -> None:
    """A concurrency group keeps one pending run and cancels the older one: only per model is that safe."""
    workflow = _retrain()
    assert "concurrency" not in workflow, "a workflow-wide group drops a pending merge's models"
    concurrency = workflow["jobs"]["retrain"]["concurrency"]
    assert "${{ matrix.model }}" in concurrency["group"]
    assert "${{ github.ref }}" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is False


def test_retrain_workflow_deploys_only_where_it_publishes() -> None:
    """Overlays bumped by the workflow fetch from the store it publishes to (dev reads its own MinIO)."""
    from tests.infra.kustomize import render

    steps = _retrain()["jobs"]["retrain"]["steps"]
    (bump,) = [s for s in steps if "model_pointer.py set" in str(s.get("run", ""))]
    bumped = set(re.findall(r"infra/k8s/overlays/[\w-]+", bump["run"]))
    assert "infra/k8s/overlays/prod" in bumped
    for overlay in sorted(bumped):
        models = next(
            d
            for d in render(ROOT / overlay)
            if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "lulc-models"
        )
        assert "AWS_ENDPOINT_URL" not in models["data"], f"{overlay} fetches from another store"
        assert models["data"]["MODEL_STORE"] == "s3://lulc-models"
    (pull_request,) = [
        s for s in steps if str(s.get("uses", "")).startswith("peter-evans/create-pull-request@")
    ]
    assert {pull_request["with"]["add-paths"]} == bumped
    # infra review: opened with GITHUB_TOKEN, the deploy pull request started no workflow (no checks)
    assert pull_request["with"]["token"] == "${{ secrets.DEPLOY_PR_TOKEN || github.token }}"
    assert _retrain()["env"]["MODEL_STORE"].endswith("'s3://lulc-models' }}")


CONFIGURE_AWS = "aws-actions/configure-aws-credentials@"
READ_ROLE = "${{ secrets.MODEL_STORE_READ_ROLE_ARN }}"
WRITE_ROLE = "${{ secrets.MODEL_STORE_ROLE_ARN }}"
RUNS = {
    "pull request": {"event_name": "pull_request", "ref": "refs/pull/7/merge"},
    "dispatch on a branch": {"event_name": "workflow_dispatch", "ref": "refs/heads/try-a-recipe"},
    "push to main": {"event_name": "push", "ref": "refs/heads/main"},
    "dispatch on main": {"event_name": "workflow_dispatch", "ref": "refs/heads/main"},
}
"""Runs of the retrain job: (github.event_name, github.ref). Only the last two may publish."""


def _retrain_run(run: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The retrain job's steps that run for ``run`` (in order), and the job's context for it."""
    from tests.infra.workflow_expr import job_context, step_runs

    job = _retrain()["jobs"]["retrain"]
    ctx = job_context(job, RUNS[run])
    return [step for step in job["steps"] if step_runs(step, ctx)], ctx


def _roles(steps: list[dict[str, Any]]) -> list[str]:
    return [s["with"]["role-to-assume"] for s in steps if str(s.get("uses", "")).startswith(CONFIGURE_AWS)]


@pytest.mark.parametrize("run", ["pull request", "dispatch on a branch"])
def test_retrain_runs_off_main_get_only_the_read_only_role_and_publish_nothing(run: str) -> None:
    """A pull request runs its own code with `id-token: write`: it must never hold the read-write role."""
    steps, ctx = _retrain_run(run)
    assert ctx["env.PUBLISH"] == "false", f"a {run} publishes"
    assert _roles(steps) == [READ_ROLE], _roles(steps)
    names = [s.get("name", "") for s in steps]
    assert "Baseline = the deployed model's metrics" in names  # still gated against the deployed model
    assert not [n for n in names if n.startswith(("Publish", "Bump", "Open the deployment"))], names


@pytest.mark.parametrize("run", ["push to main", "dispatch on main"])
def test_retrain_on_main_publishes_with_the_read_write_role_assumed_after_training(run: str) -> None:
    steps, ctx = _retrain_run(run)
    assert ctx["env.PUBLISH"] == "true"
    assert _roles(steps) == [READ_ROLE, WRITE_ROLE], _roles(steps)
    names = [s.get("name", "") for s in steps]
    write = next(n for n, s in enumerate(steps) if s.get("with", {}).get("role-to-assume") == WRITE_ROLE)
    assert names.index("Train, evaluate and run the promotion gate") < write
    assert write < names.index("Publish the model directory and its MLM item to the model store")
    assert steps[write]["with"].get("unset-current-credentials") is True  # OIDC, not role chaining


def test_retrain_workflow_documents_both_roles_trust() -> None:
    header = (WORKFLOWS / "retrain.yml").read_text().split("\nname:", 1)[0]
    readme = (INFRA / "README.md").read_text()
    for text in (header, readme):
        assert "MODEL_STORE_READ_ROLE_ARN" in text
        assert "MODEL_STORE_ROLE_ARN" in text
        assert '"repo:lulc-stac/lulc-stac:ref:refs/heads/main"' in text  # the read-write role's sub
        assert "repo:lulc-stac/lulc-stac:pull_request" in text


def test_workflow_expressions_are_evaluated_as_github_does() -> None:
    """Control for the evaluator the two tests above rely on."""
    from tests.infra.workflow_expr import evaluate, job_context

    ctx = {"github.event_name": "push", "github.ref": "refs/heads/main", "env.PUBLISH": "true"}
    assert evaluate("${{ github.event_name != 'pull_request' && github.ref == 'refs/heads/main' }}", ctx)
    assert not evaluate("github.event_name == 'pull_request' || !(env.PUBLISH == 'TRUE')", ctx)
    assert evaluate("env.PUBLISH == 'true'", ctx)
    with pytest.raises(KeyError):
        evaluate("inputs.model == 'demo'", ctx)
    with pytest.raises(ValueError, match="cannot read"):
        evaluate("contains(github.ref, 'main')", ctx)
    old = {"env": {"PUBLISH": "${{ github.event_name != 'pull_request' }}", "MODEL": "${{ matrix.model }}"}}
    assert job_context(old, RUNS["dispatch on a branch"])["env.PUBLISH"] == "true"  # the old bug
    assert "env.MODEL" not in job_context(old, RUNS["push to main"])


def _images() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((WORKFLOWS / "images.yml").read_text())
    return loaded


def test_the_images_workflow_builds_every_image_the_manifests_deploy() -> None:
    """Infra review: nothing built or pushed the ghcr.io/lulc-stac images the overlays deploy."""
    import re

    job = _images()["jobs"]["image"]
    built = {entry["name"]: entry["dockerfile"] for entry in job["strategy"]["matrix"]["include"]}
    manifests = " ".join(p.read_text() for p in (INFRA / "k8s").rglob("*.yaml"))
    deployed = set(re.findall(r"ghcr\.io/lulc-stac/([a-z0-9-]+)", manifests))
    assert deployed, "the manifests name images"
    assert deployed <= set(built), f"deployed but never built: {deployed - set(built)}"
    function = (INFRA / "serverless" / "template.yaml").read_text()
    assert "DockerTag: lulc-classify-fn" in function
    assert built["lulc-classify-fn"] == "infra/serverless/Dockerfile"
    for dockerfile in built.values():
        assert (INFRA.parent / dockerfile).is_file(), dockerfile
    # the tags: main on the default branch (the dev overlay's), the version on a tag (the prod overlay's)
    meta = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/metadata-action"))
    assert "type=raw,value=main,enable={{is_default_branch}}" in meta["with"]["tags"]
    assert "type=semver,pattern={{version}}" in meta["with"]["tags"]
    assert meta["with"]["flavor"] == "latest=false"  # no :latest beside the version
    fetch = next(s for s in job["steps"] if "model_pointer.py list" in str(s.get("run", "")))
    assert fetch.get("shell") == "bash", "GitHub's default bash -e has no pipefail: a failing list is silent"


@pytest.mark.parametrize(
    ("run", "pushes"),
    [
        ("pull request", "false"),
        ("dispatch on a branch", "false"),  # no tag to push: build-push-action would fail
        ("push to main", "true"),
        ("push of a tag", "true"),
        ("dispatch on main", "true"),
    ],
)
def test_the_images_workflow_pushes_only_from_main_and_tags(run: str, pushes: str) -> None:
    from tests.infra.workflow_expr import evaluate, job_context, step_runs

    job = _images()["jobs"]["image"]
    for name in ("lulc-service", "lulc-classify-fn"):
        github = {"event_name": "push", "ref": "refs/tags/v0.2.0"} if run == "push of a tag" else RUNS[run]
        ctx = {**job_context(job, github), "matrix.name": name}
        steps = [step for step in job["steps"] if step_runs(step, ctx)]
        build = next(s for s in steps if str(s.get("uses", "")).startswith("docker/build-push-action"))
        assert str(evaluate(str(build["with"]["push"]), ctx)).lower() == pushes
        logged_in = any(str(s.get("uses", "")).startswith("docker/login-action") for s in steps)
        assert logged_in == (pushes == "true")
        roles = _roles(steps)
        assert roles == ([READ_ROLE] if name == "lulc-classify-fn" else []), roles  # never the write role
