"""Tiler fixtures: a demo class map (from the demo world's truth) as runs on disk, and the tiler over HTTP."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import morecantile
import numpy as np
import pystac
import pytest
import rasterio
from PIL import Image
from rasterio.warp import transform, transform_bounds

from lulc import applicability
from lulc.classes import NODATA, ClassTable, load_class_table
from lulc.cog import CogOptions, write_cog
from tests.support.http_server import ServerHandle, start_http_server
from tests.support.serve import BackgroundServer
from tiler.app import create_app
from tiler.settings import TilerSettings

MODE = CogOptions(overview_resampling="mode", blocksize=256)  # overviews even for a 512 px map
CORS_ORIGIN = "http://example.org"
CACHE_CONTROL = "public, max-age=120"


@dataclass(frozen=True)
class World:
    """The demo world the maps are made from."""

    root: Path
    truth: Path
    table: ClassTable
    items: tuple[Path, ...]


@dataclass(frozen=True)
class Runs:
    """Classification runs on disk, shaped like the classifier service's output folders."""

    root: Path
    main: Path  # classes.tif + confidence.tif + item.json (derived_from the demo items)
    second: Path  # classes.tif + item.json, no confidence
    plain: Path  # classes.tif WITHOUT a colour table + item.json: colours must come from the item
    table: ClassTable
    classes: np.ndarray  # the main map's pixel values
    confidence: np.ndarray


