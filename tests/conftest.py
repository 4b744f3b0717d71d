"""Shared session fixtures: tutorial data, the demo world, loopback HTTP servers, a real pgstac API.

Fixtures (session-scoped unless noted):

- ``lulc_py``: Path of ``../shared/data/lulc_py`` next to the repository, or skip where it is absent.
- ``demo_world``: the ``DemoWorld`` of ``demo.world.generate(..., seed=0)`` at the default
  size, generated once per session; also path-like (``Path(demo_world) == demo_world.root``).
- ``http_server_factory``: ``(directory, fail_every=None, failure="503"|"drop") -> ServerHandle``;
  starts a loopback file server with Range support (own process) that is closed at session end.
- ``cog_server``: a ``ServerHandle`` serving ``demo_world.root``: ``.base_url``, ``.url(path)``,
  ``.vsicurl(path)``, ``.requests`` (the request log: ``.records()``, ``.clear()``), ``.set_failure()``.
- ``http_catalog``: Path of the ``catalog.json`` of a second demo world (same seed and size, hence the
  same bytes) generated with ``asset_base_url=cog_server.base_url``: every asset href is an http URL
  on ``cog_server``.
- ``pgstac_api``: URL of a real stac-fastapi-pgstac over a throw-away PostgreSQL + PostGIS cluster,
  loaded with the demo collection and items whose hrefs point at ``cog_server``; skips with the reason
  where PostgreSQL/PostGIS cannot be run here.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.http_server import Failure, ServerHandle, start_http_server
from tests.support.pgstac import PgstacUnavailableError, pgstac_api_over

if TYPE_CHECKING:
    from demo.world import DemoWorld

REPO = Path(__file__).resolve().parents[1]
LULC_PY = REPO / ".." / "shared" / "data" / "lulc_py"
DEMO_SEED = 0


def path_like(world: DemoWorld) -> Any:
    """``world`` as an instance of a ``DemoWorld`` subclass that is also path-like (its root folder).

    The brief first described ``demo_world`` as a Path; with ``__fspath__`` both uses work:
    ``demo_world.catalog`` and ``Path(demo_world) / "catalog.json"``.
    """
    base = type(world)

    @dataclasses.dataclass(frozen=True)
    class SessionDemoWorld(base):  # type: ignore[valid-type, misc]
        def __fspath__(self) -> str:
            return str(self.root)

    return SessionDemoWorld(**{f.name: getattr(world, f.name) for f in dataclasses.fields(world)})


@pytest.fixture(scope="session")
def lulc_py() -> Path:
    """The tutorial data folder ``../shared/data/lulc_py`` (skips where it is absent)."""
    path = LULC_PY.resolve()
    if not path.is_dir():
        pytest.skip(f"tutorial data not found at {path} (../shared/data/lulc_py next to the repository)")
    return path


@pytest.fixture(scope="session")
def demo_world(tmp_path_factory: pytest.TempPathFactory) -> DemoWorld:
    """The demo world (default size, seed 0) with relative asset hrefs, generated once per session."""
    from demo.world import generate  # imported here: geopandas & co. cost seconds

    return path_like(generate(tmp_path_factory.mktemp("demo-world") / "world", seed=DEMO_SEED))


class ServerFactory:
    """Starts loopback file servers and closes every one of them at the end of the session."""

    def __init__(self) -> None:
        self.servers: list[ServerHandle] = []

    def __call__(
        self, directory: str | Path, fail_every: int | None = None, failure: Failure = "503"
    ) -> ServerHandle:
        server = start_http_server(directory, fail_every=fail_every, failure=failure)
        self.servers.append(server)
        return server

    def close_all(self) -> None:
        for server in self.servers:
            server.close()


@pytest.fixture(scope="session")
def http_server_factory() -> Iterator[ServerFactory]:
    """``factory(directory, fail_every=None, failure="503"|"drop") -> ServerHandle``, closed at the end."""
    factory = ServerFactory()
    yield factory
    factory.close_all()


@pytest.fixture(scope="session")
def cog_server(demo_world: DemoWorld, http_server_factory: ServerFactory) -> ServerHandle:
    """The loopback HTTP server (Range support, request log) over the demo world's folder."""
    return http_server_factory(demo_world.root)


@pytest.fixture(scope="session")
def http_world(tmp_path_factory: pytest.TempPathFactory, cog_server: ServerHandle) -> DemoWorld:
    """The demo world again, its asset hrefs absolute URLs on ``cog_server`` (which serves the same bytes)."""
    from demo.world import generate

    return generate(
        tmp_path_factory.mktemp("http-world") / "world", seed=DEMO_SEED, asset_base_url=cog_server.base_url
    )


@pytest.fixture(scope="session")
def http_catalog(http_world: DemoWorld) -> Path:
    """Path of a demo ``catalog.json`` whose item asset hrefs are http URLs on ``cog_server``."""
    return http_world.catalog


@pytest.fixture(scope="session")
def pgstac_api(http_catalog: Path) -> Iterator[str]:
    """URL of a real stac-fastapi-pgstac holding the demo collection and items (hrefs on ``cog_server``).

    Skips, saying why, where PostgreSQL + PostGIS cannot be run (binaries missing, no unprivileged user).
    """
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(pgstac_api_over(http_catalog))
        except PgstacUnavailableError as exc:
            pytest.skip(f"no throw-away PostgreSQL + PostGIS for the pgstac API: {exc}")
        yield url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests using ``pgstac_api`` carry the ``pgstac`` marker, so ``-m "not pgstac"`` leaves them out."""
    for item in items:
        if "pgstac_api" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.pgstac)
