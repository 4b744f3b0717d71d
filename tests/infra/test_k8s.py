"""Kubernetes: rendered overlays and templates pass kubernetes-validate; DaskCluster passes its CRD schema."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.infra.conftest import INFRA, venv_tool
from tests.infra.kustomize import KustomizeError, render

K8S = INFRA / "k8s"
BUILDS = ("base", "overlays/dev", "overlays/prod")
TEMPLATES = sorted((K8S / "templates").glob("*.yaml"))


def _write(docs: list[dict[str, Any]], path: Path) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def _validate(files: list[Path]) -> subprocess.CompletedProcess[str]:
    tool = venv_tool("kubernetes-validate")
    return subprocess.run([tool, "--strict", *map(str, files)], capture_output=True, text=True, check=False)


def _by(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


@pytest.mark.parametrize("build", BUILDS)
def test_rendered_build_passes_kubernetes_validate(build: str, tmp_path: Path) -> None:
    docs = render(K8S / build)
    assert len(docs) >= 9
    result = _validate([_write(docs, tmp_path / "rendered.yaml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed for resource ") == len(docs), result.stdout


def test_kubernetes_validate_rejects_a_broken_deployment(tmp_path: Path) -> None:
    """Control: a misspelt field and a string replica count fail strict validation."""
    docs = render(K8S / "base")
    deployment = _by(docs, "Deployment", "lulc-service")
    deployment["spec"]["replicas"] = "two"
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    result = _validate([_write([deployment], tmp_path / "bad.yaml")])
    assert result.returncode != 0


@pytest.mark.parametrize(
    "template", [t for t in TEMPLATES if "dask-cluster" not in t.name], ids=lambda p: p.name
)
def test_job_templates_pass_kubernetes_validate(template: Path, tmp_path: Path) -> None:
    job = yaml.safe_load(template.read_text())
    assert job["metadata"]["generateName"].endswith("-"), "one Job per AOI run: kubectl create names it"
    # kubernetes-validate reads metadata.name to report a resource; the API server derives it from
    # generateName, so give the copy under test the name the server would (prefix + suffix).
    named = {**job, "metadata": {**job["metadata"], "name": job["metadata"]["generateName"] + "x1y2z"}}
    result = _validate([_write([named], tmp_path / template.name)])
    assert result.returncode == 0, result.stdout + result.stderr
    commands = " ".join(
        c["args"][0] for c in job["spec"]["template"]["spec"]["initContainers"] if c.get("args")
    )
    assert "lulc classify --model" in commands


def _pod_failure_action(job: dict[str, Any], container: str, code: int) -> str:
    """What the Job's ``podFailurePolicy`` does when ``container`` exits ``code`` (its first match)."""
    for rule in job["spec"].get("podFailurePolicy", {}).get("rules", []):
        on = rule.get("onExitCodes")
        if on is None or on.get("containerName", container) != container:
            continue
        if (code in on["values"]) == (on["operator"] == "In"):
            return str(rule["action"])
    return "Count"  # no rule: the pod's failure counts against backoffLimit (a retry)


@pytest.mark.parametrize(
    "template", [t for t in TEMPLATES if "dask-cluster" not in t.name], ids=lambda p: p.name
)
def test_job_templates_fail_at_once_on_bad_input_and_retry_an_upstream_down(template: Path) -> None:
    """The Job acts on lulc's exit codes: 2 (bad input) and 1 (a bug) fail it, 75 (EX_TEMPFAIL) is retried."""
    from lulc.cli import TEMPORARY_FAILURE

    job = yaml.safe_load(template.read_text())
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"  # what a podFailurePolicy requires
    running_lulc = [c["name"] for c in [*spec["initContainers"], *spec["containers"]] if "lulc " in str(c)]
    assert sorted(running_lulc) == ["classify", "publish"]
    for container in running_lulc:
        assert _pod_failure_action(job, container, 2) == "FailJob"
        assert _pod_failure_action(job, container, 1) == "FailJob"
        assert _pod_failure_action(job, container, TEMPORARY_FAILURE) == "Count"
        assert _pod_failure_action(job, container, 143) == "Count"  # SIGTERM: the pod was stopped
    assert _pod_failure_action(job, "fetch-model", 1) == "Count"  # aws s3 cp: 1 may be the network


