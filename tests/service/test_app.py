"""The service's HTTP API against real parts: a demo world over loopback HTTP, real ONNX models, real COGs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import rasterio
import uvicorn
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import ServiceSettings
from tests.service.app_support import (
    World,
    blocking_provider,
    build_model,
    models_dir,
    service_settings,
    shared_world,
)
from tests.support.http_server import TOKEN_PATH, start_http_server
from tests.support.stac_validation import assert_valid_stac, assert_valid_stac_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return shared_world(tmp_path_factory)


@pytest.fixture(scope="module")
def models(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models_dir(tmp_path_factory.mktemp("app-models"), world)


def client_for(settings: ServiceSettings, **kwargs: Any) -> TestClient:
    return TestClient(create_app(settings, **kwargs), raise_server_exceptions=False)


def assert_json_error(response: httpx.Response, status: int, error_type: str, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail", "type"}
    assert body["type"] == error_type
    for word in words:
        assert word in json.dumps(body["detail"], ensure_ascii=False), body
    return body


def wait_for_job(client: TestClient, href: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(href)
        assert status.status_code == 200, status.text
        body = status.json()
        if body["status"] != "running":
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {href} still running after {timeout} s")


# --- health, models, OpenAPI -------------------------------------------------------------------


def test_healthz_and_openapi(world: World, models: Path, tmp_path: Path) -> None:
    client = client_for(service_settings(tmp_path, world, models, max_concurrent_jobs=3))
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["max_concurrent_jobs"] == 3
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths) >= {"/classify", "/jobs/{job_id}", "/models", "/healthz"}
    classify = paths["/classify"]["post"]
    assert classify["tags"] == ["classify"]
    assert classify["summary"]
    assert {"200", "202", "400", "403", "413", "429"} <= set(classify["responses"])
    assert classify["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("ClassifyBody")
    for path, method in (("/jobs/{job_id}", "get"), ("/models", "get"), ("/healthz", "get")):
        assert paths[path][method]["summary"], path
        assert paths[path][method]["tags"], path
    assert "securitySchemes" not in spec.get("components", {})  # no token: no 401 anywhere
    assert not [op for item in paths.values() for op in item.values() if "401" in op["responses"]]
    assert "422" not in paths["/jobs/{job_id}"]["get"]["responses"]  # a str path parameter cannot fail
    guarded = client_for(service_settings(tmp_path, world, models, auth_token="t"))
    spec = guarded.get("/openapi.json", headers={"Authorization": "Bearer t"}).json()
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "401" in spec["paths"]["/models"]["get"]["responses"]
    assert "401" not in spec["paths"]["/healthz"]["get"]["responses"]


def test_models_lists_good_and_broken_models(world: World, models: Path, tmp_path: Path) -> None:
    client = client_for(service_settings(tmp_path, world, models))
    listing = client.get("/models")
    assert listing.status_code == 200
    by_id = {m["id"]: m for m in listing.json()["models"]}
    assert set(by_id) == {"demo", "broken"}
    demo = by_id["demo"]
    assert demo["error"] is None
    assert demo["name"] == "demo-rf"
    assert demo["bands"] == ["blue", "green", "red", "nir", "swir16"]
    assert demo["resolution"] == 10.0
    assert [c["value"] for c in demo["classes"]] == list(world.class_values)
    assert "not a readable ONNX model" in by_id["broken"]["error"]
    assert str(models) not in by_id["broken"]["error"]  # the model's id, not the server's folders
    assert by_id["broken"]["error"].startswith("broken")
    unknown = client.post("/classify", json={"aoi": world.aoi(), "datetime": world.datetime, "model": "nope"})
    assert unknown.status_code == 404
    assert str(models) not in unknown.text


def test_errors_name_no_part_of_the_server_s_set_up(
    world: World, models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers name the default STAC source and the local folders as the operator set them, not resolved.

    HTTP review: a "no imagery" 404 named the default catalog (an internal URL, or the absolute path of a
    local one); a source in a relative local folder came back as the server's absolute path.
    """
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wl").mkdir()
    (tmp_path / "wl" / "aoi.geojson").write_text(json.dumps(world.aoi()))
    client = client_for(service_settings(tmp_path, world, models, local_folders=["wl"]))
    far = {"aoi": world.aoi(dx=5.0), "datetime": world.datetime, "model": "demo"}
    response = client.post("/classify", json=far)
    assert response.status_code == 404, response.text
    assert world.catalog_url not in response.text
    assert response.json()["detail"].startswith("no items of static catalog [the service's default]")
    response = client.post("/classify", json={**far, "stac": "wl/aoi.geojson"})
    assert response.status_code == 400, response.text  # the order's mistake: it was a 502 (HTTP review)
    assert response.json()["type"] == "InputError"
    assert str(tmp_path) not in response.text
    assert response.json()["detail"].startswith("catalog wl/aoi.geojson could not be read as STAC")


def test_a_failed_publication_names_the_public_url_not_the_store() -> None:
    """HTTP review: with ``output_public_url`` set, a failed upload named the private bucket behind it."""
    from service.http_errors import error_body, server_texts
    from service.publish import PublishError

    settings = ServiceSettings(
        output_url="s3://secret-bucket/internal/", output_public_url="https://cdn.example/maps"
    )
    error = PublishError("cannot write to output destination s3://secret-bucket/internal/job-1: HTTP error")
    detail = error_body(error, server_texts(settings))["detail"]
    assert detail == "cannot write to output destination https://cdn.example/maps/job-1: HTTP error"
    alone = ServiceSettings(output_url="s3://secret-bucket/internal")
    assert "secret-bucket" not in error_body(error, server_texts(alone))["detail"]


