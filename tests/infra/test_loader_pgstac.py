"""The compose stack's loader puts the demo world into a real pgstac, which stac-fastapi-pgstac serves.

Runs infra/scripts/load_demo.py exactly as the compose `loader` service does (catalog path argument,
connection from the compose file's PG* variables) against a throw-away PostgreSQL + PostGIS cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.infra.conftest import INFRA

pytestmark = [pytest.mark.slow, pytest.mark.pgstac]


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    from tests.support.pgstac import PgstacUnavailableError, PostgresCluster, install_pgstac

    try:
        with PostgresCluster() as running:
            install_pgstac(running.dsn)
            yield running
    except PgstacUnavailableError as exc:
        pytest.skip(f"no throw-away PostgreSQL + PostGIS here: {exc}")


def test_loader_loads_the_demo_world_and_the_api_serves_it(cluster: object, tmp_path: Path) -> None:
    from demo.world import MIN_SIZE, generate
    from tests.support.pgstac import DATABASE, SUPERUSER, PgstacApi

    world = generate(tmp_path / "demo-world", size=MIN_SIZE, asset_base_url="http://files/demo-world")
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    loader = compose["services"]["loader"]
    names = set(loader["environment"])
    assert names == {"PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"}
    local = {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(cluster.port),  # type: ignore[attr-defined]
        "PGUSER": SUPERUSER,
        "PGPASSWORD": "unused-trust-auth",
        "PGDATABASE": DATABASE,
    }
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, **local}
    script = INFRA / "scripts" / "load_demo.py"
    assert loader["command"] == ["/work/demo-world/catalog.json"]
    for _ in range(2):  # a rerun of the stack upserts the same items
        result = subprocess.run(
            [sys.executable, script, world.catalog], env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert f"1 collection(s) and {len(world.item_ids)} item(s)" in result.stdout

    api = PgstacApi(cluster)  # type: ignore[arg-type]
    try:
        with urllib.request.urlopen(f"{api.url}/collections/sentinel-2-l2a/items?limit=100", timeout=30) as r:
            page = json.loads(r.read())
    finally:
        api.close()
    assert sorted(f["id"] for f in page["features"]) == sorted(world.item_ids)
    hrefs = [a["href"] for f in page["features"] for a in f["assets"].values()]
    assert hrefs
    assert all(h.startswith("http://files/demo-world/cogs/") for h in hrefs)


def test_loader_reports_a_catalog_without_items(tmp_path: Path) -> None:
    empty = tmp_path / "catalog.json"
    empty.write_text('{"type": "Catalog", "id": "x", "stac_version": "1.1.0", "links": []}')
    result = subprocess.run(
        [sys.executable, INFRA / "scripts" / "load_demo.py", empty],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "links to no items" in result.stderr
