"""Image environments rebuilt from the lock as the builder stages do: they start and pass HEALTHCHECK.

Each Dockerfile's builder instructions (COPY of the sources, `uv sync --frozen --no-dev --extra <name>`)
are replayed into a temporary venv; no Docker is needed. Every process runs outside the repository so
that nothing is imported from the working tree.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from tests.infra.conftest import INFRA, ROOT
from tests.infra.dockerfiles import Stage, apt_installed, read_stages
from tests.infra.elf import (
    APT_SONAMES,
    BASE_SONAMES,
    dpkg_sonames,
    elf_files,
    image_sonames,
    readelf,
    system_needs,
)
from tests.infra.lock_graph import IMAGE_ENVIRONMENT

pytestmark = pytest.mark.slow

FORBIDDEN = {
    "service": ["sklearn", "skl2onnx"],
    "tiler": ["sklearn", "onnxruntime", "skl2onnx"],
    "training": [],
}
PACKAGES = {
    "service": ["lulc", "service"],
    "tiler": ["lulc", "tiler"],
    "training": ["lulc", "training", "demo"],
}
"""The project's packages each image copies (and no other)."""
REQUIRED = {
    "service": ["onnxruntime", "fastapi", "distributed", "service.app", "service.handler"],
    "tiler": ["titiler.core", "tiler.app"],
    "training": ["sklearn", "skl2onnx", "onnxruntime", "training.pipeline", "demo.world"],
}


def _uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        pytest.skip("uv is not installed (`make install` puts it in .tools/bin)")
    return found


def replay_builder(dockerfile: Path, work: Path) -> Path:
    """Replay the ``builder`` stage of ``dockerfile`` (COPY from the repository, RUN of uv) into ``work``."""
    uv = _uv()
    src, venv = work / "src", work / "venv"
    src.mkdir()
    builder = next(s for s in read_stages(dockerfile) if s.alias == "builder")
    for copy in builder.args("COPY"):
        if copy.startswith("--from"):
            continue  # the uv binary and the npm-installed map library
        *sources, dest = shlex.split(copy)
        for source in sources:
            origin = ROOT / source
            target = (
                src / (dest if dest not in {"./", "."} else "") / (origin.name if dest in {"./", "."} else "")
            )
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(origin, target)
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": getattr(sys, "_base_executable", sys.executable),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_LINK_MODE": "hardlink",  # from the uv cache; falls back to copying across filesystems
        "VIRTUAL_ENV": "",
        # the images compile bytecode (their ENV); here the first start writes it, as PYTHON* is cleared
        "UV_COMPILE_BYTECODE": "0",
    }
    for run in builder.args("RUN"):
        for part in run.split("&&"):
            command = [word.replace("/app/.venv", str(venv)) for word in shlex.split(part)]
            assert command[0] == "uv", f"{dockerfile.name}: the builder only runs uv, not {part!r}"
            result = subprocess.run(
                [uv, *command[1:]], cwd=src, env=env, capture_output=True, text=True, check=False
            )
            assert result.returncode == 0, result.stderr[-3000:]
    return venv


@pytest.fixture(scope="module", params=["service", "tiler", "training"])
def image_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(deployable, venv) built by replaying the builder stage's COPY and `uv sync` instructions."""
    name: str = request.param
    dockerfile = INFRA / "docker" / f"{name}.Dockerfile"
    return name, replay_builder(dockerfile, tmp_path_factory.mktemp(f"image-{name}"))


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("LULC_", "PYTHON", "VIRTUAL_ENV"))}


def _python(venv: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv / "bin" / "python", "-c", code],
        cwd=venv.parent,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )


def _spec_exists(venv: Path, module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 1)"
    return _python(venv, code).returncode == 0