def test_the_default_source_is_hidden_in_the_urls_it_leads_to() -> None:
    """The default source is hidden in its pages' and items' URLs too.

    Diff review: a ``stac_url`` ending in ``/`` was not hidden in its pages' URLs, nor a static catalog's
    folder in its items'.
    """
    from lulc.errors import SourceError
    from service.http_errors import error_body, server_texts

    api = ServiceSettings(
        stac_url="https://stac.internal.example/api/", allowed_hosts=["stac.internal.example"]
    )
    error = SourceError("STAC API https://stac.internal.example/api/search could not be read")
    assert (
        error_body(error, server_texts(api))["detail"]
        == "STAC API [the service's default]/search could not be read"
    )
    catalog = ServiceSettings(
        stac_url="https://stac.internal.example/cat/catalog.json", allowed_hosts=["stac.internal.example"]
    )
    error = SourceError("STAC item https://stac.internal.example/cat/items/x.json could not be reached")
    detail = error_body(error, server_texts(catalog))["detail"]
    assert detail == "STAC item [the service's default]/items/x.json could not be reached"
    # a default catalog in a local folder: the folder keeps the name clients give it
    local = ServiceSettings(stac_url="wl/catalog.json", local_folders=["wl"])
    folder = str(Path("wl").resolve())
    detail = error_body(SourceError(f"catalog {folder}/aoi.geojson is not JSON"), server_texts(local))[
        "detail"
    ]
    assert detail == "catalog wl/aoi.geojson is not JSON"


def test_a_relative_models_folder_is_kept_out_of_model_errors(tmp_path: Path) -> None:
    """A model's error names it by its id, whatever the hash seed.

    HTTP review: with ``models_dir=models`` it named the server's absolute path for half the seeds (the
    relative folder was replaced first, inside the absolute one).
    """
    (tmp_path / "models" / "broken").mkdir(parents=True)
    item = {"assets": {"model": {"href": "missing.onnx", "roles": ["mlm:model"]}}}  # the file is not there
    (tmp_path / "models" / "broken" / "model.json").write_text(json.dumps(item))
    script = (
        "from service.model_registry import ModelDirectory\n"
        "try:\n"
        "    ModelDirectory('models').get('broken')\n"
        "except Exception as exc:\n"
        "    print(exc)\n"
    )
    for seed in range(6):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
        )
        assert done.stdout.startswith("model file broken/missing.onnx does not exist"), (seed, done.stdout)
        assert str(tmp_path) not in done.stdout, seed


# --- classification ------------------------------------------------------------------------------


