"""Serverless package: locked service extra, the real handler as entry point, memory/timeout/env set."""

from __future__ import annotations

import importlib
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import INFRA
from tests.infra.dockerfiles import read_stages

SERVERLESS = INFRA / "serverless"


@pytest.fixture(scope="module")
def function() -> dict[str, Any]:
    template = yaml.safe_load((SERVERLESS / "template.yaml").read_text())
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    return template["Resources"]["ClassifyFunction"]


def test_function_image_installs_the_locked_service_extra() -> None:
    stages = read_stages(SERVERLESS / "Dockerfile")
    syncs = [run for stage in stages for run in stage.args("RUN") if "uv sync" in run]
    assert syncs
    for command in syncs:
        words = shlex.split(command.split("&&")[0])
        assert "--frozen" in words
        assert [words[i + 1] for i, w in enumerate(words) if w == "--extra"] == ["service"]
    runtime = stages[-1]
    assert runtime.args("USER")[-1].split(":")[0] not in {"0", "root"}
    ignore = (SERVERLESS / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[[line.startswith("#") for line in ignore].index(False)] == "*"
    assert "!infra/serverless/models/" in ignore


def test_entry_point_is_the_service_handler(function: dict[str, Any]) -> None:
    runtime = read_stages(SERVERLESS / "Dockerfile")[-1]
    assert json.loads(runtime.args("ENTRYPOINT")[0]) == ["python", "-m", "awslambdaric"]
    target = json.loads(runtime.args("CMD")[0])[0]
    module_name, _, attribute = target.rpartition(".")
    handler = getattr(importlib.import_module(module_name), attribute)
    assert callable(handler)
    assert function["Metadata"]["Dockerfile"] == "infra/serverless/Dockerfile"
    assert (SERVERLESS / function["Metadata"]["DockerContext"]).resolve() == INFRA.parent


def test_function_configuration(function: dict[str, Any]) -> None:
    properties = function["Properties"]
    assert properties["PackageType"] == "Image"
    assert 2048 <= properties["MemorySize"] <= 10240
    assert properties["Timeout"] == 900
    assert properties["EphemeralStorage"]["Size"] >= 2048
    variables = properties["Environment"]["Variables"]
    assert variables["LULC_SERVICE_OUTPUT_DIR"].startswith("/tmp/"), "only /tmp is writable in Lambda"
    runtime = read_stages(SERVERLESS / "Dockerfile")[-1]
    env = " ".join(runtime.args("ENV"))
    assert f"LULC_SERVICE_MODELS_DIR={variables['LULC_SERVICE_MODELS_DIR']}" in env
    copied = [c for c in runtime.args("COPY") if "infra/serverless/models/" in c]
    assert copied == [f"infra/serverless/models/ {variables['LULC_SERVICE_MODELS_DIR']}/"]


def test_handler_answers_a_bad_event_with_a_clear_4xx(
    function: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The packaged entry point, with the function's environment, turns a bad event into a JSON 4xx."""
    from service.handler import handler

    for key, value in function["Properties"]["Environment"]["Variables"].items():
        if isinstance(value, str):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("LULC_SERVICE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("LULC_SERVICE_OUTPUT_DIR", str(tmp_path / "outputs"))
    answer = handler({"aoi": {"type": "Point", "coordinates": [0, 0]}, "datetime": "2024"}, None)
    assert 400 <= answer["statusCode"] < 500
    detail = json.loads(answer["body"])["detail"]
    assert re.search(r"model|output_url", detail), detail


def test_function_signs_s3_requests_for_its_own_region(function: dict[str, Any]) -> None:
    """Without LULC_SERVICE_S3_REGION the service signs for us-east-1, wherever the stack is deployed."""
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["LULC_SERVICE_S3_REGION"] == {"Ref": "AWS::Region"}
