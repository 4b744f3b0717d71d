"""SSRF battery against the service's HTTP API, with real loopback servers and a canary.

The canary is a server off the allow-list that answers every request with a secret page: it must see
zero requests, and its page must never come back. Next to it, on the allow-list: a file server with
crafted catalogs, a server that redirects everything to the canary, and one that answers 502 with an
internal page. Every trick of issue 16 is tried as the order's ``stac``, as a catalog link and as an
asset href. Local files: with a local folder configured, paths outside it and missing ones must get
one and the same answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pystac
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.app_support import World, models_dir, service_settings, shared_world
from tests.support.http_server import ServerHandle, start_http_server
from tests.support.scripted_server import ScriptedServer, redirect_everything_to

CANARY_BODY = "CANARY-SECRET-PAGE"
INTERNAL_BODY = "INTERNAL-ADMIN-PAGE"


@dataclass(frozen=True)
class Servers:
    """The loopback servers of the battery."""

    canary: ScriptedServer
    redirector: ScriptedServer
    leaky: ScriptedServer
    files: ServerHandle
    world: World
    sloppy: ScriptedServer
    """Redirects to ``http:/<canary>/...`` (one slash): a path here to ``urljoin``, the canary to curl."""
    slashes: ScriptedServer
    """Redirects to ``///<canary>/...`` (no scheme, three slashes): the same reading apart."""

    def allowed_hosts(self) -> list[str]:
        servers = (self.redirector, self.leaky, self.files, self.world.server, self.sloppy, self.slashes)
        return [f"127.0.0.1:{server.port}" for server in servers]


def _items(world: World) -> list[dict[str, Any]]:
    """The demo world's items as dicts (asset hrefs: absolute URLs on the world's server)."""
    catalog = pystac.Catalog.from_file(str(world.root / "catalog.json"))
    items = []
    for item in catalog.get_items(recursive=True):
        item.make_asset_hrefs_absolute()
        data = item.to_dict(include_self_link=False, transform_hrefs=False)
        data["links"] = []
        items.append(data)
    return items


def _write_catalog(
    folder: Path, items: list[dict[str, Any]], links: list[dict[str, str]] | None = None
) -> None:
    """``folder/catalog.json`` linking ``items`` (written next to it) and any extra ``links``."""
    folder.mkdir(parents=True)
    item_links = []
    for data in items:
        (folder / f"{data['id']}.json").write_text(json.dumps(data))
        item_links.append({"rel": "item", "href": f"./{data['id']}.json", "type": "application/json"})
    catalog = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": folder.name,
        "description": "crafted for the SSRF battery",
        "links": [{"rel": "root", "href": "./catalog.json"}, *item_links, *(links or [])],
    }
    (folder / "catalog.json").write_text(json.dumps(catalog))


def _with_hrefs(items: list[dict[str, Any]], href: Any) -> list[dict[str, Any]]:
    """Copies of ``items`` with every asset href replaced by ``href(old_href)``."""
    changed = json.loads(json.dumps(items))
    for data in changed:
        for asset in data["assets"].values():
            asset["href"] = href(asset["href"])
    return changed


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return shared_world(tmp_path_factory)