def test_image_env_carries_exactly_what_it_should(image_env: tuple[str, Path]) -> None:
    name, venv = image_env
    for module in REQUIRED[name]:
        assert _spec_exists(venv, module), f"{name} image lacks {module}"
    for module in FORBIDDEN[name]:
        assert not _spec_exists(venv, module), f"{name} image carries {module}"
    # The project is installed, not linked to the sources, and only the packages the image runs.
    carried = PACKAGES[name]
    where = _python(
        venv, f"import {', '.join(carried)}; print({', '.join(p + '.__file__' for p in carried)})"
    )
    assert where.returncode == 0, where.stderr
    assert all(path.startswith(str(venv)) for path in where.stdout.split()), where.stdout
    for package in {"lulc", "service", "training", "tiler", "demo"} - set(carried):
        assert not _spec_exists(venv, package), f"{name} image carries the {package} package"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dockerfile_env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in stage.args("ENV"):
        for token in shlex.split(line):
            key, _, value = token.partition("=")
            env[key] = value
    return env


def test_image_command_starts_and_passes_its_healthcheck(image_env: tuple[str, Path], tmp_path: Path) -> None:
    name, venv = image_env
    runtime = read_stages(INFRA / "docker" / f"{name}.Dockerfile")[-1]
    entrypoint = json.loads(runtime.args("ENTRYPOINT")[0])
    cmd = json.loads(runtime.args("CMD")[0])
    assert entrypoint == ["lulc"]
    program = [str(venv / "bin" / entrypoint[0]), *cmd]
    healthcheck = runtime.args("HEALTHCHECK")[0]
    if healthcheck == "NONE":
        result = subprocess.run(
            program, cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, check=False, timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert "train" in result.stdout
        return
    image_env_vars = {k: v for k, v in _dockerfile_env(runtime).items() if k.startswith("LULC_")}
    port_key = next(k for k in image_env_vars if k.endswith("_PORT"))
    port = _free_port()
    env = _clean_env()
    env.update(image_env_vars)
    env.update({port_key: str(port), "PATH": f"{venv / 'bin'}:{env['PATH']}"})
    process = subprocess.Popen(
        program, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    check = json.loads(healthcheck.split("CMD", 1)[1].strip())
    check = [part.replace(f":{image_env_vars[port_key]}/", f":{port}/") for part in check]
    assert check[0] == "python"
    try:
        deadline = time.monotonic() + 90
        while True:
            probe = subprocess.run(
                [venv / "bin" / "python", *check[1:]],
                cwd=tmp_path,
                env=_clean_env(),
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                break
            assert process.poll() is None, process.communicate()[0].decode()[-3000:]
            assert time.monotonic() < deadline, "the health check never passed"
            time.sleep(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def function_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The serverless image's venv, replayed from its builder stage (service extra + awslambdaric)."""
    return replay_builder(INFRA / "serverless" / "Dockerfile", tmp_path_factory.mktemp("image-function"))


def test_function_image_runs_the_handler(function_env: Path, tmp_path: Path) -> None:
    """The serverless builder (service extra + awslambdaric) gives an env where the CMD handler answers."""
    venv = function_env
    runtime = read_stages(INFRA / "serverless" / "Dockerfile")[-1]
    assert json.loads(runtime.args("ENTRYPOINT")[0]) == ["python", "-m", "awslambdaric"]
    module, _, function = json.loads(runtime.args("CMD")[0])[0].rpartition(".")
    code = (
        "import json, awslambdaric.bootstrap, importlib\n"
        f"handler = getattr(importlib.import_module({module!r}), {function!r})\n"
        "print(json.dumps(handler({'datetime': '2024'}, None)))\n"
    )
    env = {**_clean_env(), "LULC_SERVICE_MODELS_DIR": str(tmp_path / "models"), "HOME": str(tmp_path)}
    result = subprocess.run(
        [venv / "bin" / "python", "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["statusCode"] == 400
    assert "aoi" in json.loads(answer["body"])["detail"]
    assert not _spec_exists(venv, "sklearn")


# Native libraries: every ELF file of an image's environment finds the shared libraries it needs, in the
# environment itself (wheel-bundled `<dist>.libs`, RPATH/$ORIGIN) or among the system libraries of the
# runtime stage, i.e. the base image's (elf.BASE_SONAMES) plus those of the packages the runtime stage
# apt-gets (elf.APT_SONAMES). A soname found nowhere is an image that fails at `import`, e.g. rasterio's
# GDAL without libexpat.so.1.


def _readelf() -> str:
    tool = readelf()
    if tool is None:
        pytest.skip("binutils' readelf is not installed (apt-get install binutils)")
    return tool


def _unprovided(dockerfile: Path, files: list[Path]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(sonames nothing provides -> who needs them, apt package of the runtime stage -> what needs it)."""
    apt = apt_installed(read_stages(dockerfile)[-1])
    provided = image_sonames(apt)
    needs = system_needs(files, _readelf())
    missing = {
        soname: sorted(str(p).rpartition("site-packages/")[2] for p in who)
        for soname, who in needs.items()
        if soname not in provided
    }
    used = {package: sorted(soname for soname in APT_SONAMES[package] if soname in needs) for package in apt}
    return missing, used


def _assert_libraries_provided(dockerfile: Path, files: list[Path]) -> None:
    missing, used = _unprovided(dockerfile, files)
    assert not missing, (
        f"{dockerfile.relative_to(ROOT)}: the runtime stage lacks shared libraries (apt-get install the "
        f"Debian package providing each): {json.dumps(missing, indent=1)}"
    )
    # The control, and no package for nothing: every package the runtime installs is needed here.
    unused = [package for package, sonames in used.items() if not sonames]
    assert not unused, f"{dockerfile.relative_to(ROOT)} installs {unused}, which nothing here links"


def test_image_native_libraries_are_all_provided(image_env: tuple[str, Path]) -> None:
    name, venv = image_env
    _assert_libraries_provided(INFRA / "docker" / f"{name}.Dockerfile", list(elf_files(venv)))


def test_function_image_native_libraries_are_all_provided(function_env: Path) -> None:
    _assert_libraries_provided(INFRA / "serverless" / "Dockerfile", list(elf_files(function_env)))


def _installed_closure(requirement: str) -> list[Path]:
    """Files of the distributions ``requirement`` installs, per this venv's metadata (image's markers)."""
    todo, seen, files = [Requirement(requirement)], set(), []
    while todo:
        wanted = todo.pop()
        key = (canonicalize_name(wanted.name), frozenset(wanted.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = distribution(wanted.name)
        except PackageNotFoundError:
            pytest.skip(f"{wanted.name} is not installed in this venv (`make install` installs it)")
        files += [Path(str(dist.locate_file(f))) for f in dist.files or []]
        for text in dist.requires or []:
            dependency = Requirement(text)
            extras = wanted.extras or {""}
            if dependency.marker is None or any(
                dependency.marker.evaluate({**IMAGE_ENVIRONMENT, "extra": e}) for e in extras
            ):
                todo.append(dependency)
    return files


def test_loader_image_native_libraries_are_all_provided() -> None:
    """The loader's pip-installed pypgstac[psycopg], approximated by the same requirement in this venv.

    Its pin is not in uv.lock, so it cannot be replayed offline; the dev group's pypgstac[psycopg]
    closure (native code: psycopg-binary with its bundled libpq, and Rust extensions) stands in.
    """
    dockerfile = INFRA / "docker" / "loader.Dockerfile"
    (install,) = [run for run in read_stages(dockerfile)[-1].args("RUN") if "pip install" in run]
    (pinned,) = [w for w in shlex.split(install) if w.startswith("pypgstac")]
    requirement = Requirement(pinned)
    requirement.specifier = SpecifierSet()  # the venv's version stands in for the pin
    files = _installed_closure(str(requirement))
    assert any(f.name.startswith("_psycopg") for f in files), "psycopg-binary is not in the closure"
    _assert_libraries_provided(dockerfile, files)


@pytest.mark.parametrize("package", sorted({*BASE_SONAMES, *APT_SONAMES}))
def test_soname_tables_agree_with_dpkg(package: str) -> None:
    """Where this host is Debian and has the package, `dpkg -L` lists every soname the tables give it."""
    listed = dpkg_sonames(package)
    if listed is None:
        pytest.skip(f"{package} is not installed here (or this is not Debian): nothing to compare")
    table = BASE_SONAMES.get(package) or APT_SONAMES[package]
    assert table <= listed, f"{package} does not ship {sorted(table - listed)}"