def test_small_aoi_is_answered_synchronously(world: World, models: Path, tmp_path: Path) -> None:
    settings = service_settings(tmp_path, world, models, sync_max_km2=100.0)
    client = client_for(settings)
    response = client.post(
        "/classify", json={"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded"
    assert 0.1 < body["area_km2"] < 1.0
    item = body["item"]
    assert item["type"] == "Feature"
    classes_asset = item["assets"]["classes"]
    assert [c["value"] for c in classes_asset["classification:classes"]] == list(world.class_values)
    # outputs exist where the response says, and the COG holds only class values and nodata
    cog = Path(body["assets"]["classes.tif"])
    assert cog.parent == settings.output_dir.resolve() / body["job_id"]
    assert classes_asset["href"] == str(cog)
    assert Path(body["assets"]["item.json"]).is_file()
    with rasterio.open(cog) as src:
        assert src.dtypes[0] == "uint8"
        assert src.nodata == 255
        assert src.block_shapes[0] == (512, 512)  # COG tiles, whatever the processing block size
        values = set(src.read(1).ravel().tolist())
    assert values <= {*world.class_values, 255}
    assert values & set(world.class_values)
    # tile URLs point the tiler at the COG
    tiles = urlparse(body["tiles"]["classes"])
    assert body["tiles"]["classes"].startswith(
        "http://tiler.test:8001/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png?"
    )
    assert parse_qs(tiles.query)["url"] == [str(cog)]
    assert body["stats"]


def test_an_aoi_with_heights_and_an_unlocated_feature_maps_as_the_plain_polygon(
    world: World, models: Path, tmp_path: Path
) -> None:
    """AOI review: POST /classify refused the heights and null features that `lulc classify --aoi` took."""
    client = client_for(service_settings(tmp_path, world, models, sync_max_km2=100.0))
    flat = world.aoi()
    raised = {"type": "Polygon", "coordinates": [[[*p, 12.5] for p in flat["coordinates"][0]]]}
    aoi = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": raised},
            {"type": "Feature", "properties": {"note": "unlocated"}, "geometry": None},
        ],
    }
    answers = [
        client.post("/classify", json={"aoi": a, "datetime": world.datetime, "model": "demo"})
        for a in (aoi, flat)
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
    given, plain = (a.json() for a in answers)
    assert given["stats"] == plain["stats"]
    assert given["item"]["geometry"] == plain["item"]["geometry"]


def test_a_minimum_mapping_unit_publishes_the_cleaned_map_beside_the_map(
    world: World, models: Path, tmp_path: Path
) -> None:
    import numpy as np
    import rasterio.features

    from tests.support.stac_validation import assert_valid_stac_file

    settings = service_settings(tmp_path, world, models, sync_max_km2=100.0)
    body = {"aoi": world.aoi(), "datetime": world.datetime, "model": "demo", "mmu_ha": 0.05}
    response = client_for(settings).post("/classify", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["item"]["properties"]["lulc:mmu_ha"] == 0.05
    assets = result["assets"]
    assert {"clean/classes.tif", "clean/item.json", "clean/stats.json"} <= set(assets)
    assert parse_qs(urlparse(result["tiles"]["clean"]).query)["url"] == [assets["clean/classes.tif"]]
    with rasterio.open(assets["classes.tif"]) as src:
        raw = src.read(1)
    with rasterio.open(assets["clean/classes.tif"]) as src:
        cleaned = src.read(1)
    clean_item = assert_valid_stac_file(Path(assets["clean/item.json"]))
    threshold = clean_item["properties"]["lulc:mmu_pixels"]
    assert threshold == 5  # 0.05 ha of 10 m pixels
    expected = rasterio.features.sieve(raw, threshold, mask=raw != 255, connectivity=4)
    assert np.array_equal(cleaned, expected)
    assert (cleaned != raw).any()  # control: the unit removed patches


def test_large_aoi_gets_a_job_to_poll(world: World, models: Path, tmp_path: Path) -> None:
    publish_to = tmp_path / "published"
    settings = service_settings(
        tmp_path,
        world,
        models,
        sync_max_km2=0.01,
        output_url=publish_to.as_uri(),
        output_public_url="https://outputs.example/lulc",
    )
    client = client_for(settings)
    response = client.post(
        "/classify",
        json={"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"},
        headers={"Host": "evil.example"},  # the client's Host header names no link of ours
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "running"
    assert response.headers["location"] == accepted["href"] == f"/jobs/{accepted['job_id']}"
    done = wait_for_job(client, accepted["href"])
    assert done["status"] == "succeeded", done
    assert done["progress"]["done"] == done["progress"]["total"] >= 1
    result = done["result"]
    job_id = accepted["job_id"]
    # published to output_url/<job id>, announced under the public URL, work directory cleaned up
    assert result["output_url"] == f"https://outputs.example/lulc/{job_id}"  # not where it was written
    assert (publish_to / job_id / "classes.tif").is_file()
    assert (publish_to / job_id / "item.json").is_file()
    assert not (settings.output_dir / job_id).exists()
    assert result["assets"]["classes.tif"] == f"https://outputs.example/lulc/{job_id}/classes.tif"
    assert result["item"] is None  # a poll gives the item by its URL: the service keeps no AOI geometry
    assert (
        result["item_url"]
        == result["assets"]["item.json"]
        == f"https://outputs.example/lulc/{job_id}/item.json"
    )
    published_item = json.loads((publish_to / job_id / "item.json").read_text())
    assert published_item["assets"]["classes"]["href"] == "./classes.tif"  # portable: relative on disk
    # the link to the model led from the work folder to the models directory; published elsewhere it
    # would lead nowhere: gone (no models_public_url), the model still named
    assert [link["href"] for link in published_item["links"] if "://" not in link["href"]] == []
    assert published_item["properties"]["lulc:model"] == "demo-rf-1"


def test_a_relative_output_url_gives_absolute_urls(
    world: World, models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs review: ``LULC_SERVICE_OUTPUT_URL=published`` answered ``item_url: published/<job>/item.json``."""
    monkeypatch.chdir(tmp_path)
    client = client_for(service_settings(tmp_path, world, models, output_url="published"))
    response = client.post(
        "/classify", json={"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["output_url"] == str(tmp_path / "published" / result["job_id"])
    assert result["item_url"] == str(tmp_path / "published" / result["job_id"] / "item.json")
    assert Path(result["item_url"]).is_file()
    # diff review: a URL and a home folder are not relative folders
    for given, read in [("file:/data/out", "file:/data/out"), ("~/out", str(Path.home() / "out"))]:
        assert service_settings(tmp_path, world, models, output_url=given).output_url == read


def test_published_items_link_their_model_under_models_public_url(
    world: World, models: Path, tmp_path: Path
) -> None:
    publish_to = tmp_path / "published"
    settings = service_settings(
        tmp_path,
        world,
        models,
        output_url=publish_to.as_uri(),
        models_public_url="https://models.example/lulc/",
    )
    response = client_for(settings).post(
        "/classify", json={"aoi": world.aoi(size_deg=0.004), "datetime": world.datetime, "model": "demo"}
    )
    assert response.status_code == 200, response.text
    folder = publish_to / response.json()["job_id"]
    published = assert_valid_stac_file(folder / "item.json")
    model_links = [link for link in published["links"] if link["title"].startswith("model ")]
    assert [link["href"] for link in model_links] == ["https://models.example/lulc/demo/model.onnx"]
    job_id = response.json()["job_id"]
    self_link = {
        "rel": "self",
        "href": f"{publish_to.as_uri()}/{job_id}/item.json",
        "type": "application/geo+json",
    }
    assert response.json()["item"]["links"] == [*published["links"], self_link]


def test_the_answers_item_links_resolve_away_from_its_folder(
    world: World, models: Path, tmp_path: Path
) -> None:
    """STAC review: the answer's item had absolute asset hrefs but links relative to a folder it is not in."""
    client = client_for(service_settings(tmp_path, world, models))
    request = {"aoi": world.aoi(size_deg=0.004), "datetime": world.datetime, "model": "demo", "mmu_ha": 0.05}
    response = client.post("/classify", json=request)
    assert response.status_code == 200, response.text
    item = response.json()["item"]
    assert_valid_stac(item, "the answer's item")
    hrefs = {link["rel"]: link["href"] for link in item["links"]}
    assert hrefs["self"] == response.json()["item_url"]
    on_disk = json.loads(Path(hrefs["self"]).read_text())
    assert any(link["href"].startswith("../") for link in on_disk["links"])  # control: relative there
    local = [link["href"] for link in item["links"] if "://" not in link["href"]]
    assert len(local) >= 3  # the clean map's item, the model, the item itself
    for href in local:
        assert Path(href).is_absolute(), href
        assert Path(href).exists(), href
    # served under a public URL but not published: links inside the folder go there, links out of it (the
    # model) stay files of this machine (diff review: the model's link became a URL no server answers)
    public = "https://maps.example/out"
    client = client_for(service_settings(tmp_path, world, models, output_public_url=public))
    answer = client.post("/classify", json=request).json()
    links = {link["rel"]: link["href"] for link in answer["item"]["links"]}
    job = answer["job_id"]
    assert links["self"] == f"{public}/{job}/item.json"
    assert links["related"] == f"{public}/{job}/clean/item.json"
    model = [link["href"] for link in answer["item"]["links"] if link.get("title", "").startswith("model ")]
    assert model
    assert all(Path(href).is_file() for href in model), model


def test_beyond_max_concurrent_jobs_gets_429(world: World, models: Path, tmp_path: Path) -> None:
    provider, runner = blocking_provider(models)
    settings = service_settings(tmp_path, world, models, sync_max_km2=0.01, max_concurrent_jobs=1)
    client = client_for(settings, models=provider)
    request = {"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}
    first = client.post("/classify", json=request)
    assert first.status_code == 202, first.text
    assert runner.entered.wait(60), "the first job never reached inference"
    try:
        asked = len(world.server.requests)
        busy = client.post("/classify", json=request)
        assert_json_error(busy, 429, "BusyError", "limit is 1")
        assert busy.headers["retry-after"] == "7"
        assert len(world.server.requests) == asked  # the 429 came before the search (diff review)
        nothing = client.post("/classify", json={**request, "datetime": "1999-01-01/1999-12-31"})
        assert_json_error(nothing, 429, "BusyError")  # busy first, whatever the search would find
        assert client.get("/healthz").json()["running_jobs"] == 1
    finally:
        runner.gate.set()
    assert wait_for_job(client, first.json()["href"])["status"] == "succeeded"
    again = client.post("/classify", json=request)  # the slot is free again
    assert again.status_code == 202, again.text
    assert wait_for_job(client, again.json()["href"])["status"] == "succeeded"


# --- bad input: JSON errors with the right status, never an HTML 500 --------------------------------

BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[140.0, 36.0], [140.01, 36.01], [140.01, 36.0], [140.0, 36.01], [140.0, 36.0]]],
}


@pytest.mark.parametrize(
    ("change", "status", "error_type", "words"),
    [
        ({"aoi": BOWTIE}, 400, "InputError", ("Self-intersection",)),
        ({"aoi": {"type": "Point", "coordinates": [140.0, 36.0]}}, 400, "InputError", ("Polygon",)),
        ({"aoi": {"type": "Polygon", "coordinates": "nope"}}, 400, "InputError", ("GeoJSON",)),
        ({"aoi": None}, 422, "RequestValidationError", ("aoi",)),
        ({"datetime": ""}, 422, "RequestValidationError", ("datetime",)),
        ({"colour": "red"}, 422, "RequestValidationError", ("colour",)),
        ({"model": "nope"}, 404, "ModelNotFoundError", ("nope", "demo")),
        ({"model": "../models/demo"}, 404, "ModelNotFoundError", ("not a model id",)),
        ({"model": "broken"}, 422, "ContractError", ("not a readable ONNX model",)),
        ({"stac": "https://evil.example/stac/v1"}, 403, "HostNotAllowedError", ("evil.example",)),
        ({"stac": "/etc/catalog.json"}, 403, "HostNotAllowedError", ("local file",)),
        ({"datetime": "1999-01-01/1999-12-31"}, 404, "NoItemsError", ("1999",)),
        ({"datetime": "last summer"}, 400, "InputError", ("last summer",)),
        ({"datetime": "2024-09-01/2024-06-01"}, 400, "InputError", ("ends before it starts",)),
        ({"crs": "EPSG:999999"}, 400, "InputError", ("EPSG:999999",)),
        ({"mmu_ha": -0.5}, 422, "RequestValidationError", ("mmu_ha",)),
        ({"mmu_ha": 1e300}, 422, "RequestValidationError", ("mmu_ha",)),
        ({"mmu_ha": 1, "mmu_connectivity": 6}, 422, "RequestValidationError", ("mmu_connectivity",)),
    ],
)
def test_bad_requests_get_json_errors(
    world: World,
    models: Path,
    tmp_path: Path,
    change: dict[str, Any],
    status: int,
    error_type: str,
    words: tuple[str, ...],
) -> None:
    client = client_for(service_settings(tmp_path, world, models))
    request = {"aoi": world.aoi(), "datetime": world.datetime, "model": "demo", **change}
    assert_json_error(client.post("/classify", json=request), status, error_type, *words)
    assert not any((tmp_path / "work").glob("*/item.json"))  # nothing published for a failed request


def test_aoi_over_the_limit_is_413(world: World, models: Path, tmp_path: Path) -> None:
    client = client_for(service_settings(tmp_path, world, models, max_aoi_km2=0.05))
    response = client.post(
        "/classify", json={"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}
    )
    assert_json_error(response, 413, "AoiTooLargeError", "0.05", "km²")


def test_aoi_outside_every_item_is_404(world: World, models: Path, tmp_path: Path) -> None:
    client = client_for(service_settings(tmp_path, world, models))
    elsewhere = world.aoi(dx=1.0)  # a degree east: no item covers it
    response = client.post("/classify", json={"aoi": elsewhere, "datetime": world.datetime, "model": "demo"})
    assert_json_error(response, 404, "NoItemsError", "AOI")


def test_asset_host_off_the_allow_list_is_403(world: World, models: Path, tmp_path: Path) -> None:
    """The catalog is allowed by URL prefix, but its COGs' host:port is not: refused before any read."""
    settings = service_settings(tmp_path, world, models, allowed_hosts=[world.catalog_url])
    client = client_for(settings)
    before = len(world.server.requests.for_path(".tif"))
    response = client.post(
        "/classify", json={"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}
    )
    assert_json_error(response, 403, "HostNotAllowedError", "is not allowed: not on the allow-list")
    assert len(world.server.requests.for_path(".tif")) == before


def test_input_errors_of_large_aois_answer_at_once(world: World, models: Path, tmp_path: Path) -> None:
    """An AOI that would become a job is still refused synchronously when its input is invalid."""
    client = client_for(service_settings(tmp_path, world, models, sync_max_km2=0.01))
    request = {"aoi": world.aoi(), "datetime": "not-a-date", "model": "demo"}
    assert_json_error(client.post("/classify", json=request), 400, "InputError", "not-a-date")
    assert client.get("/healthz").json()["running_jobs"] == 0


def test_an_aoi_without_imagery_is_a_404_also_when_it_would_be_a_job(
    world: World, models: Path, tmp_path: Path
) -> None:
    """Review: it was accepted (202) and its job failed once the search ran; no job is made now."""
    client = client_for(service_settings(tmp_path, world, models, sync_max_km2=0.01))
    response = client.post(
        "/classify", json={"aoi": world.aoi(), "datetime": "1999-01-01/1999-12-31", "model": "demo"}
    )
    assert_json_error(response, 404, "NoItemsError", "1999")
    assert client.get("/healthz").json()["running_jobs"] == 0
    assert not list((tmp_path / "work").glob("*"))  # no job folder was made


def test_failed_job_reports_its_error(world: World, models: Path, tmp_path: Path) -> None:
    from service.runner import load_model
    from tests.service.app_support import SingleModel

    provider = SingleModel("demo", ExplodingRunner(load_model(models / "demo")))
    settings = service_settings(tmp_path, world, models, sync_max_km2=0.01)
    client = client_for(settings, models=provider)
    response = client.post(
        "/classify", json={"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}
    )
    assert response.status_code == 202, response.text
    done = wait_for_job(client, response.json()["href"])
    assert done["status"] == "failed"
    assert done["error"]["type"] == "InternalError"
    assert "secret internal detail" not in json.dumps(done)
    assert done["error_status"] == 500
    assert_json_error(client.get("/jobs/does-not-exist"), 404, "JobNotFoundError", "does-not-exist")


class ExplodingRunner:
    """The demo model's contract, but inference fails with an unexpected (non-lulc) exception."""

    def __init__(self, inner: Any) -> None:
        self.contract, self.origin, self.item_href = inner.contract, inner.origin, inner.item_href

    def predict(self, features: Any, *, dissimilarity: bool = False) -> Any:
        raise ZeroDivisionError("secret internal detail")


def test_unexpected_errors_are_json_500_without_internals(world: World, models: Path, tmp_path: Path) -> None:
    from service.runner import load_model
    from tests.service.app_support import SingleModel

    provider = SingleModel("demo", ExplodingRunner(load_model(models / "demo")))
    client = client_for(service_settings(tmp_path, world, models), models=provider)
    response = client.post(
        "/classify", json={"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}
    )
    body = assert_json_error(response, 500, "InternalError", "ZeroDivisionError")
    assert "secret internal detail" not in body["detail"]
    assert not any((tmp_path / "work").rglob("*.tif"))


# --- authentication ------------------------------------------------------------------------------


def test_bearer_token(world: World, models: Path, tmp_path: Path) -> None:
    client = client_for(service_settings(tmp_path, world, models, auth_token="letmein"))
    missing = client.get("/models")
    assert_json_error(missing, 401, "AuthenticationError", "missing")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert_json_error(
        client.get("/models", headers={"Authorization": "Bearer wrong"}), 401, "AuthenticationError", "wrong"
    )
    assert_json_error(client.post("/classify", json={}), 401, "AuthenticationError")
    assert_json_error(client.get("/jobs/x"), 401, "AuthenticationError")
    assert client.get("/models", headers={"Authorization": "Bearer letmein"}).status_code == 200
    assert client.get("/healthz").status_code == 200  # probes need no token


def test_cors_only_for_configured_origins(world: World, models: Path, tmp_path: Path) -> None:
    client = client_for(service_settings(tmp_path, world, models, cors_origins=["https://map.example"]))
    preflight = {"Access-Control-Request-Method": "POST"}
    ok = client.options("/classify", headers={"Origin": "https://map.example", **preflight})
    assert ok.headers["access-control-allow-origin"] == "https://map.example"
    other = client.options("/classify", headers={"Origin": "https://other.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    # a page's script reads a job's Location and a 429's Retry-After only if they are exposed (jobs review)
    answer = client.get("/healthz", headers={"Origin": "https://map.example"})
    exposed = {h.strip().lower() for h in answer.headers["access-control-expose-headers"].split(",")}
    assert {"location", "retry-after"} <= exposed
    plain = client_for(service_settings(tmp_path, world, models)).get(
        "/healthz", headers={"Origin": "https://x.example"}
    )
    assert "access-control-allow-origin" not in plain.headers


# --- over real HTTP -----------------------------------------------------------------------------


@pytest.fixture
def live_service(world: World, models: Path, tmp_path: Path) -> Iterator[str]:
    """The app under uvicorn on a loopback socket, as `lulc serve` runs it."""
    settings = service_settings(tmp_path, world, models, auth_token="t0ken")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


def test_classify_over_real_http(world: World, live_service: str) -> None:
    auth = {"Authorization": "Bearer t0ken"}
    with httpx.Client(base_url=live_service, timeout=120) as http:
        assert http.get("/healthz").status_code == 200
        response = http.post(
            "/classify",
            json={"aoi": world.aoi(size_deg=0.003), "datetime": world.datetime, "model": "demo"},
            headers=auth,
        )
        assert response.status_code == 200, response.text
        assert Path(response.json()["assets"]["classes.tif"]).is_file()
        # HTTP review: deep nesting and a huge integer were FastAPI's 400, other bad JSON 422
        for body in (b"{not json", b"[" * 50_000, b'{"mmu_ha": ' + b"9" * 5_000 + b"}"):
            bad = http.post("/classify", content=body, headers={**auth, "Content-Type": "application/json"})
            assert_json_error(bad, 422, "RequestValidationError")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_lulc_serve_command(world: World, models: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LULC_SERVICE_MODELS_DIR": str(models),
        "LULC_SERVICE_OUTPUT_DIR": str(tmp_path / "out"),
        "LULC_SERVICE_LOG_LEVEL": "WARNING",
    }
    lulc = [sys.executable, "-m", "lulc.cli"]
    proc = subprocess.Popen([*lulc, "serve", "--port", str(port)], env=env, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/models", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited"
                assert time.monotonic() < deadline, "lulc serve did not answer"
                time.sleep(0.2)
        assert response.status_code == 200
        assert {m["id"] for m in response.json()["models"]} == {"demo", "broken"}
    finally:
        proc.terminate()
        proc.wait(20)
    bad = subprocess.run(
        [*lulc, "serve"], env={**env, "LULC_SERVICE_PORT": "zero"}, cwd=ROOT, capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "LULC_SERVICE_* settings" in bad.stderr


# --- upstream failures: 502 JSON naming what failed -------------------------------------------------


def copy_catalog(world: World, dest: Path, new_base: str) -> Path:
    """The world's STAC JSON files (no COGs) with every asset href moved to ``new_base``."""
    for path in world.root.rglob("*.json"):
        target = dest / path.relative_to(world.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text().replace(world.server.base_url, new_base))
    return dest


@pytest.mark.slow
def test_unreachable_cog_server_is_502(world: World, models: Path, tmp_path: Path) -> None:
    dead_port = free_port()  # nothing listens there: every COG read is refused
    catalog_dir = copy_catalog(world, tmp_path / "catalog", f"http://127.0.0.1:{dead_port}")
    with start_http_server(catalog_dir) as catalog_server:
        settings = service_settings(tmp_path, world, models, stac_url=catalog_server.url("catalog.json"))
        client = client_for(settings)
        response = client.post(
            "/classify", json={"aoi": world.aoi(size_deg=0.003), "datetime": world.datetime, "model": "demo"}
        )
    body = assert_json_error(response, 502, "ReadUnavailableError", str(dead_port))  # a ReadError to retry
    assert "Traceback" not in body["detail"]
    assert not any((tmp_path / "work").rglob("*.tif"))  # nothing left at a final path


def test_imagery_behind_sas_tokens_is_read_signed_and_recorded_unsigned(
    world: World, models: Path, tmp_path: Path
) -> None:
    """The Planetary Computer's way: private blob containers, a token per container from a token service.

    The COGs' server refuses every read without the token's signature (403) and hands the token out at
    the token service's path; the catalog stays public, on another server.
    """
    token = "se=2099-01-01T00%3A00Z&sp=rl&sr=c&sig=dG9rZW4tc2ln"
    aoi = world.aoi(size_deg=0.003)
    with start_http_server(world.root) as blobs:
        blobs.set_sas(token)
        catalog_dir = copy_catalog(world, tmp_path / "catalog", blobs.base_url)
        with start_http_server(catalog_dir) as catalog_server:
            stac_url = catalog_server.url("catalog.json")
            signed = service_settings(
                tmp_path / "signed",
                world,
                models,
                stac_url=stac_url,
                sas_token_url=blobs.base_url + TOKEN_PATH,
                sas_hosts=[f"127.0.0.1:{blobs.port}"],
            )
            response = client_for(signed).post(
                "/classify", json={"aoi": aoi, "datetime": world.datetime, "model": "demo"}
            )
            assert response.status_code == 200, response.text
            reads = blobs.requests.for_path(".tif")
            assert reads
            assert all("sig=dG9rZW4tc2ln" in r.query for r in reads if r.status in (200, 206))
            tokens = [r for r in blobs.requests.records() if r.path.startswith(TOKEN_PATH)]
            assert [r.path for r in tokens] == [f"{TOKEN_PATH}127/cogs"]  # one, for the one container
            # what the run recorded names the blobs unsigned
            assert "dG9rZW4tc2ln" not in response.text
            item = json.loads(Path(response.json()["assets"]["item.json"]).read_text())
            assert "dG9rZW4tc2ln" not in json.dumps(item)
            # control: without the token service the store refuses every read
            plain = service_settings(tmp_path / "plain", world, models, stac_url=stac_url)
            refused = client_for(plain).post(
                "/classify", json={"aoi": aoi, "datetime": world.datetime, "model": "demo"}
            )
    assert_json_error(refused, 502, "ReadUnavailableError", "HTTP response code: 403")


def test_a_sas_token_service_off_the_allow_list_is_refused_at_start_up(
    world: World, models: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"sas_token_url https://tokens\.example/sas is not on"):
        service_settings(tmp_path, world, models, sas_token_url="https://tokens.example/sas")
    assert service_settings(tmp_path, world, models, sas_token_url="").sas_token_url is None


def test_failing_stac_source_is_502(world: World, models: Path, tmp_path: Path) -> None:
    with start_http_server(world.root, fail_every=1) as broken:  # every request: 503
        settings = service_settings(tmp_path, world, models, stac_url=broken.url("catalog.json"))
        response = client_for(settings).post(
            "/classify", json={"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}
        )
    # a SourceError to retry; the default source by no URL (HTTP review)
    assert_json_error(
        response, 502, "SourceUnavailableError", "catalog [the service's default] answered HTTP 503"
    )


# --- a real STAC API (stac-fastapi-pgstac) as the item source --------------------------------------


@pytest.mark.slow
def test_classify_from_a_real_stac_api(pgstac_api: str, http_world: Any, tmp_path: Path) -> None:
    from tests.service.app_support import build_model

    aoi = json.loads(Path(http_world.aoi).read_text())["features"][0]["geometry"]
    xs = [p[0] for p in aoi["coordinates"][0]]
    ys = [p[1] for p in aoi["coordinates"][0]]
    cx, cy, h = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, 0.002
    small = {
        "type": "Polygon",
        "coordinates": [
            [[cx - h, cy - h], [cx + h, cy - h], [cx + h, cy + h], [cx - h, cy + h], [cx - h, cy - h]]
        ],
    }
    build_model(tmp_path / "models" / "demo", Path(http_world.classes))
    settings = ServiceSettings(
        models_dir=tmp_path / "models",
        stac_url=pgstac_api,
        allowed_hosts=["127.0.0.1"],
        output_dir=tmp_path / "work",
        sync_max_km2=100.0,
    )
    response = client_for(settings).post(
        "/classify", json={"aoi": small, "datetime": http_world.datetime_window, "model": "demo"}
    )
    assert response.status_code == 200, response.text
    item = response.json()["item"]
    sources = [link["href"] for link in item["links"] if link["rel"] == "derived_from"]
    assert any(href.startswith(pgstac_api.rstrip("/")) for href in sources), sources
    with rasterio.open(response.json()["assets"]["classes.tif"]) as src:
        assert set(src.read(1).ravel().tolist()) & set(range(1, 255))


def test_the_world_as_an_aoi_is_measured_whole_and_refused_by_the_area_limit(
    world: World, models: Path, tmp_path: Path
) -> None:
    """A world box parses (its edges run along ±180°); its area is the Earth's, far over any limit."""
    client = client_for(service_settings(tmp_path, world, models))
    earth = {
        "type": "Polygon",
        "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]],
    }
    response = client.post("/classify", json={"aoi": earth, "datetime": world.datetime, "model": "demo"})
    assert_json_error(response, 413, "AoiTooLargeError", "5.101e+08 km²")


def test_a_window_with_more_items_than_a_composite_may_hold_is_413(
    world: World, models: Path, tmp_path: Path
) -> None:
    """The demo window finds the world's 4 items: over a limit of 3, refused before any pixel is read."""
    client = client_for(service_settings(tmp_path, world, models, max_items=3))
    response = client.post(
        "/classify", json={"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}
    )
    assert_json_error(response, 413, "ItemLimitError", "4 items", "limit of 3", "narrow the datetime")
    assert not any((tmp_path / "work").glob("*/classes.tif"))
    at_limit = client_for(service_settings(tmp_path / "four", world, models, max_items=4))
    response = at_limit.post(
        "/classify", json={"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}
    )
    assert response.status_code == 200, response.text
    assert len([link for link in response.json()["item"]["links"] if link["rel"] == "derived_from"]) == 4 + 1


def test_a_seasonal_model_asked_for_part_of_a_year_is_a_400_not_a_failed_job(
    world: World, tmp_path: Path
) -> None:
    """It was accepted (202) and its job failed once it had started."""
    from lulc.seasons import Season

    models = tmp_path / "models"
    spring = [Season(name="spring", start="03-20", end="05-10")]  # one season: the small model's 6 features
    build_model(models / "seasonal", world.root / "classes.yaml", seasons=spring)
    client = client_for(service_settings(tmp_path, world, models, sync_max_km2=0.0))  # every AOI a job
    answer = client.post("/classify", json={"aoi": world.aoi(), "datetime": "2025-04", "model": "seasonal"})
    assert_json_error(answer, 400, "InputError", "whole years", "2025-04")


def test_max_cloud_cover_keeps_items_exactly_at_it(world: World, models: Path, tmp_path: Path) -> None:
    """Review: "skip items with more cloud cover than this" skipped those at it too (0 never found any)."""
    covers = sorted(  # a set: the world holds its items under two naming schemes
        {
            float(item["properties"]["eo:cloud_cover"])
            for path in world.root.rglob("*.json")
            if (item := json.loads(path.read_text())).get("type") == "Feature"
            and "eo:cloud_cover" in item["properties"]
        }
    )
    clearest = covers[0]
    assert clearest < covers[1]
    client = client_for(service_settings(tmp_path, world, models))
    request = {"aoi": world.aoi(), "datetime": world.datetime, "model": "demo", "max_cloud_cover": clearest}
    response = client.post("/classify", json=request)
    assert response.status_code == 200, response.text
    sources = [link for link in response.json()["item"]["links"] if link["rel"] == "derived_from"]
    assert len(sources) == 1 + 1  # the one item at the limit, and the model
    below = client.post("/classify", json={**request, "max_cloud_cover": clearest - 0.0001})
    assert below.status_code == 404, below.text  # just under the clearest item: none left
    assert below.json()["type"] == "NoItemsError"
    spec = client.get("/openapi.json").json()["components"]["schemas"]["ClassifyBody"]["properties"]
    assert "exactly" in spec["max_cloud_cover"]["description"]


def test_the_openapi_says_what_a_minimum_mapping_unit_does(
    world: World, models: Path, tmp_path: Path
) -> None:
    """Review: it said patches merge into their largest neighbour: as GDAL's sieve, only into one this large.

    So a unit larger than every patch changes nothing.
    """
    import numpy as np
    import rasterio

    client = client_for(service_settings(tmp_path, world, models))
    spec = client.get("/openapi.json").json()["components"]["schemas"]["ClassifyBody"]["properties"]
    description = spec["mmu_ha"]["description"]
    assert "merged into their largest neighbour" not in description
    assert "at least this large" in description
    assert "changes nothing" in description
    huge = {"aoi": world.aoi(), "datetime": world.datetime, "model": "demo", "mmu_ha": 1000.0}  # > the AOI
    response = client.post("/classify", json=huge)
    assert response.status_code == 200, response.text
    assets = response.json()["assets"]
    with rasterio.open(assets["classes.tif"]) as raw, rasterio.open(assets["clean/classes.tif"]) as cleaned:
        assert np.array_equal(raw.read(1), cleaned.read(1))


def test_failed_sync_requests_do_not_push_other_jobs_out(world: World, models: Path, tmp_path: Path) -> None:
    """Review: with 3 jobs kept, three cheap failing requests made an async job's poll a 404."""
    settings = service_settings(tmp_path, world, models, sync_max_km2=0.1, max_finished_jobs=3)
    client = client_for(settings)
    accepted = client.post(
        "/classify", json={"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}
    )
    assert accepted.status_code == 202, accepted.text
    href = accepted.json()["href"]
    assert wait_for_job(client, href)["status"] == "succeeded"
    for _ in range(4):  # small: answered within the request, and no imagery in 2030
        failed = client.post("/classify", json={"aoi": world.aoi(0.002), "datetime": "2030", "model": "demo"})
        assert failed.status_code == 404, failed.text
    assert client.get(href).json()["status"] == "succeeded"
    records = sorted(p.stem for p in (settings.output_dir / ".jobs").glob("*.json"))
    assert records == [accepted.json()["job_id"]]


def test_a_cluster_without_workers_is_a_503_with_retry_after(
    world: World, models: Path, tmp_path: Path
) -> None:
    """Review: the 503 of a Dask cluster without workers said nothing of when to come back (429 did)."""
    from service.dask_runner import NoWorkersError

    def no_workers(*_: Any) -> float:  # stands for the run's wait for a first worker, 120 s in the service
        raise NoWorkersError("no Dask worker joined the scheduler tcp://127.0.0.1:1 within 120 s")

    settings = service_settings(tmp_path, world, models, dask_scheduler="tcp://127.0.0.1:1")
    client = TestClient(create_app(settings, aoi_check=no_workers), raise_server_exceptions=False)
    answer = client.post("/classify", json={"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"})
    assert_json_error(answer, 503, "NoWorkersError", "no Dask worker joined")
    assert answer.headers["retry-after"] == str(settings.retry_after_seconds)
    responses = client.get("/openapi.json").json()["paths"]["/classify"]["post"]["responses"]
    assert responses["503"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}


def test_the_openapi_declares_location_and_retry_after(world: World, models: Path, tmp_path: Path) -> None:
    spec = client_for(service_settings(tmp_path, world, models)).get("/openapi.json").json()
    responses = spec["paths"]["/classify"]["post"]["responses"]
    assert responses["202"]["headers"]["Location"]["schema"] == {"type": "string"}
    assert responses["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}


def test_job_folders_are_scratch_only_when_published_elsewhere(
    world: World, models: Path, tmp_path: Path
) -> None:
    """Diff review: publishing into the output folder itself made its runs scratch, removed when settled."""
    work = tmp_path / "work"
    cases = [(None, False), (str(tmp_path / "published"), True), (str(work), False), (work.as_uri(), False)]
    for output_url, scratch in cases:
        settings = service_settings(tmp_path, world, models, output_url=output_url)
        assert create_app(settings).state.jobs.scratch is scratch, output_url
    kept = service_settings(
        tmp_path, world, models, output_url=str(tmp_path / "published"), keep_local_outputs=True
    )
    assert create_app(kept).state.jobs.scratch is False