@pytest.fixture(scope="session")
def tiler_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The shared ``demo_world`` when the root conftest provides it, else a small one made here."""
    try:
        shared = request.getfixturevalue("demo_world")
        root = Path(shared) if isinstance(shared, str | Path) else Path(shared.root)
    except pytest.FixtureLookupError:
        from demo.world import generate

        root = generate(tmp_path_factory.mktemp("tiler-world") / "world", size=512, seed=3).root
    catalog = pystac.Catalog.from_file(str(root / "catalog.json"))
    items = tuple(sorted(Path(item.get_self_href() or "") for item in catalog.get_items(recursive=True)))
    return World(
        root=root, truth=root / "truth.tif", table=load_class_table(root / "classes.yaml"), items=items
    )


def _item(
    folder: Path, table: ClassTable, bbox: list[float], derived: tuple[Path, ...], confidence: bool
) -> None:
    assets = {
        "classes": {
            "href": "./classes.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "classification:classes": table.to_stac(),
            "raster:bands": [{"nodata": NODATA, "data_type": "uint8"}],
        }
    }
    if confidence:
        assets["confidence"] = {
            "href": "./confidence.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
        }
    item = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": ["https://stac-extensions.github.io/classification/v2.0.0/schema.json"],
        "id": f"lulc-{folder.name}",
        "bbox": bbox,
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [
                    [bbox[0], bbox[1]],
                    [bbox[2], bbox[1]],
                    [bbox[2], bbox[3]],
                    [bbox[0], bbox[3]],
                    [bbox[0], bbox[1]],
                ]
            ],
        },
        "properties": {
            "start_datetime": "2021-07-18T00:00:00Z",
            "end_datetime": "2024-08-10T23:59:59Z",
            "datetime": None,
            "lulc:model": {"name": "demo-rf", "version": "1"},
        },
        "links": [{"rel": "derived_from", "href": str(p), "type": "application/json"} for p in derived],
        "assets": assets,
    }
    (folder / "item.json").write_text(json.dumps(item, indent=1))


@pytest.fixture(scope="session")
def tiler_runs(tiler_world: World, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Three runs made from the truth raster: a nodata strip on top, MODE overviews, class colour table."""
    root = tmp_path_factory.mktemp("tiler-runs")
    with rasterio.open(tiler_world.truth) as src:
        truth = src.read(1)
        profile = {"crs": src.crs, "transform": src.transform}
        bbox = list(transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21))
    classes = truth.copy()
    classes[: truth.shape[0] // 16] = NODATA  # a nodata strip: must render transparent
    rows, cols = np.indices(classes.shape)
    confidence = ((classes.astype(np.int32) * 7 + rows // 3 + cols // 5) % 101).astype(np.uint8)
    confidence[classes == NODATA] = NODATA
    table = tiler_world.table

    main = root / "2024" / "main"
    main.mkdir(parents=True)
    write_cog(
        main / "classes.tif", classes, nodata=NODATA, colormap=table.colormap(), options=MODE, **profile
    )
    write_cog(main / "confidence.tif", confidence, nodata=NODATA, options=MODE, **profile)
    _item(main, table, bbox, tiler_world.items, confidence=True)

    second = root / "2023" / "second"
    second.mkdir(parents=True)
    flipped = np.ascontiguousarray(classes[:, ::-1])
    write_cog(
        second / "classes.tif", flipped, nodata=NODATA, colormap=table.colormap(), options=MODE, **profile
    )
    _item(second, table, bbox, tiler_world.items[:1], confidence=False)

    plain = root / "plain" / "noct"
    plain.mkdir(parents=True)
    write_cog(plain / "classes.tif", classes, nodata=NODATA, options=MODE, **profile)
    _item(plain, table, bbox, (), confidence=False)
    (root / "not-a-run").mkdir()
    (root / "not-a-run" / "classes.tif").write_bytes(b"not a run: no item.json")
    return Runs(root, main, second, plain, table, classes, confidence)


@pytest.fixture(scope="session")
def runs_http(tiler_runs: Runs) -> Iterator[ServerHandle]:
    """The runs folder over real HTTP with Range support."""
    with start_http_server(tiler_runs.root) as server:
        yield server


@pytest.fixture(scope="session")
def tiler_settings(tiler_world: World, tiler_runs: Runs, runs_http: ServerHandle) -> TilerSettings:
    return TilerSettings(
        allow=[str(tiler_world.root), f"{runs_http.base_url}/2024/"],
        runs_dir=tiler_runs.root,
        cors_origins=[CORS_ORIGIN],
        cache_control=CACHE_CONTROL,
        colormaps=[tiler_world.root / "classes.yaml"],
    )


@pytest.fixture(scope="session")
def tiler_url(tiler_settings: TilerSettings) -> Iterator[str]:
    """The tiler, served by uvicorn on a loopback port."""
    with BackgroundServer(create_app(tiler_settings)) as server:
        yield server.url


def decode_png(content: bytes) -> np.ndarray:
    """RGBA pixels (rows, cols, 4) of a PNG."""
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(content)).convert("RGBA"))


def class_colours(table: ClassTable) -> set[tuple[int, int, int]]:
    return {c.rgba[:3] for c in table.classes}


def get(url: str, **kwargs: Any) -> httpx.Response:
    """``httpx.get`` with a timeout generous enough for a busy 2-core machine."""
    kwargs.setdefault("timeout", 60)
    return httpx.get(url, **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    """``httpx.post`` with a generous timeout."""
    kwargs.setdefault("timeout", 60)
    return httpx.post(url, **kwargs)


@pytest.fixture(scope="session")
def inside_tile(tiler_runs: Runs) -> str:
    """Path of a z14 tile over the middle of the demo map (``/cog/tiles/WebMercatorQuad/14/x/y.png``)."""
    with rasterio.open(tiler_runs.main / "classes.tif") as src:
        x, y = src.xy(src.height / 2, src.width / 2)
        lon, lat = transform(src.crs, "EPSG:4326", [x], [y])
    tile = morecantile.tms.get("WebMercatorQuad").tile(lon[0], lat[0], 14)
    return f"/cog/tiles/WebMercatorQuad/14/{tile.x}/{tile.y}.png"


@dataclass(frozen=True)
class ProductRuns:
    """Real runs made by the engine: a yearly series of the demo world, and the tutorial's ``--image`` run.

    The series has cleaned maps, probabilities and a change map; the tutorial run is made where its data is.
    """

    root: Path
    series: Path  # root/yearly: 2021, 2023, 2024 (no imagery in 2022), collection.json
    change: Path  # root/yearly/change: from 2021 to 2024
    image: Path | None  # root/inputs/s2image.tif, a copy of the tutorial scene
    tutorial: Path | None  # root/tutorial: the --image run
    table: ClassTable


@pytest.fixture(scope="session")
def product_runs(tiler_world: World, tmp_path_factory: pytest.TempPathFactory) -> ProductRuns:
    """Runs as ``lulc classify --every year --mmu-ha 0.5 --probabilities`` and ``lulc change`` make them."""
    from service.change import change_runs
    from service.engine import classify
    from service.readers import ImageReaderFactory, StacReaderFactory
    from service.request import ClassifyRequest
    from service.runner import load_model
    from service.series import classify_series
    from tests.conftest import LULC_PY
    from tests.service.conftest import train_world_model

    root = tmp_path_factory.mktemp("product-runs")
    aoi = json.loads((tiler_world.root / "aoi.geojson").read_text())
    catalog = tiler_world.root / "catalog.json"
    model = train_world_model(
        catalog,
        aoi,
        "2021/2024",
        tiler_world.root / "train.gpkg",
        tiler_world.root / "classes.yaml",
        tmp_path_factory.mktemp("product-model"),
    )
    request = ClassifyRequest(aoi=aoi, datetime="2021/2024", block_size=256, probabilities=True, mmu_ha=0.5)
    series = root / "yearly"
    classify_series(request, load_model(model), StacReaderFactory(str(catalog)), series, "year")
    change_runs(series / "2021", series / "2024", series / "change")
    image = tutorial = None
    if LULC_PY.is_dir():
        from tests.service.test_engine_image import train_tutorial_svm

        image = root / "inputs" / "s2image.tif"
        image.parent.mkdir()
        shutil.copyfile(LULC_PY / "s2image.tif", image)
        svm = train_tutorial_svm(LULC_PY, tmp_path_factory.mktemp("tutorial-svm"))
        tutorial = root / "tutorial"
        classify(
            ClassifyRequest(aoi=None, datetime="2023-05-01"),
            load_model(svm),
            ImageReaderFactory(image),
            tutorial,
        )
    return ProductRuns(root, series, series / "change", image, tutorial, tiler_world.table)


@pytest.fixture(scope="session")
def product_tiler(product_runs: ProductRuns, tiler_world: World) -> Iterator[str]:
    """The tiler over the product runs (the demo world's catalog allowed for the backdrop)."""
    settings = TilerSettings(allow=[str(tiler_world.root)], runs_dir=product_runs.root)
    with BackgroundServer(create_app(settings)) as server:
        yield server.url


THRESHOLD = 0.3
"""The AOA threshold of the review runs: the map's left half is inside (DI 0.1), its right half outside."""
LEFT_DI, RIGHT_DI = 0.1, 0.62


@dataclass(frozen=True)
class ReviewRuns:
    """Runs made from the main demo run, each with an ``aoa.tif``: one fine, some with a broken file."""

    root: Path
    url: str  # the tiler over ``root``


def _with_aoa(source: Path, folder: Path, classes: np.ndarray) -> None:
    """A copy of the run at ``source`` with an ``aoa.tif`` (left half inside, right half outside)."""
    shutil.copytree(source, folder)
    di = np.full(classes.shape, LEFT_DI)
    di[:, classes.shape[1] // 2 :] = RIGHT_DI
    stored = applicability.encode(di, THRESHOLD)
    stored[classes == NODATA] = applicability.NODATA
    with rasterio.open(source / "classes.tif") as src:
        profile = {"crs": src.crs, "transform": src.transform}
    write_cog(folder / "aoa.tif", stored, nodata=applicability.NODATA, options=MODE, **profile)
    item = json.loads((folder / "item.json").read_text())
    item["properties"]["lulc:aoa_threshold"] = THRESHOLD
    (folder / "item.json").write_text(json.dumps(item))


@pytest.fixture(scope="module")
def review_runs(
    tiler_runs: Runs, tiler_world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReviewRuns]:
    """``ok``, ``corrupt`` (a cut classes.tif), ``badaoa`` (aoa.tif not a raster), served by a tiler."""
    root = tmp_path_factory.mktemp("review-runs")
    for name in ("ok", "corrupt", "badaoa"):
        _with_aoa(tiler_runs.main, root / name, tiler_runs.classes)
    cut = (root / "corrupt" / "classes.tif").read_bytes()
    (root / "corrupt" / "classes.tif").write_bytes(cut[: len(cut) // 3])
    (root / "badaoa" / "aoa.tif").write_bytes(b"garbage")
    settings = TilerSettings(allow=[str(tiler_world.root)], runs_dir=root)
    with BackgroundServer(create_app(settings)) as server:
        yield ReviewRuns(root, server.url)
