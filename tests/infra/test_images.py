"""Container images: hadolint, one locked extra each, slim non-root runtimes, and what each carries."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra.conftest import INFRA, ROOT, venv_tool
from tests.infra.dockerfiles import read_stages
from tests.infra.lock_graph import IMAGE_ENVIRONMENT, LockGraph, parse_requirements_export

DOCKER = INFRA / "docker"
DEPLOYABLES = ("service", "tiler", "training")
ALL_DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile")) + sorted((INFRA / "serverless").glob("*Dockerfile"))


def test_every_deployable_has_a_dockerfile() -> None:
    assert {p.name for p in DOCKER.glob("*.Dockerfile")} >= {f"{name}.Dockerfile" for name in DEPLOYABLES}


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_hadolint_passes(dockerfile: Path) -> None:
    hadolint = venv_tool("hadolint")
    result = subprocess.run([hadolint, dockerfile], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_careless_dockerfile(tmp_path: Path) -> None:
    """Control: the linter really runs and fails on unpinned images and packages."""
    hadolint = venv_tool("hadolint")
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text(
        "FROM python:latest\nRUN apt-get update && apt-get install -y curl\nRUN pip install numpy\n"
    )
    result = subprocess.run([hadolint, bad], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag
    assert "DL3013" in result.stdout  # unpinned pip package


def _uv_sync_extras(command: str) -> list[str]:
    words = shlex.split(command)
    return [words[i + 1] for i, word in enumerate(words) if word == "--extra"]


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_image_installs_exactly_its_extra_from_the_lock(name: str) -> None:
    stages = read_stages(DOCKER / f"{name}.Dockerfile")
    syncs = [run for stage in stages for run in stage.args("RUN") if "uv sync" in run]
    assert syncs, f"{name}.Dockerfile never runs uv sync"
    for command in syncs:
        words = shlex.split(command)
        assert "--frozen" in words, f"{command!r} may re-resolve instead of installing the lock"
        assert "--no-dev" in words, command
        assert _uv_sync_extras(command) == [name], f"{command!r} must install exactly the {name} extra"
        assert "--all-extras" not in words, command
    # Nothing else installs Python packages behind the lock's back.
    for stage in stages:
        for run in stage.args("RUN"):
            assert not re.search(r"\bpip3? install\b|\buv pip install\b", run), f"{name}: {run!r}"


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_runtime_stage_is_slim_non_root_and_carries_only_the_venv(name: str) -> None:
    stages = read_stages(DOCKER / f"{name}.Dockerfile")
    builder, runtime = stages[-2], stages[-1]
    assert builder.alias == "builder"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", runtime.image), runtime.image
    copies = runtime.args("COPY")
    assert copies == ["--from=builder /app/.venv /app/.venv"], copies
    users = runtime.args("USER")
    assert users, f"{name} runtime runs as root"
    assert users[-1].split(":")[0] not in {"0", "root"}
    healthchecks = runtime.args("HEALTHCHECK")
    assert len(healthchecks) == 1
    if name in {"service", "tiler"}:
        assert "urllib.request" in healthchecks[0]
        assert "/healthz" in healthchecks[0]
        port = re.search(r"127\.0\.0\.1:(\d+)/healthz", healthchecks[0])
        assert port is not None
        assert runtime.args("EXPOSE") == [port.group(1)]
    else:
        assert healthchecks[0] == "NONE"


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned(dockerfile: Path) -> None:
    aliases: set[str] = set()
    for stage in read_stages(dockerfile):
        if stage.image not in aliases:
            tag = stage.image.partition(":")[2]
            assert tag, f"{dockerfile.name}: {stage.image} has no tag"
            assert tag != "latest", f"{dockerfile.name}: {stage.image} is not pinned"
            assert re.search(r"\d+\.\d+", tag), f"{dockerfile.name}: {stage.image} has no version tag"
        if stage.alias:
            aliases.add(stage.alias)


@pytest.mark.parametrize("dockerfile", sorted(DOCKER.glob("*.Dockerfile")), ids=lambda p: p.name)
def test_each_dockerfile_has_an_allow_list_dockerignore(dockerfile: Path) -> None:
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    patterns = [
        line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "start from nothing, then allow what the build copies"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for stage in read_stages(dockerfile):
        for copy in stage.args("COPY"):
            if copy.startswith("--from"):
                continue
            for source in shlex.split(copy)[:-1]:
                assert any(source.rstrip("/") == a or source.startswith(a + "/") for a in allowed), (
                    f"{dockerfile.name} copies {source} but {ignore.name} leaves it out of the context"
                )


@pytest.fixture(scope="module")
def lock() -> LockGraph:
    return LockGraph.read(ROOT / "uv.lock")


def test_service_image_has_onnxruntime_and_no_scikit_learn(lock: LockGraph) -> None:
    packages = lock.closure(["service"])
    assert "onnxruntime" in packages
    assert "fastapi" in packages
    assert "scikit-learn" not in packages
    assert "skl2onnx" not in packages


def test_tiler_image_has_titiler_and_neither_scikit_learn_nor_onnxruntime(lock: LockGraph) -> None:
    packages = lock.closure(["tiler"])
    assert "titiler-core" in packages
    assert "scikit-learn" not in packages
    assert "onnxruntime" not in packages


def test_training_image_has_scikit_learn_and_onnxruntime(lock: LockGraph) -> None:
    packages = lock.closure(["training"])
    assert {"scikit-learn", "skl2onnx", "onnxruntime"} <= packages


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_lock_walk_agrees_with_uv_export(lock: LockGraph, name: str) -> None:
    """The graph walk above gives the same set as uv's own reading of the lock for that extra."""
    uv = shutil.which("uv") or (ROOT / ".tools" / "bin" / "uv")
    if not Path(uv).exists():
        pytest.skip("uv is not installed (`make install` installs it in .tools/bin)")
    exported = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--extra", name, "--no-hashes", "--no-header"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    from_uv = parse_requirements_export(exported, IMAGE_ENVIRONMENT)
    from_walk = lock.closure([name]) - {"lulc-stac"}
    assert from_walk == from_uv - {"lulc-stac"}