def test_the_retraining_job_fails_at_once_on_a_failed_gate_and_retries_an_upstream_down() -> None:
    from lulc.cli import TEMPORARY_FAILURE

    docs = list(yaml.safe_load_all((K8S / "base" / "retrain-cronjob.yaml").read_text()))
    job = _by(docs, "CronJob", "lulc-retrain-demo")["spec"]["jobTemplate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert _pod_failure_action(job, "train", 2) == "FailJob"  # the gate, a bad recipe
    assert _pod_failure_action(job, "train", TEMPORARY_FAILURE) == "Count"
    assert _pod_failure_action(job, "publish-candidate", 1) == "Count"  # aws s3 cp: maybe the network


def _dask_schema() -> dict[str, Any]:
    crd = yaml.safe_load((INFRA / "schemas" / "daskcluster-crd.yaml").read_text())
    assert crd["spec"]["group"] == "kubernetes.dask.org"
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


def test_dask_cluster_passes_the_operator_crd_schema(tmp_path: Path) -> None:
    cluster = yaml.safe_load((K8S / "templates" / "dask-cluster.yaml").read_text())
    assert cluster["apiVersion"] == "kubernetes.dask.org/v1"
    assert cluster["kind"] == "DaskCluster"
    jsonschema.validate(cluster, _dask_schema())
    # Its scheduler Service is the address the Dask Job template sends blocks to.
    job = yaml.safe_load((K8S / "templates" / "classify-job-dask.yaml").read_text())
    address = f"tcp://{cluster['metadata']['name']}-scheduler:8786"
    assert address in job["spec"]["template"]["spec"]["initContainers"][1]["args"][0]
    # The pod specs inside the custom resource are also valid core/v1 PodSpecs.
    for role in ("worker", "scheduler"):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": role},
            "spec": cluster["spec"][role]["spec"],
        }
        result = _validate([_write([pod], tmp_path / f"{role}.yaml")])
        assert result.returncode == 0, result.stdout


