"""SSRF battery against the tiler with an http prefix allowed: real loopback servers and a canary.

Allowed: the ``/runs/`` prefix of a file server, a whole server that redirects every request to the
canary, and a local folder. The canary is off the list and must see zero requests whatever the
``url`` parameter, STAC asset href or run link says; every trick gets a 403.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.http_server import ServerHandle, start_http_server
from tests.support.scripted_server import ScriptedServer, redirect_everything_to
from tests.tiler.conftest import Runs
from tiler.app import create_app
from tiler.settings import TilerSettings

CANARY_BODY = "CANARY-SECRET-PAGE"
INTERNAL_PREFIX = "http://minio.internal.example:9000/maps/"
"""An allow-list entry no request names: an answer naming it tells the client what the tiler may reach."""


@dataclass(frozen=True)
class Setup:
    """The servers, the local folder and the tiler of the battery."""

    canary: ScriptedServer
    redirector: ScriptedServer
    files: ServerHandle
    local: Path
    client: TestClient

    def refused(self, path: str, url: str, **params: str) -> None:
        """``GET path?url=...`` is a 403, and the canary was not contacted."""
        self.canary.clear()
        response = self.client.get(path, params={"url": url, **params})
        assert response.status_code == 403, (path, url, response.status_code, response.text)
        assert CANARY_BODY not in response.text
        assert INTERNAL_PREFIX not in response.text  # HTTP review: the 403 listed the whole allow-list
        assert self.canary.requests() == [], (path, url)


def _evil_item(item: dict, href: str) -> dict:
    evil = json.loads(json.dumps(item))
    for asset in evil["assets"].values():
        asset["href"] = href
    return evil


@pytest.fixture(scope="module")
def setup(tiler_runs: Runs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    canary = ScriptedServer({"*": {"status": 200, "body": CANARY_BODY}})
    redirector = ScriptedServer(redirect_everything_to(canary.base_url))
    root = tmp_path_factory.mktemp("tiler-ssrf")
    runs = root / "served" / "runs"
    shutil.copytree(tiler_runs.main, runs / "main")
    (root / "served" / "secret.tif").write_bytes((tiler_runs.main / "classes.tif").read_bytes())
    item = json.loads((tiler_runs.main / "item.json").read_text())
    item["assets"]["classes"]["href"] = "./classes.tif"
    local = root / "local"
    evil = {
        "canary": canary.url("runs/main/classes.tif"),
        "redirect": redirector.url("runs/main/classes.tif"),
        "vsizip": f"/vsizip//{root}/x.zip/classes.tif",
        "local": "file:///etc/passwd",
        "backslash": f"http://127.0.0.1:{canary.port}\\@127.0.0.1:1/runs/main/classes.tif",
        # HTTP review: an allowed folder, named by a remote item, was read from the tiler's disk
        "allowed-folder": str(local / "run" / "classes.tif"),
        "allowed-folder-url": f"file://{local}/run/classes.tif",
    }
    for name, href in evil.items():
        (runs / "main" / f"evil-{name}.json").write_text(json.dumps(_evil_item(item, href)))
    (local / "run").mkdir(parents=True)
    shutil.copy(tiler_runs.main / "classes.tif", local / "run" / "classes.tif")
    run_item = json.loads((tiler_runs.main / "item.json").read_text())
    run_item["links"] = [
        {"rel": "derived_from", "href": canary.url("item.json"), "type": "application/json"},
        {"rel": "derived_from", "href": redirector.url("item.json"), "type": "application/json"},
    ]
    (local / "run" / "item.json").write_text(json.dumps(run_item))
    files = start_http_server(root / "served")
    settings = TilerSettings(
        allow=[f"{files.base_url}/runs/", f"{redirector.base_url}/", str(local), INTERNAL_PREFIX],
        runs_dir=local,
    )
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    yield Setup(canary, redirector, files, local, client)
    for server in (canary, redirector):
        server.close()
    files.close()


def test_the_allowed_prefix_serves_when_nothing_is_off_the_list(setup: Setup) -> None:
    """Control: the same map and item through the allowed prefix and folder work."""
    ok = setup.client.get("/cog/info", params={"url": setup.files.url("runs/main/classes.tif")})
    assert ok.status_code == 200, ok.text
    item = setup.client.get(
        "/stac/info", params={"url": setup.files.url("runs/main/item.json"), "assets": "classes"}
    )
    assert item.status_code == 200, item.text
    assert (
        setup.client.get("/cog/info", params={"url": str(setup.local / "run" / "classes.tif")}).status_code
        == 200
    )
    assert setup.canary.requests() == []


def test_tricks_in_the_url_parameter_are_403(setup: Setup) -> None:
    canary, files = setup.canary, setup.files
    tricks = [
        f"http://127.0.0.1:{canary.port}\\@127.0.0.1:{files.port}/runs/main/classes.tif",
        f"http://127.0.0.1:{files.port}@127.0.0.1:{canary.port}/runs/main/classes.tif",
        f"HtTp://127.0.0.1:{canary.port}/runs/main/classes.tif",
        f"http%3A//127.0.0.1:{canary.port}/runs/main/classes.tif",
        f"/vsicurl/http://127.0.0.1:{canary.port}/runs/main/classes.tif",
        f"/vsicurl?url=http://127.0.0.1:{canary.port}/runs/main/classes.tif",
        f"/vsizip//{setup.local}/x.zip/classes.tif",
        f"{files.base_url}/runs/../secret.tif",
        f"{files.base_url}/runs/%2e%2e/secret.tif",
        f"{files.base_url}/runs%2F..%2Fsecret.tif",
    ]
    files.requests.clear()
    for url in tricks:
        for path in ("/cog/info", "/legend", "/backdrop"):
            setup.refused(path, url)
    assert not [r for r in files.requests.records() if "secret" in r.path]


def test_redirects_from_an_allowed_prefix_are_not_followed_by_gdal(setup: Setup) -> None:
    url = setup.redirector.url("runs/main/classes.tif")
    for path in ("/cog/info", "/cog/tiles/WebMercatorQuad/14/14556/6451.png"):
        setup.refused(path, url)


@pytest.mark.parametrize(
    "name", ["canary", "redirect", "vsizip", "local", "backslash", "allowed-folder", "allowed-folder-url"]
)
def test_stac_asset_hrefs_off_the_list_are_403(setup: Setup, name: str) -> None:
    setup.refused("/stac/info", setup.files.url(f"runs/main/evil-{name}.json"), assets="classes")


def test_run_links_off_the_list_are_not_read(setup: Setup) -> None:
    setup.canary.clear()
    runs = setup.client.get("/runs")
    assert runs.status_code == 200, runs.text
    assert [run["backdrop"] for run in runs.json()] == [None]
    assert setup.canary.requests() == []


def test_a_vrt_served_as_a_tif_is_not_opened(setup: Setup) -> None:
    """GDAL takes a file for what its content says: a VRT named .tif on the allowed prefix, naming the canary.

    Opened as a VRT (the control, plain rasterio), GDAL fetches the canary; the tiler opens every raster
    as GTiff only, so it refuses the file and the canary sees nothing.
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    from lulc.gdal_env import gdal_env

    served = setup.local.parent / "served" / "runs" / "main"
    with rasterio.open(served / "classes.tif") as src:
        width, height = src.width, src.height
    source = f"/vsicurl/{setup.canary.url('runs/main/classes.tif')}"
    (served / "disguised.tif").write_text(
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><VRTRasterBand dataType="Byte" band="1">'
        f'<SimpleSource><SourceFilename relativeToVRT="0">{source}</SourceFilename><SourceBand>1</SourceBand>'
        f"</SimpleSource></VRTRasterBand></VRTDataset>"
    )
    url = setup.files.url("runs/main/disguised.tif")
    setup.canary.clear()
    with pytest.raises(RasterioIOError), gdal_env(), rasterio.open(url) as src:
        src.read(1, window=((0, 1), (0, 1)))
    assert setup.canary.requests(), "control: GDAL alone follows the VRT to the canary"
    setup.canary.clear()
    for path in ("/cog/info", "/cog/tiles/WebMercatorQuad/14/14556/6451.png"):  # /legend reads the item
        response = setup.client.get(path, params={"url": url})
        assert response.status_code in (400, 404), (path, response.status_code, response.text)
    assert setup.client.post("/statistics", params={"url": url}, json=_anywhere()).status_code in (400, 404)
    assert setup.canary.requests() == []