@pytest.fixture(scope="module")
def models(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models_dir(tmp_path_factory.mktemp("ssrf-models"), world)


@pytest.fixture(scope="module")
def servers(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    canary = ScriptedServer({"*": {"status": 200, "body": CANARY_BODY}})
    redirector = ScriptedServer(redirect_everything_to(canary.base_url))
    leaky = ScriptedServer({"*": {"status": 502, "body": INTERNAL_BODY}})
    sloppy = ScriptedServer(
        {"*": {"status": 302, "headers": {"location": f"http:/127.0.0.1:{canary.port}{{path}}"}}}
    )
    slashes = ScriptedServer(
        {"*": {"status": 302, "headers": {"location": f"///127.0.0.1:{canary.port}{{path}}"}}}
    )
    world_base = world.server.base_url
    root = tmp_path_factory.mktemp("ssrf-files")
    items = _items(world)
    _write_catalog(root / "good", items)
    _write_catalog(root / "child-to-canary", [], [{"rel": "child", "href": canary.url("catalog.json")}])
    _write_catalog(
        root / "child-via-redirect", [], [{"rel": "child", "href": redirector.url("catalog.json")}]
    )
    _write_catalog(root / "item-to-canary", [], [{"rel": "item", "href": canary.url("item.json")}])
    _write_catalog(
        root / "assets-on-canary", _with_hrefs(items, lambda h: h.replace(world_base, canary.base_url))
    )
    _write_catalog(
        root / "assets-via-redirect", _with_hrefs(items, lambda h: h.replace(world_base, redirector.base_url))
    )
    for name, server in (("sloppy", sloppy), ("slashes", slashes)):
        hrefs = _with_hrefs(items, lambda h, base=server.base_url: h.replace(world_base, base))
        _write_catalog(root / f"assets-via-{name}-redirect", hrefs)
    _write_catalog(root / "assets-vsizip", _with_hrefs(items, lambda h: "/vsizip//local/file.zip/x.tif"))
    _write_catalog(root / "assets-local", _with_hrefs(items, lambda h: "file:///etc/passwd"))
    _write_catalog(
        root / "assets-backslash",
        _with_hrefs(items, lambda h: f"http://127.0.0.1:{canary.port}\\@{h[len('http://') :]}"),
    )
    files = start_http_server(root)
    yield Servers(canary, redirector, leaky, files, world, sloppy, slashes)
    for server in (canary, redirector, leaky, sloppy, slashes):
        server.close()
    files.close()


INTERNAL_HOST = "internal-stac.corp.example:8443"
"""An allow-list entry no request names: an answer naming it tells the client what the service may reach."""


def _client(servers: Servers, models: Path, tmp_path: Path, **overrides: Any) -> TestClient:
    servers.canary.clear()
    values = {"allowed_hosts": [*servers.allowed_hosts(), INTERNAL_HOST], **overrides}
    settings = service_settings(tmp_path, servers.world, models, **values)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def _order(servers: Servers, stac: str) -> dict[str, Any]:
    return {"aoi": servers.world.aoi(), "datetime": servers.world.datetime, "model": "demo", "stac": stac}


def _refused(
    client: TestClient, servers: Servers, stac: str, statuses: tuple[int, ...] = (403,)
) -> dict[str, Any]:
    """POST an order from ``stac``: refused with one of ``statuses``, canary untouched, no secret echoed."""
    response = client.post("/classify", json=_order(servers, stac))
    assert response.status_code in statuses, (stac, response.status_code, response.text)
    assert CANARY_BODY not in response.text
    assert INTERNAL_BODY not in response.text
    assert INTERNAL_HOST not in response.text  # HTTP review: the 403 listed the whole allow-list
    assert servers.canary.requests() == [], stac
    return dict(response.json())


def test_the_crafted_catalogs_classify_when_nothing_is_off_the_list(
    servers: Servers, models: Path, tmp_path: Path
) -> None:
    """Control: the battery's file server, catalog and items work; only the tricks make them fail."""
    client = _client(servers, models, tmp_path)
    response = client.post("/classify", json=_order(servers, servers.files.url("good/catalog.json")))
    assert response.status_code == 200, response.text
    assert servers.canary.requests() == []


def _tricks(servers: Servers) -> list[str]:
    canary, files = servers.canary, servers.files
    return [
        # urlparse sees the allowed host after the backslash; requests connects to the canary
        f"http://127.0.0.1:{canary.port}\\@127.0.0.1:{files.port}/good/catalog.json",
        f"http://127.0.0.1:{files.port}@127.0.0.1:{canary.port}/good/catalog.json",
        f"http://127.0.0.1:{files.port}:x@127.0.0.1:{canary.port}/good/catalog.json",
        f"HtTp://127.0.0.1:{canary.port}/catalog.json",
        f"http%3A%2F%2F127.0.0.1:{canary.port}/catalog.json",
        f"/vsicurl/http://127.0.0.1:{canary.port}/catalog.json",
        f"/vsicurl?url=http://127.0.0.1:{canary.port}/catalog.json",
        f"http://127.0.0.1:{canary.port}/catalog.json",
        f"gopher://127.0.0.1:{canary.port}/_GET",
    ]


def test_tricks_in_the_order_source_are_403(servers: Servers, models: Path, tmp_path: Path) -> None:
    client = _client(servers, models, tmp_path)
    for stac in _tricks(servers):
        body = _refused(client, servers, stac)
        assert body["type"] == "HostNotAllowedError", body


def test_dot_segments_cannot_leave_an_allowed_url_prefix(
    servers: Servers, models: Path, tmp_path: Path
) -> None:
    files = servers.files
    prefix_only = [f"{files.base_url}/good/", f"127.0.0.1:{servers.world.server.port}"]
    client = _client(servers, models, tmp_path, allowed_hosts=prefix_only)
    files.requests.clear()
    for stac in (
        f"{files.base_url}/good/../child-to-canary/catalog.json",
        f"{files.base_url}/good/%2e%2e/child-to-canary/catalog.json",
        f"{files.base_url}/good/..%2Fchild-to-canary/catalog.json",
    ):
        _refused(client, servers, stac)
    assert files.requests.records() == [], "nothing outside the prefix was requested"


def test_redirects_off_the_list_are_not_followed(servers: Servers, models: Path, tmp_path: Path) -> None:
    client = _client(servers, models, tmp_path)
    for stac in (servers.redirector.url("catalog.json"), servers.redirector.url("stac/v1")):
        body = _refused(client, servers, stac)
        assert "redirect" in body["detail"], body


def test_catalog_links_off_the_list_are_not_followed(servers: Servers, models: Path, tmp_path: Path) -> None:
    client = _client(servers, models, tmp_path)
    for folder in ("child-to-canary", "child-via-redirect", "item-to-canary"):
        _refused(client, servers, servers.files.url(f"{folder}/catalog.json"))


@pytest.mark.parametrize("folder", ["assets-on-canary", "assets-vsizip", "assets-local", "assets-backslash"])
def test_asset_hrefs_off_the_list_are_refused_before_any_read(
    servers: Servers, models: Path, tmp_path: Path, folder: str
) -> None:
    client = _client(servers, models, tmp_path)
    body = _refused(client, servers, servers.files.url(f"{folder}/catalog.json"))
    assert "asset" in body["detail"], body


def test_asset_hrefs_that_redirect_off_the_list_are_not_followed_by_gdal(
    servers: Servers, models: Path, tmp_path: Path
) -> None:
    client = _client(servers, models, tmp_path)
    _refused(client, servers, servers.files.url("assets-via-redirect/catalog.json"), (403, 502))


@pytest.mark.parametrize("name", ["sloppy", "slashes"])
def test_a_redirect_read_apart_by_urljoin_and_curl_is_refused(
    servers: Servers, models: Path, tmp_path: Path, name: str
) -> None:
    """``Location: http:/host/x`` or ``///host/x``: a path on the allowed host to us, ``host`` to curl."""
    client = _client(servers, models, tmp_path)
    body = _refused(client, servers, servers.files.url(f"assets-via-{name}-redirect/catalog.json"))
    assert "malformed location" in body["detail"], body


def test_upstream_error_pages_are_not_echoed(servers: Servers, models: Path, tmp_path: Path) -> None:
    client = _client(servers, models, tmp_path)
    for stac in (servers.leaky.url("stac/v1"), servers.leaky.url("catalog.json")):
        body = _refused(client, servers, stac, (502,))
        assert "502" in body["detail"], body


def test_local_paths_outside_the_folders_and_missing_ones_get_one_answer(
    servers: Servers, models: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "catalogs"
    folder.mkdir()
    (tmp_path / "outside.json").write_text(json.dumps({"type": "Catalog", "id": "outside-secret-id"}))
    client = _client(servers, models, tmp_path, local_folders=[str(folder)])
    answers = set()
    for stac in (
        "/etc/shadow",
        "/etc/passwd",
        "/root/.bash_history",
        "/nonexistent/catalog.json",
        str(tmp_path / "outside.json"),
        f"{folder}/../outside.json",
        f"file://{folder}/%2e%2e/outside.json",
        str(folder / "missing.json"),
    ):
        body = _refused(client, servers, stac)
        assert "outside-secret-id" not in json.dumps(body)
        answers.add(json.dumps(body).replace(json.dumps(repr(stac))[1:-1], "PATH"))
    assert len(answers) == 1, answers


@pytest.mark.parametrize("entry", ["exa mple.com", "http://127.0.0.1:1\\@example.com/", "ftp://example.com/"])
def test_a_bad_allow_list_entry_fails_at_start_up(entry: str) -> None:
    from pydantic import ValidationError

    from service.settings import ServiceSettings

    with pytest.raises(ValidationError, match="allowed_hosts"):
        ServiceSettings(allowed_hosts=[entry])