def test_crd_schema_rejects_a_broken_dask_cluster() -> None:
    cluster = yaml.safe_load((K8S / "templates" / "dask-cluster.yaml").read_text())
    cluster["spec"]["worker"]["replicas"] = "four"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cluster, _dask_schema())


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("app", ["lulc-service", "lulc-tiler"])
def test_deployments_have_probes_resources_service_and_autoscaler(build: str, app: str) -> None:
    docs = render(K8S / build)
    deployment = _by(docs, "Deployment", app)
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["limits"]["memory"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    service = _by(docs, "Service", app)
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    env_port = _by(docs, "ConfigMap", app)["data"][f"LULC_{app.split('-')[1].upper()}_PORT"]
    assert int(env_port) == port
    hpa = _by(docs, "HorizontalPodAutoscaler", app)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": app}
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_overlays_set_namespace_tags_and_sizes() -> None:
    dev, prod = render(K8S / "overlays/dev"), render(K8S / "overlays/prod")
    assert {d["metadata"]["namespace"] for d in dev if d["kind"] != "Namespace"} == {"lulc-dev"}
    assert {d["metadata"]["namespace"] for d in prod if d["kind"] != "Namespace"} == {"lulc"}
    dev_image = _by(dev, "Deployment", "lulc-service")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert dev_image == "ghcr.io/lulc-stac/lulc-service:main"
    cron = _by(prod, "CronJob", "lulc-retrain-demo")
    train = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"][1]
    assert train["image"] == "ghcr.io/lulc-stac/lulc-training:0.1.0"
    assert (
        _by(prod, "HorizontalPodAutoscaler", "lulc-service")["spec"]["maxReplicas"]
        > _by(dev, "HorizontalPodAutoscaler", "lulc-service")["spec"]["maxReplicas"]
    )
    assert _by(dev, "ConfigMap", "lulc-service")["data"]["LULC_SERVICE_S3_ENDPOINT"].startswith(
        "http://minio"
    )
    assert "LULC_SERVICE_S3_ENDPOINT" not in _by(prod, "ConfigMap", "lulc-service")["data"]


@pytest.mark.parametrize(("overlay", "namespace"), [("dev", "lulc-dev"), ("prod", "lulc")])
def test_overlays_create_their_namespace_under_the_restricted_pod_security(
    overlay: str, namespace: str
) -> None:
    """Infra review: ``kubectl apply -k`` on a fresh cluster failed with namespace "lulc-dev" not found."""
    created = [d for d in render(K8S / "overlays" / overlay) if d["kind"] == "Namespace"]
    assert [d["metadata"]["name"] for d in created] == [namespace]
    assert created[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def _pod_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    if doc["kind"] in ("Deployment", "Job"):
        return [spec["template"]["spec"]]
    if doc["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    if doc["kind"] == "DaskCluster":
        return [spec["worker"]["spec"], spec["scheduler"]["spec"]]
    return []


def _restricted_faults(pod: dict[str, Any]) -> list[str]:
    """What the "restricted" Pod Security Standard refuses in ``pod``; containers without a memory limit."""
    faults = []
    context = pod.get("securityContext", {})
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        own = container.get("securityContext", {})
        name = container["name"]
        if not own.get("runAsNonRoot", context.get("runAsNonRoot")):
            faults.append(f"{name}: runAsNonRoot")
        seccomp = own.get("seccompProfile", context.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            faults.append(f"{name}: seccompProfile")
        if own.get("allowPrivilegeEscalation") is not False:
            faults.append(f"{name}: allowPrivilegeEscalation")
        if "ALL" not in own.get("capabilities", {}).get("drop", []):
            faults.append(f"{name}: capabilities.drop ALL")
        if "memory" not in container.get("resources", {}).get("limits", {}):
            faults.append(f"{name}: memory limit")
    faults += [f"volume {v['name']}: hostPath" for v in pod.get("volumes", []) if "hostPath" in v]
    return faults


def _every_pod() -> list[tuple[str, dict[str, Any]]]:
    docs = [*render(K8S / "overlays/prod"), *render(K8S / "overlays/dev")]
    docs += [yaml.safe_load(t.read_text()) for t in TEMPLATES]
    return [
        (f"{d['kind']}/{d['metadata'].get('name') or d['metadata']['generateName']}", pod)
        for d in docs
        for pod in _pod_specs(d)
    ]


def test_every_pod_runs_under_the_restricted_pod_security_standard() -> None:
    """Infra review: the CronJob's, the Job templates' and the Dask cluster's pods were refused by it."""
    pods = _every_pod()
    assert {name.split("/")[0] for name, _ in pods} >= {"Deployment", "CronJob", "Job", "DaskCluster"}
    faults = {name: _restricted_faults(pod) for name, pod in pods}
    assert {name: found for name, found in faults.items() if found} == {}


def test_the_restricted_check_finds_a_container_that_may_escalate() -> None:
    """Control: the check above reads each container's own context."""
    pod = next(p for n, p in _every_pod() if n.startswith("Deployment/"))
    assert _restricted_faults(pod) == []
    pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    assert _restricted_faults(pod) == [f"{pod['containers'][0]['name']}: allowPrivilegeEscalation"]


def test_dev_deploys_the_minio_and_buckets_its_settings_name() -> None:
    """Infra review: dev pointed the service, the tiler and the model fetch at a MinIO nothing deployed."""
    from urllib.parse import urlsplit

    dev = render(K8S / "overlays/dev")
    port = _by(dev, "Service", "minio")["spec"]["ports"][0]["port"]
    service, models = (
        _by(dev, "ConfigMap", "lulc-service")["data"],
        _by(dev, "ConfigMap", "lulc-models")["data"],
    )
    for endpoint in (service["LULC_SERVICE_S3_ENDPOINT"], models["AWS_ENDPOINT_URL"]):
        assert endpoint == f"http://minio.lulc-dev.svc:{port}"
    script = _by(dev, "Job", "minio-buckets")["spec"]["template"]["spec"]["containers"][0]["args"][0]
    outputs, store = (
        urlsplit(service["LULC_SERVICE_OUTPUT_URL"]).netloc,
        urlsplit(models["MODEL_STORE"]).netloc,
    )
    assert f"local/{outputs} local/{store}" in script
    assert f"mc anonymous set download local/{outputs}" in script  # the tiler reads without credentials
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())["services"]
    server = _by(dev, "Deployment", "minio")["spec"]["template"]["spec"]["containers"][0]
    assert server["image"] == compose["minio"]["image"]
    assert (
        _by(dev, "Job", "minio-buckets")["spec"]["template"]["spec"]["containers"][0]["image"]
        == (compose["minio-init"]["image"])
    )
    assert not [d for d in render(K8S / "overlays/prod") if "minio" in d["metadata"]["name"]]


def test_cronjob_recipe_is_the_declared_demo_model() -> None:
    recipes = _by(render(K8S / "base"), "ConfigMap", "lulc-recipes")
    assert recipes["data"]["demo.yaml"] == (INFRA / "models" / "demo.yaml").read_text()


def test_renderer_refuses_what_it_cannot_render(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(KustomizeError, match="commonLabels"):
        render(tmp_path)


def test_model_version_bump_reaches_configmap_and_pod_template(tmp_path: Path) -> None:
    """What retrain.yml's pull request changes: both the fetched version and the rollout annotation."""
    from tests.infra.scripts import load_script

    pointer = load_script("model_pointer")
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    overlay = tree / "overlays" / "prod"
    assert pointer.deployed(overlay) == {"demo": "none"}
    pointer.set_version(overlay, "demo", "1a2b3c4d5e6f")
    pointer.set_version(overlay, "other", "0f0f0f")
    docs = render(overlay)
    expected = "demo=1a2b3c4d5e6f,other=0f0f0f"
    assert _by(docs, "ConfigMap", "lulc-models")["data"]["MODEL_VERSIONS"] == expected
    template = _by(docs, "Deployment", "lulc-service")["spec"]["template"]
    assert template["metadata"]["annotations"]["lulc-stac/models"] == expected
    assert pointer.deployed(tree / "overlays" / "dev") == {"demo": "none"}
    result = _validate([_write(docs, tmp_path / "bumped.yaml")])
    assert result.returncode == 0, result.stdout
    with pytest.raises(ValueError, match="invalid"):
        pointer.set_version(overlay, "demo", "bad version")
    # `list`, which images.yml reads to bake the deployed models into the function image
    script = [sys.executable, str(INFRA / "scripts" / "model_pointer.py"), "list"]
    listed = subprocess.run([*script, str(overlay)], capture_output=True, text=True, check=True)
    assert listed.stdout.splitlines() == ["demo 1a2b3c4d5e6f", "other 0f0f0f"]
    dev = str(tree / "overlays" / "dev")
    none = subprocess.run([*script, dev], capture_output=True, text=True, check=True)
    assert none.stdout == "", "a model deployed as none is not listed"


def _fetchers() -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Every init container that copies models from the store, with the documents giving its ConfigMaps."""
    prod = render(K8S / "overlays/prod")
    templates = {t.stem: yaml.safe_load(t.read_text()) for t in TEMPLATES}
    pods = {
        "service": _by(prod, "Deployment", "lulc-service")["spec"]["template"]["spec"],
        "dask-cluster": templates["dask-cluster"]["spec"]["worker"]["spec"],
        "classify-job": templates["classify-job"]["spec"]["template"]["spec"],
        "classify-job-dask": templates["classify-job-dask"]["spec"]["template"]["spec"],
    }
    found = {}
    for where, pod in pods.items():
        (fetch,) = [c for c in pod["initContainers"] if c["name"].startswith("fetch-model")]
        found[where] = (fetch, prod)
    return found


FETCHERS = _fetchers()


@pytest.mark.parametrize("where", sorted(FETCHERS))
def test_model_fetch_fails_when_the_deployed_version_is_not_in_the_store(where: str, tmp_path: Path) -> None:
    """`aws s3 cp --recursive` of a missing prefix copies nothing and succeeds: the script must notice."""
    from tests.infra.shell import Sandbox, configmap_env

    fetch, docs = FETCHERS[where]
    env = configmap_env(docs, fetch)
    box = Sandbox(tmp_path)
    box.publish("demo", "v1")
    found = box.run(fetch, {**env, "MODEL_VERSIONS": "demo=v1"})
    assert found.returncode == 0, found.stderr
    assert (tmp_path / "models" / "demo" / "model.json").is_file()
    assert (tmp_path / "models" / "demo" / "model.onnx").is_file()

    missing = Sandbox(tmp_path / "missing")
    missing.publish("demo", "v1")
    result = missing.run(fetch, {**env, "MODEL_VERSIONS": "demo=v2"})
    assert result.returncode != 0, f"{where}: a missing model version must fail the init container"
    assert "demo v2 missing" in result.stderr
    assert [c["argv"][-2] for c in missing.calls("aws")] == [f"{missing.store}/demo/v2/"]


@pytest.mark.parametrize("where", sorted(FETCHERS))
def test_model_fetch_of_an_undeployed_model(where: str, tmp_path: Path) -> None:
    """`none` (not deployed yet): the long-running pods start without it; a classify Job cannot run."""
    from tests.infra.shell import Sandbox, configmap_env

    fetch, docs = FETCHERS[where]
    box = Sandbox(tmp_path)
    result = box.run(fetch, {**configmap_env(docs, fetch), "MODEL_VERSIONS": "demo=none"})
    if where.startswith("classify-job"):
        assert result.returncode != 0
        assert "not deployed" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
    assert box.calls("aws") == []


JOB_TEMPLATES = ["classify-job", "classify-job-dask"]


def _job_container(template: str, kind: str, name: str) -> dict[str, Any]:
    job = yaml.safe_load((K8S / "templates" / f"{template}.yaml").read_text())
    (container,) = [c for c in job["spec"]["template"]["spec"][kind] if c["name"] == name]
    return container


@pytest.mark.parametrize("build", ["overlays/dev", "overlays/prod"])
@pytest.mark.parametrize("template", JOB_TEMPLATES)
def test_classify_job_passes_the_configmap_search_and_sizing_settings(
    template: str, build: str, tmp_path: Path
) -> None:
    """`lulc classify` reads no LULC_SERVICE_* setting: the Job must pass them, or it searches everything."""
    import typer

    from lulc.cli import app
    from tests.infra.shell import Sandbox, configmap_env

    classify = typer.main.get_command(app).commands["classify"]  # type: ignore[attr-defined]
    container = _job_container(template, "initContainers", "classify")
    env = configmap_env(render(K8S / build), container)
    for cloud in (None, "20"):
        box = Sandbox(tmp_path / str(cloud))
        run_env = env if cloud is None else {**env, "LULC_SERVICE_MAX_CLOUD_COVER": cloud}
        result = box.run(container, run_env)
        assert result.returncode == 0, result.stderr
        (argv,) = box.calls("lulc")
        assert argv[0] == "classify"
        params = classify.make_context("classify", argv[1:]).params
        assert params["stac"] == env["LULC_SERVICE_STAC_URL"]
        assert params["collection"] == [env["LULC_SERVICE_COLLECTION"]]
        assert params["threads"] == int(env["LULC_SERVICE_THREADS"])
        assert params["workers"] == int(env["LULC_SERVICE_WORKERS"])
        assert params["max_cloud_cover"] == (None if cloud is None else float(cloud))
        assert params["datetime"] == env["DATETIME"]
        assert json.loads((tmp_path / str(cloud) / "work" / "aoi.geojson").read_text())["type"] == "Polygon"


@pytest.mark.parametrize("build", ["overlays/dev", "overlays/prod"])
@pytest.mark.parametrize("template", JOB_TEMPLATES)
def test_classify_job_publishes_to_the_store_the_service_uses(
    template: str, build: str, tmp_path: Path
) -> None:
    """The Job publishes with `lulc publish` and the service's own store settings (dev: its MinIO).

    Platform review: its `aws s3 cp` of the raw item kept a link to the model's path on the Job's disk, and
    had no claim of the destination; `lulc publish` is the service's publisher (``service.publish``).
    """
    import typer

    from lulc.cli import app
    from tests.infra.shell import Sandbox, configmap_env

    docs = render(K8S / build)
    container = _job_container(template, "containers", "publish")
    env = configmap_env(docs, container)
    box = Sandbox(tmp_path)
    result = box.run(container, {**env, "RUN_ID": "lulc-classify-x1y2z"})
    assert result.returncode == 0, result.stderr
    (argv,) = box.calls("lulc")
    publish = typer.main.get_command(app).commands["publish"]  # type: ignore[attr-defined]
    params = publish.make_context("publish", argv[1:]).params
    assert argv[0] == "publish"
    assert params["run"] == tmp_path / "work" / "out"
    assert params["destination"] == f"{env['LULC_SERVICE_OUTPUT_URL']}/lulc-classify-x1y2z"
    # the store settings are the service Deployment's: the same ConfigMap and Secret keys
    service = _by(docs, "Deployment", "lulc-service")["spec"]["template"]["spec"]["containers"][0]
    assert configmap_env(docs, service).get("LULC_SERVICE_S3_ENDPOINT") == env.get("LULC_SERVICE_S3_ENDPOINT")
    secrets = {
        e["name"]: e["valueFrom"]
        for e in container["env"]
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    service_secrets = {
        e["name"]: e["valueFrom"]
        for e in service["env"]
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    for name in ("LULC_SERVICE_S3_ACCESS_KEY_ID", "LULC_SERVICE_S3_SECRET_ACCESS_KEY"):
        assert secrets[name] == service_secrets[name]


@pytest.mark.parametrize("build", BUILDS)
def test_service_keeps_a_client_on_the_pod_holding_its_jobs(build: str) -> None:
    """Async jobs are per pod (memory + emptyDir): polls from the same client must reach the same replica."""
    docs = render(K8S / build)
    service = _by(docs, "Service", "lulc-service")["spec"]
    assert service["sessionAffinity"] == "ClientIP"
    assert service["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] >= 3600
    volumes = _by(docs, "Deployment", "lulc-service")["spec"]["template"]["spec"]["volumes"]
    work = next(v for v in volumes if v["name"] == "work")
    assert "emptyDir" in work, "a shared volume would change what the affinity is for: update the README"
    readme = (INFRA / "README.md").read_text()
    assert "sessionAffinity: ClientIP" in readme
    assert "per pod" in readme


@pytest.mark.parametrize("build", ["overlays/dev", "overlays/prod"])
def test_each_overlay_sets_the_s3_region_of_its_output_bucket(build: str) -> None:
    """The service signs S3 requests for LULC_SERVICE_S3_REGION (default us-east-1): state it per overlay."""
    overlay = K8S / build
    patched = [
        d
        for path in overlay.glob("*.yaml")
        for d in yaml.safe_load_all(path.read_text())
        if d and d["kind"] == "ConfigMap" and d["metadata"]["name"] == "lulc-service"
    ]
    assert any("LULC_SERVICE_S3_REGION" in d.get("data", {}) for d in patched), f"{build} sets no region"
    region = _by(render(overlay), "ConfigMap", "lulc-service")["data"]["LULC_SERVICE_S3_REGION"]
    assert re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region), region