def _anywhere() -> dict:
    return {"type": "Polygon", "coordinates": [[[-179, -80], [179, -80], [179, 80], [-179, 80], [-179, -80]]]}


@pytest.mark.parametrize(  # sizes in GDAL's 16 KiB chunks (it rounds up); "x": not a size, the default
    ("header_size", "first_read"), [(1.5e9, 1 << 20), (196_608, 196_608), ("x", 65536)]
)
def test_an_items_header_size_cannot_make_every_open_read_megabytes(
    setup: Setup, header_size: object, first_read: int
) -> None:
    """Review: rio-tiler hands `file:header_size` to GDAL; 1.5e9 made every open read 10 MiB (cap: 1 MiB)."""
    import re
    from uuid import uuid4

    served = setup.local.parent / "served" / "runs" / "main"
    name = f"header-{uuid4().hex}"  # a file GDAL has never opened
    # the map and 12 MiB of padding after it (ignored by TIFF readers): GDAL reads no more than a file's size
    (served / f"{name}.tif").write_bytes((served / "classes.tif").read_bytes() + bytes(12 << 20))
    item = json.loads((served / "item.json").read_text())
    item["assets"] = {"classes": {**item["assets"]["classes"], "href": f"./{name}.tif"}}
    item["assets"]["classes"]["file:header_size"] = header_size
    (served / f"{name}.json").write_text(json.dumps(item))
    setup.files.requests.clear()
    response = setup.client.get(
        "/stac/info", params={"url": setup.files.url(f"runs/main/{name}.json"), "assets": "classes"}
    )
    assert response.status_code == 200, response.text
    spans = [
        int(m[2]) - int(m[1]) + 1
        for r in setup.files.requests.records()
        if r.path.endswith(".tif") and (m := re.fullmatch(r"bytes=(\d+)-(\d+)", r.range or ""))
    ]
    assert max(spans) == first_read, spans  # GDAL's first read: the bytes it ingests at open


