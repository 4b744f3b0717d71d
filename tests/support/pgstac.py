"""A throw-away PostgreSQL + PostGIS cluster with the pgstac schema, and stac-fastapi-pgstac over it.

Debian's PostgreSQL binaries (``/usr/lib/postgresql/<major>/bin``) run as an unprivileged user: the
current one, or the ``postgres`` system user when the tests run as root (PostgreSQL refuses root). The
cluster lives in a fresh temporary folder, listens on 127.0.0.1 on a free port (and a unix socket in
that folder), trusts local connections and skips durability (``fsync=off``): it only lives for one
test session. ``pypgstac`` installs the schema and loads collections and items; the API is uvicorn
running ``stac_fastapi.pgstac.app:create_app`` in a subprocess, configured through ``PG*`` variables.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.http_server import die_with_parent

DATABASE = "lulc"
SUPERUSER = "postgres"


class PgstacUnavailableError(RuntimeError):
    """PostgreSQL/PostGIS cannot be run on this machine; the message says why (tests skip with it)."""


@dataclass(frozen=True)
class PostgresInstall:
    """Where Debian put one PostgreSQL major version and whether PostGIS is installed for it."""

    major: int
    bindir: Path

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def find_postgres(root: Path = Path("/")) -> PostgresInstall:
    """The newest PostgreSQL with PostGIS installed, or ``PgstacUnavailableError`` saying what is missing.

    Args:
        root: where Debian's ``usr/lib/postgresql`` and ``usr/share/postgresql`` are (tests use a fake).
    """
    found = []
    for initdb in glob.glob(str(root / "usr/lib/postgresql/*/bin/initdb")):
        bindir = Path(initdb).parent
        match = re.fullmatch(r"\d+", bindir.parent.name)
        if match and (bindir / "pg_ctl").exists() and (bindir / "postgres").exists():
            found.append(PostgresInstall(int(bindir.parent.name), bindir))
    if not found:
        raise PgstacUnavailableError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
            "(Debian package 'postgresql'; `make sysdeps` installs it when run as root)"
        )
    for install in sorted(found, key=lambda i: i.major, reverse=True):
        if (root / f"usr/share/postgresql/{install.major}/extension/postgis.control").exists():
            return install
    majors = ", ".join(str(i.major) for i in found)
    raise PgstacUnavailableError(
        f"PostGIS is not installed for PostgreSQL {majors} (Debian package 'postgresql-postgis'; "
        "`make sysdeps` installs it when run as root)"
    )


def _run_as() -> str | None:
    """The user PostgreSQL must run as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError as exc:
        raise PgstacUnavailableError(
            f"running as root and there is no '{SUPERUSER}' system user to run PostgreSQL as"
        ) from exc
    return SUPERUSER


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """A running throw-away cluster; ``dsn`` connects to its ``lulc`` database as the superuser."""

    def __init__(self, install: PostgresInstall | None = None) -> None:
        self.install = install or find_postgres()
        self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="lulc-pgstac-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = 0
        self._postmaster: subprocess.Popen[bytes] | None = None
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        try:
            self._initdb()
            self._start()
            self._create_database()
        except BaseException:
            self.close()
            raise

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            args,
            user=self.user,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PgstacUnavailableError(
                f"{Path(args[0]).name} failed ({result.returncode}): {result.stderr.strip()[-2000:]}\n{log}"
            )
        return result

    def _initdb(self) -> None:
        self._run(
            [
                self.install.tool("initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ]
        )

    def _start(self) -> None:
        """Run the postmaster as our child (not daemonised by pg_ctl), so it dies with the test run."""
        options = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "60",
            "shared_buffers": "64MB",
        }
        flags = [arg for k, v in options.items() for arg in ("-c", f"{k}={v}")]
        for _ in range(3):  # the port may be taken between free_port() and the postmaster's bind
            self.port = free_port()
            with open(self.log, "ab") as log:
                self._postmaster = subprocess.Popen(
                    [self.install.tool("postgres"), "-D", str(self.data), "-p", str(self.port), *flags],
                    user=self.user,
                    cwd=self.root,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "LC_ALL": "C", "LANG": "C"},
                    preexec_fn=die_with_parent(signal.SIGQUIT),
                )
            if self._wait_ready(timeout=60):
                return
        log_tail = self.log.read_text(errors="replace")[-2000:]
        raise PgstacUnavailableError(f"PostgreSQL did not start:\n{log_tail}")

    def _wait_ready(self, timeout: float) -> bool:
        import psycopg

        deadline = time.monotonic() + timeout
        while self._postmaster.poll() is None and time.monotonic() < deadline:
            try:
                with psycopg.connect(
                    f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres", connect_timeout=5
                ):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.1)
        self._stop()
        return False

    def _stop(self) -> None:
        process = self._postmaster
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # immediate shutdown: the cluster is thrown away
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(
            f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    def close(self) -> None:
        """Stop the cluster immediately (it is throw-away) and remove its folder (idempotent)."""
        self._stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def install_pgstac(dsn: str) -> str:
    """Run pypgstac's migrations on ``dsn``; the pgstac version installed."""
    from pypgstac.db import PgstacDB
    from pypgstac.migrate import Migrate

    with PgstacDB(dsn=dsn) as db:
        return str(Migrate(db).run_migration())


def load_stac(dsn: str, collections: Iterable[Mapping[str, Any]], items: Iterable[Mapping[str, Any]]) -> None:
    """Load collections, then items, with pypgstac's loader (``insert_ignore``: reloading is harmless)."""
    from pypgstac.db import PgstacDB
    from pypgstac.load import Loader, Methods

    with PgstacDB(dsn=dsn) as db:
        loader = Loader(db=db)
        loader.load_collections(iter([dict(c) for c in collections]), insert_mode=Methods.insert_ignore)
        loader.load_items(iter([dict(i) for i in items]), insert_mode=Methods.insert_ignore)


def catalog_contents(catalog: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The collections and items of a static catalog, as dicts ready for pgstac (asset hrefs absolute).

    Structural links are dropped: the API writes its own ``self``/``parent``/``root`` links.
    """
    import pystac

    root = pystac.Catalog.from_file(str(catalog))
    collections: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for collection in root.get_all_collections():
        data = collection.to_dict(include_self_link=False, transform_hrefs=False)
        data["links"] = []
        collections.append(data)
        for item in collection.get_items(recursive=True):
            item.make_asset_hrefs_absolute()
            data = item.to_dict(include_self_link=False, transform_hrefs=False)
            data["links"] = []
            data["collection"] = collection.id
            items.append(data)
    return collections, items


class PgstacApi:
    """stac-fastapi-pgstac served by uvicorn in a subprocess on a free loopback port."""

    def __init__(self, cluster: PostgresCluster, timeout: float = 60) -> None:
        self.cluster = cluster
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self._socket = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.log = cluster.root / "stac-fastapi.log"
        env = {
            **os.environ,
            "PGUSER": SUPERUSER,
            "PGPASSWORD": "unused-trust-auth",
            "PGHOST": "127.0.0.1",
            "PGPORT": str(cluster.port),
            "PGDATABASE": DATABASE,
            "DB_MIN_CONN_SIZE": "1",
            "DB_MAX_CONN_SIZE": "4",
        }
        with open(self.log, "wb") as log:
            self._process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory"),
                    *("--fd", str(sock.fileno()), "--log-level", "warning", "--no-access-log"),
                ],
                pass_fds=[sock.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cluster.root,
                env=env,
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/_mgmt/ping", timeout=5) as response:
                    if json.loads(response.read()).get("message") == "PONG":
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                output = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"stac-fastapi-pgstac did not start at {self.url}:\n{output}")
            time.sleep(0.1)

    def close(self) -> None:
        """Stop the API process (idempotent)."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._socket.close()


@contextlib.contextmanager
def pgstac_api_over(catalog: str | Path) -> Iterator[str]:
    """A pgstac API loaded with every collection and item of ``catalog``; yields its root URL."""
    collections, items = catalog_contents(catalog)
    with PostgresCluster() as cluster:
        install_pgstac(cluster.dsn)
        load_stac(cluster.dsn, collections, items)
        api = PgstacApi(cluster)
        try:
            yield api.url
        finally:
            api.close()
