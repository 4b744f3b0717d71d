"""The hosts and prefixes infra configures let each deployable read what the stack hands it, and no more.

Settings are built from the environment infra sets; the service's and the tiler's own allow-lists judge.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import yaml

from lulc.allowlist import AllowList as ServiceAllowList
from service.settings import ServiceSettings
from tests.infra.conftest import INFRA
from tests.infra.kustomize import render
from tiler.allowlist import AllowList as TilerAllowList
from tiler.errors import NotAllowedError
from tiler.settings import TilerSettings


def _settings(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[ServiceSettings, TilerSettings]:
    for key in list(os.environ):
        if key.startswith("LULC_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value).replace("${MINIO_ROOT_USER:-lulc}", "lulc"))
    return ServiceSettings(), TilerSettings()


def test_compose_service_and_tiler_reach_what_the_stack_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    services = yaml.safe_load((INFRA / "compose.yaml").read_text())["services"]
    env = {**services["service"]["environment"], **services["tiler"]["environment"]}
    service, tiler = _settings(env, monkeypatch)
    reads = ServiceAllowList.of(service.allowed_hosts, service.local_folders)
    assert reads.allows(f"{service.stac_url}/search")
    assert reads.allows("http://files/demo-world/cogs/S2B_54SVE_20210718_0_L2A/blue.tif")
    assert not reads.allows("http://minio:9000/lulc-outputs/runs/x/classes.tif")
    assert not reads.allows("/etc/passwd")
    serves = TilerAllowList.from_prefixes(tiler.allow)
    assert service.output_public_url is not None
    serves.check(f"{service.output_public_url}/0123abcd/classes.tif")
    serves.check("http://files/demo-world/cogs/S2B_54SVE_20210718_0_L2A/red.tif")
    for outside in (
        "http://minio:9000/lulc-models/demo/model.onnx",
        "/etc/passwd",
        "http://evil.example/x.tif",
    ):
        with pytest.raises(NotAllowedError):
            serves.check(outside)


@pytest.mark.parametrize("build", ["overlays/dev", "overlays/prod"])
def test_k8s_service_and_tiler_reach_what_the_cluster_serves(
    build: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(INFRA / "k8s" / build)
    env: dict[str, Any] = {}
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] in {"lulc-service", "lulc-tiler"}:
            env.update(doc["data"])
    service, tiler = _settings(env, monkeypatch)
    reads = ServiceAllowList.of(service.allowed_hosts, service.local_folders)
    assert reads.allows(f"{service.stac_url}/search")
    assert reads.allows("https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/x/B04.tif")
    assert service.output_public_url is not None
    TilerAllowList.from_prefixes(tiler.allow).check(f"{service.output_public_url}/job-1/classes.tif")
    assert str(service.models_dir) == "/models"
    assert service.tiler_url == "http://lulc-tiler:8080"