def test_an_item_is_read_once_for_the_tiles_of_a_map_not_once_a_tile(setup: Setup) -> None:
    """Diff review: the reader's own bounded fetch read the item at every request (rio-tiler's was cached)."""
    from uuid import uuid4

    served = setup.local.parent / "served" / "runs" / "main"
    name = f"item-{uuid4().hex}.json"
    item = json.loads((served / "item.json").read_text())
    item["assets"] = {"classes": {**item["assets"]["classes"], "href": "./classes.tif"}}
    (served / name).write_text(json.dumps(item))
    setup.files.requests.clear()
    for _ in range(3):
        answer = setup.client.get(
            "/stac/info", params={"url": setup.files.url(f"runs/main/{name}"), "assets": "classes"}
        )
        assert answer.status_code == 200, answer.text
    records = [(r.method, r.path, r.range) for r in setup.files.requests.records()]
    reads = [r for r in records if r[:2] == ("GET", f"/runs/main/{name}") and r[2] is None]  # not the probes
    assert len(reads) == 1, records


def test_an_s3_item_url_is_a_clear_400() -> None:
    """Diff review: httpx cannot read s3://, and the item was a 502 naming an unsupported protocol."""
    client = TestClient(create_app(TilerSettings(allow=["s3://bucket/"])), raise_server_exceptions=False)
    answer = client.get("/stac/info", params={"url": "s3://bucket/run/item.json", "assets": "classes"})
    assert answer.status_code == 400, answer.text
    assert "documents are read over http(s) or from local files, not s3://" in answer.json()["detail"]


def test_a_local_item_rewritten_in_place_is_read_anew(setup: Setup, tmp_path: Path) -> None:
    """Diff review: the kept item of a local run rewritten in place was served for a minute."""
    import os

    served = setup.local / "run"
    item = json.loads((served / "item.json").read_text())
    rewritten = tmp_path / "run"
    shutil.copytree(served, rewritten)
    settings = TilerSettings(allow=[str(tmp_path)])
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    url = str(rewritten / "item.json")
    assets = client.get("/stac/assets", params={"url": url}).json()
    assert "classes" in assets
    item["assets"]["renamed"] = item["assets"].pop("classes")
    (rewritten / "item.json").write_text(json.dumps(item))
    stat = (rewritten / "item.json").stat()
    os.utime(rewritten / "item.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a later write
    renamed = client.get("/stac/assets", params={"url": url}).json()
    assert "renamed" in renamed
    assert "classes" not in renamed


def test_a_redirect_within_the_list_is_followed_by_gdal_from_the_href(setup: Setup) -> None:
    """GDAL opens the checked URL and follows its redirect itself, so a signed redirect stays fresh.

    Review: the tiler handed GDAL the redirect's target, cached 10 minutes: a signature that expired sooner
    answered 403 until then.
    """
    with ScriptedServer(redirect_everything_to(setup.files.base_url)) as signer:
        allow = [f"{setup.files.base_url}/runs/", f"{signer.base_url}/"]
        with TestClient(create_app(TilerSettings(allow=allow)), raise_server_exceptions=False) as client:
            url = signer.url(f"runs/main/classes.tif?sig={id(signer)}")
            response = client.get("/cog/info", params={"url": url})
            assert response.status_code == 200, response.text
        requests = signer.requests()
    assert len(requests) > 2, requests  # the check's HEAD and GET, then GDAL's own


def test_a_remote_series_links_no_local_item(setup: Setup) -> None:
    """HTTP review: a collection served from an allowed host counted the maps of an allowed local folder."""
    item = json.loads((setup.local / "run" / "item.json").read_text())
    polygon = item["geometry"]
    path = setup.files.directory / "runs" / "main" / "collection-evil.json"
    url = setup.files.url("runs/main/collection-evil.json")
    for href in (str(setup.local / "run" / "item.json"), f"file://{setup.local}/run/item.json"):
        path.write_text(
            json.dumps({"type": "Collection", "id": "s", "links": [{"rel": "item", "href": href}]})
        )
        response = setup.client.post("/statistics/series", params={"url": url}, json=polygon)
        assert response.status_code == 403, (href, response.text)
    # control, and the other half of the fix: a host-relative href is a path on the collection's host (it
    # was taken for a local path)
    link = {"rel": "item", "href": "/runs/main/item.json"}
    path.write_text(json.dumps({"type": "Collection", "id": "s", "links": [link]}))
    response = setup.client.post("/statistics/series", params={"url": url}, json=polygon)
    assert response.status_code == 200, response.text
    (period,) = response.json()["periods"]
    assert period["item"] == setup.files.url("runs/main/item.json")
