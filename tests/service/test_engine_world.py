"""The engine on the demo world: map quality, COG structure, determinism, Dask, flaky servers, bad input."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from demo.report import on_truth_grid
from lulc.allowlist import AllowList
from lulc.classes import NODATA, load_class_table
from lulc.contract import ModelContract
from lulc.errors import ContractError, InputError, LimitError, NoItemsError, NoValidPixelsError, ReadError
from lulc.grid import Block, OutputGrid
from service.engine import ClassifyResult, classify, prepare_grid
from service.readers import BlockReader, SourceRef, StacReaderFactory
from service.request import ClassifyRequest
from service.runner import load_model
from tests.service.conftest import WORLD_BANDS, WORLD_INDICES, EngineWorld
from tests.service.engine_support import export_onnx, fit_forest, make_contract
from tests.support.http_server import Failure, ServerHandle
from tests.support.stac_validation import assert_valid_stac

OUTPUT_FILES = (
    "classes.qml",
    "classes.tif",
    "classes.tif.aux.xml",
    "confidence.tif",
    "item.json",
    "stats.json",
)


def run(world: EngineWorld, out: Path, source: str | None = None, **kwargs: Any) -> ClassifyResult:
    request = ClassifyRequest(
        aoi=world.aoi, datetime=world.datetime, block_size=kwargs.pop("block_size", 256)
    )
    factory = StacReaderFactory(source or str(world.catalog))
    return classify(request, load_model(world.model), factory, out, **kwargs)


@pytest.fixture(scope="module")
def baseline(engine_world: EngineWorld, tmp_path_factory: pytest.TempPathFactory) -> ClassifyResult:
    """The single-process run everything else is compared with (256 px blocks: several blocks)."""
    return run(engine_world, tmp_path_factory.mktemp("baseline"))


def catalog_with_cogs_at(world: Path, base_url: str, target: Path) -> Path:
    """A copy of the world's catalog JSON whose asset hrefs point at ``base_url`` (the COGs' server)."""
    shutil.copytree(world, target, ignore=shutil.ignore_patterns("cogs", "*.tif", "*.gpkg"))
    for path in target.rglob("*.json"):
        text = path.read_text()
        if "../../cogs/" in text:
            path.write_text(text.replace("../../cogs/", f"{base_url}/cogs/"))
    return target / "catalog.json"


def same_bytes(a: Path, b: Path) -> bool:
    """Identical files; for ``item.json``, identical once its relative link hrefs are resolved.

    The item's ``derived_from`` hrefs are relative to its folder (never local absolute paths), so two
    runs into folders at different depths differ there and only there.
    """
    if a.name != "item.json":
        return a.read_bytes() == b.read_bytes()

    def resolved(path: Path) -> dict[str, Any]:
        item = json.loads(path.read_text())
        for link in item["links"]:
            if "://" not in link["href"]:
                link["href"] = str((path.parent / link["href"]).resolve())
        return item

    return resolved(a) == resolved(b)


def test_map_agrees_with_truth_as_well_as_the_model_scores_on_validation_points(
    engine_world: EngineWorld, baseline: ClassifyResult
) -> None:
    mapped, truth = on_truth_grid(baseline.classes, engine_world.truth)
    valid = (mapped != NODATA) & (truth != NODATA)
    assert valid.mean() > 0.5
    agreement = float((mapped[valid] == truth[valid]).mean())

    points = gpd.read_file(engine_world.validation)
    with rasterio.open(baseline.classes) as src:
        xy = points.to_crs(src.crs).geometry
        predicted = np.array([v[0] for v in src.sample([(p.x, p.y) for p in xy])])
    labelled = predicted != NODATA
    assert labelled.mean() > 0.9
    accuracy = float((predicted[labelled] == points["label"].to_numpy()[labelled]).mean())
    assert accuracy > 0.7, "the in-test model should be a usable classifier"
    assert abs(agreement - accuracy) <= 0.02, (agreement, accuracy)


def test_output_is_a_valid_categorical_cog_with_colours_and_names(
    engine_world: EngineWorld, baseline: ClassifyResult, tmp_path: Path
) -> None:
    from rio_cogeo.cogeo import cog_validate

    classes = load_class_table(engine_world.root / "classes.yaml")
    for cog in (baseline.classes, baseline.confidence):
        assert cog is not None
        valid, errors, _ = cog_validate(str(cog))
        assert valid, errors
    # The COG alone (no .aux.xml sidecar beside it) keeps the colour table and the class names.
    alone = tmp_path / "alone.tif"
    shutil.copyfile(baseline.classes, alone)
    with rasterio.open(alone) as src:
        assert src.dtypes[0] == "uint8"
        assert src.nodata == NODATA
        assert src.block_shapes[0] == (512, 512)
        assert src.compression is not None
        colormap = src.colormap(1)
        for c in classes.classes:
            assert colormap[c.value][:3] == c.rgba[:3]
            assert src.tags(1)[f"CLASS_{c.value}"] == c.name
        assert src.overviews(1), "the COG has internal overviews"
        factors = src.overviews(1)
        width = src.width
    # The QGIS sidecar carries GDAL category names, read by GDAL itself (seen through a VRT copy).
    vrt = tmp_path / "classes.vrt"
    rasterio.shutil.copy(str(baseline.classes), str(vrt), driver="VRT")
    text = vrt.read_text()
    assert "<CategoryNames>" in text
    for c in classes.classes:
        assert f"<Category>{c.name}</Category>" in text
    # The coarsest overview holds only class values and nodata: MODE never blends classes.
    with rasterio.open(baseline.classes, overview_level=len(factors) - 1) as low:
        assert low.width == pytest.approx(width / factors[-1], abs=1)
        values = set(np.unique(low.read(1)).tolist())
    assert values <= {*classes.values, NODATA}
    assert len(values - {NODATA}) >= 3


def test_item_and_stats_describe_the_outputs(engine_world: EngineWorld, baseline: ClassifyResult) -> None:
    import pystac

    from lulc.checksum import multihash_sha256

    item = json.loads(baseline.item.read_text())
    assert item == baseline.item_dict
    assert pystac.Item.from_dict(item).id == item["id"]  # pystac reads it
    assert_valid_stac(item, "item.json")  # core + every extension it declares
    props = item["properties"]
    with rasterio.open(baseline.classes) as src:
        epsg = src.crs.to_epsg()
        assert props["proj:shape"] == [src.height, src.width]
    assert props["proj:code"] == f"EPSG:{epsg}"
    assert "proj:epsg" not in props  # projection v2 has proj:code only
    assert [c["value"] for c in props["classification:classes"]] == sorted(
        load_class_table(engine_world.root / "classes.yaml").values
    )
    assert "lulc-stac" in props["processing:software"]
    derived = [link for link in item["links"] if link["rel"] == "derived_from"]
    assert len(derived) >= 2  # the input items and the model
    assert any(link["href"].endswith("model.onnx") for link in derived)
    for key, asset in item["assets"].items():
        path = baseline.item.parent / asset["href"]
        if key == "classes_aux":  # GDAL rewrites it when a reader computes statistics: no checksum
            assert "file:checksum" not in asset
            assert "file:size" not in asset
            continue
        assert asset["file:checksum"] == multihash_sha256(path)
    assert item["assets"]["classes"]["raster:bands"][0]["nodata"] == NODATA
    stats = baseline.stats_dict
    with rasterio.open(baseline.classes) as src:
        data = src.read(1)
    for row in stats["classes"]:
        assert row["pixels"] == int((data == row["value"]).sum())
        assert row["hectares"] == pytest.approx(row["pixels"] * 0.01, rel=0.01)  # 10 m pixels = 0.01 ha
    assert stats["nodata_pixels"] == int((data == NODATA).sum())


def test_rerun_is_byte_identical(engine_world: EngineWorld, baseline: ClassifyResult, tmp_path: Path) -> None:
    # Into a folder holding the previous output, with another thread count: same bytes, no leftovers.
    folder = tmp_path / "again"
    shutil.copytree(baseline.classes.parent, folder)
    again = run(engine_world, folder, workers=1)
    assert sorted(p.name for p in folder.iterdir()) == sorted(OUTPUT_FILES)
    for name in OUTPUT_FILES:
        assert same_bytes(baseline.classes.parent / name, again.classes.parent / name), name


@pytest.mark.slow
def test_dask_local_cluster_gives_identical_bytes(
    engine_world: EngineWorld, baseline: ClassifyResult, tmp_path: Path
) -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        result = run(engine_world, tmp_path / "dask", dask_scheduler=cluster.scheduler_address)
    for name in OUTPUT_FILES:
        assert same_bytes(baseline.classes.parent / name, result.classes.parent / name), name


@pytest.mark.parametrize("failure", ["503", "drop"])
def test_a_server_failing_one_request_in_five_gives_the_identical_map(
    engine_world: EngineWorld,
    baseline: ClassifyResult,
    tmp_path: Path,
    failure: Failure,
    http_server_factory: Callable[..., ServerHandle],
) -> None:
    server = http_server_factory(engine_world.root, fail_every=5, failure=failure)
    catalog = catalog_with_cogs_at(engine_world.root, server.base_url, tmp_path / "catalog")
    result = run(engine_world, tmp_path / "out", source=str(catalog))
    failed = [r for r in server.requests if r.failed]
    ranged = [r for r in server.requests if r.range]
    assert failed, "the server did inject failures"
    assert ranged, "COG windows were read with Range requests"
    assert same_bytes(baseline.classes, result.classes)
    assert baseline.confidence is not None
    assert result.confidence is not None
    assert same_bytes(baseline.confidence, result.confidence)


def test_a_server_that_always_drops_gives_read_error_and_no_output(
    engine_world: EngineWorld, tmp_path: Path, http_server_factory: Callable[..., ServerHandle]
) -> None:
    # Catalog JSON from disk, every COG byte from a server that drops every connection.
    server = http_server_factory(engine_world.root, fail_every=1, failure="drop")
    catalog = catalog_with_cogs_at(engine_world.root, server.base_url, tmp_path / "catalog")
    out = tmp_path / "out"
    factory = StacReaderFactory(str(catalog))
    request = ClassifyRequest(aoi=engine_world.aoi, datetime=engine_world.datetime)
    with pytest.raises(ReadError, match=r"http://127\.0\.0\.1:\d+/cogs/.+\.tif"):
        classify(request, load_model(engine_world.model), factory, out)
    assert not out.exists() or not any(out.iterdir())


class FailingReader:
    """A real reader that stops working after a number of blocks, like a network that goes away."""

    def __init__(self, inner: BlockReader, fail_at: int) -> None:
        self.inner = inner
        self.fail_at = fail_at
        self.lock = threading.Lock()
        self.reads = 0

    def read(self, block: Block) -> np.ndarray:
        with self.lock:
            self.reads += 1
            if block.index >= self.fail_at:
                raise ReadError(f"injected failure at block {block.index}")
        return self.inner.read(block)

    def sources(self) -> list[SourceRef]:
        return self.inner.sources()


class FailingFactory:
    def __init__(self, inner: StacReaderFactory, fail_at: int) -> None:
        self.inner = inner
        self.fail_at = fail_at

    def prepare_grid(self, request: ClassifyRequest, contract: ModelContract) -> OutputGrid:
        return self.inner.prepare_grid(request, contract)

    def open(self, request: ClassifyRequest, grid: OutputGrid, contract: ModelContract) -> FailingReader:
        return FailingReader(self.inner.open(request, grid, contract), self.fail_at)


def test_an_interrupted_run_leaves_nothing_and_keeps_the_previous_output(
    engine_world: EngineWorld, baseline: ClassifyResult, tmp_path: Path
) -> None:
    request = ClassifyRequest(aoi=engine_world.aoi, datetime=engine_world.datetime, block_size=128)
    factory = FailingFactory(StacReaderFactory(str(engine_world.catalog)), fail_at=5)
    fresh = tmp_path / "fresh"
    with pytest.raises(ReadError, match="injected"):
        classify(request, load_model(engine_world.model), factory, fresh)
    assert not fresh.exists() or list(fresh.iterdir()) == []
    # Over a previous complete output: the old files stay exactly as they were.
    previous = tmp_path / "previous"
    shutil.copytree(baseline.classes.parent, previous)
    before = {p.name: p.read_bytes() for p in previous.iterdir()}
    with pytest.raises(ReadError):
        classify(request, load_model(engine_world.model), factory, previous)
    assert {p.name: p.read_bytes() for p in previous.iterdir()} == before


def test_prepare_grid_counts_blocks_without_reading(engine_world: EngineWorld) -> None:
    model = load_model(engine_world.model)
    request = ClassifyRequest(aoi=engine_world.aoi, datetime=engine_world.datetime, block_size=128)
    grid = prepare_grid(request, model.contract, StacReaderFactory("/nonexistent/catalog.json"))
    assert grid.crs == "EPSG:32654"
    assert grid.resolution == (10.0, 10.0)
    assert grid.n_blocks == len(list(grid.blocks())) == -(-grid.width // 128) * -(-grid.height // 128)


def test_an_aoi_reaching_past_the_imagery_claims_only_where_the_items_are(
    engine_world: EngineWorld, tmp_path: Path
) -> None:
    """Outputs review: the item's geometry was the whole AOI, 37 % of it without a pixel of imagery."""
    import shapely.geometry
    import shapely.ops

    from lulc.aoi import parse_aoi
    from lulc.sources import open_source

    items = open_source(engine_world.catalog).search(datetime=engine_world.datetime)
    covered = shapely.ops.unary_union([shapely.geometry.shape(it.geometry) for it in items if it.geometry])
    aoi = parse_aoi(engine_world.aoi)
    west, south, east, north = aoi.bounds
    wider = shapely.geometry.box(west, south, east + (east - west), north)  # its eastern half past the items
    assert not wider.within(covered.buffer(1e-6)), "the control: this AOI reaches past the imagery"
    request = ClassifyRequest(aoi=shapely.geometry.mapping(wider), datetime=engine_world.datetime)
    result = classify(
        request, load_model(engine_world.model), StacReaderFactory(str(engine_world.catalog)), tmp_path
    )
    footprint = shapely.geometry.shape(result.item_dict["geometry"])
    assert footprint.within(covered.buffer(1e-4))  # within the items (a densified outline: ~10 m leeway)
    assert footprint.area < 0.9 * wider.area
    assert result.item_dict["bbox"][2] <= covered.bounds[2] + 1e-4


def test_a_polygon_aoi_past_the_imagery_records_its_unmapped_part_and_the_tiler_counts_gaps_on_it(
    engine_world: EngineWorld, tmp_path: Path
) -> None:
    """A run's item records the part of its AOI without imagery (``lulc:unmapped``).

    Review: the item told only where its imagery was, so the tiler could not tell a polygon AOI's
    bounding-box corners (not asked for: no gap) from AOI ground without imagery (a gap).
    """
    import httpx
    import shapely.geometry
    import shapely.ops
    from rasterio.features import geometry_mask
    from rasterio.warp import transform_geom

    from lulc.aoi import parse_aoi
    from lulc.sources import open_source
    from tests.support.serve import BackgroundServer
    from tests.support.stac_validation import assert_valid_stac
    from tiler.app import create_app
    from tiler.settings import TilerSettings

    items = open_source(engine_world.catalog).search(datetime=engine_world.datetime)
    covered = shapely.ops.unary_union([shapely.geometry.shape(it.geometry) for it in items if it.geometry])
    west, south, east, north = parse_aoi(engine_world.aoi).bounds
    width, middle = east - west, (south + north) / 2
    # a diamond whose eastern point reaches past the items: its box's corners are not asked for
    diamond = shapely.geometry.Polygon(
        [(west, middle), (west + width, south), (east + width, middle), (west + width, north)]
    )
    assert not diamond.within(covered.buffer(1e-6)), "the control: this AOI reaches past the imagery"
    request = ClassifyRequest(aoi=shapely.geometry.mapping(diamond), datetime=engine_world.datetime)
    result = classify(
        request,
        load_model(engine_world.model),
        StacReaderFactory(str(engine_world.catalog)),
        tmp_path / "run",
    )
    item = result.item_dict
    assert_valid_stac(item, "item.json")
    unmapped = shapely.geometry.shape(item["properties"]["lulc:unmapped"])
    footprint = shapely.geometry.shape(item["geometry"])
    assert unmapped.area > 0.1 * diamond.area
    assert unmapped.intersection(footprint).area < 1e-3 * diamond.area  # they meet along an edge only
    assert unmapped.union(footprint).symmetric_difference(diamond).area < 1e-3 * diamond.area
    with rasterio.open(result.classes) as src:
        data = src.read(1)
        on_aoi = ~geometry_mask([transform_geom("EPSG:4326", src.crs, diamond)], data.shape, src.transform)
    gaps = int(((data == NODATA) & on_aoi).sum())
    assert 0 < gaps < int((data == NODATA).sum())  # gaps past the imagery; the box's corners are no gap
    box = shapely.geometry.mapping(diamond.envelope.buffer(0.01))
    with BackgroundServer(create_app(TilerSettings(allow=[str(tmp_path)]))) as server:
        response = httpx.post(
            f"{server.url}/statistics", params={"url": str(result.classes)}, json=box, timeout=120
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert abs(body["nodata_pixels"] - gaps) <= 0.002 * gaps  # pixel centres on the seam may fall either way
    assert body["pixels"] == body["nodata_pixels"] + int((data != NODATA).sum())


# ---------------------------------------------------------------------------------------------
# Bad input


def test_aoi_outside_every_footprint_is_no_items(engine_world: EngineWorld, tmp_path: Path) -> None:
    far = {"type": "Polygon", "coordinates": [[[10, 50], [10.01, 50], [10.01, 50.01], [10, 50.01], [10, 50]]]}
    request = ClassifyRequest(aoi=far, datetime=engine_world.datetime)
    with pytest.raises(NoItemsError, match="catalog"):
        classify(
            request, load_model(engine_world.model), StacReaderFactory(str(engine_world.catalog)), tmp_path
        )
    assert list(tmp_path.iterdir()) == []


def test_an_aoi_narrower_than_a_pixel_is_refused_before_any_read(
    engine_world: EngineWorld, tmp_path: Path
) -> None:
    """Review: it was searched and read, then blamed on clouds ("no valid (cloud-free ...) pixels")."""
    import shapely.geometry

    from lulc.aoi import parse_aoi

    x, y = parse_aoi(engine_world.aoi).centroid.coords[0]
    tiny = shapely.geometry.mapping(shapely.geometry.box(x, y, x + 1e-5, y + 1e-5))
    request = ClassifyRequest(aoi=tiny, datetime=engine_world.datetime)
    with pytest.raises(InputError, match="no pixel centre of the 10 m grid"):
        classify(
            request, load_model(engine_world.model), StacReaderFactory(str(engine_world.catalog)), tmp_path
        )
    assert list(tmp_path.iterdir()) == []


def test_a_window_without_acquisitions_is_no_items(engine_world: EngineWorld, tmp_path: Path) -> None:
    request = ClassifyRequest(aoi=engine_world.aoi, datetime="2000-01-01/2000-02-01")
    with pytest.raises(NoItemsError, match="2000-01-01"):
        classify(
            request, load_model(engine_world.model), StacReaderFactory(str(engine_world.catalog)), tmp_path
        )


def _model_variant(engine_world: EngineWorld, tmp_path: Path, **contract_args: Any) -> Path:
    classes = load_class_table(engine_world.root / "classes.yaml")
    bands = contract_args.pop("bands", WORLD_BANDS)
    indices = contract_args.pop("indices", WORLD_INDICES)
    contract = make_contract(classes, sorted(classes.values), bands=bands, indices=indices, **contract_args)
    rng = np.random.default_rng(0)
    n_features = len(bands) + len(indices)
    x = rng.random((60, n_features), dtype=np.float32)
    y = np.repeat(np.array(sorted(classes.values)), 10)
    return export_onnx(fit_forest(x, y), n_features, contract, tmp_path / "variant.onnx")


def test_every_pixel_masked_is_no_valid_pixels(engine_world: EngineWorld, tmp_path: Path) -> None:
    # A model masking every SCL class sees clouds everywhere, as in a window of only cloudy scenes.
    path = _model_variant(engine_world, tmp_path, mask_scl=list(range(12)))
    out = tmp_path / "out"
    request = ClassifyRequest(aoi=engine_world.aoi, datetime=engine_world.datetime)
    with pytest.raises(NoValidPixelsError, match="cloud-free"):
        classify(request, load_model(path), StacReaderFactory(str(engine_world.catalog)), out)
    assert not out.exists() or list(out.iterdir()) == []


def test_a_model_needing_bands_the_items_lack_is_a_contract_error(
    engine_world: EngineWorld, tmp_path: Path
) -> None:
    path = _model_variant(engine_world, tmp_path, bands=("blue", "red", "nir", "rededge1"), indices=("ndvi",))
    request = ClassifyRequest(aoi=engine_world.aoi, datetime=engine_world.datetime)
    with pytest.raises(ContractError, match="rededge1"):
        classify(request, load_model(path), StacReaderFactory(str(engine_world.catalog)), tmp_path / "out")


def test_hosts_off_the_allow_list_are_refused(
    engine_world: EngineWorld, tmp_path: Path, http_server_factory: Callable[..., ServerHandle]
) -> None:
    server = http_server_factory(engine_world.root)
    request = ClassifyRequest(aoi=engine_world.aoi, datetime=engine_world.datetime)
    refused = StacReaderFactory(server.url("catalog.json"), allow=AllowList.of(["example.com"]))
    with pytest.raises(LimitError, match=r"127\.0\.0\.1"):
        classify(request, load_model(engine_world.model), refused, tmp_path / "a")
    assert len(server.requests) == 0, "nothing is fetched from a refused host"
    # the catalog's host allowed (it also serves the COGs): the run goes through
    allowed = StacReaderFactory(server.url("catalog.json"), allow=AllowList.of([f"127.0.0.1:{server.port}"]))
    result = classify(request, load_model(engine_world.model), allowed, tmp_path / "b")
    assert result.classes.is_file()


@pytest.mark.parametrize("scheduler", ["local:0", "local:two"])
def test_a_bad_local_cluster_spec_is_an_input_error(
    engine_world: EngineWorld, tmp_path: Path, scheduler: str
) -> None:
    from lulc.errors import InputError

    with pytest.raises(InputError, match="local:N"):
        run(engine_world, tmp_path / "out", dask_scheduler=scheduler)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.pgstac
def test_a_stac_api_source_gives_the_same_map_as_the_static_catalog(
    engine_world: EngineWorld, baseline: ClassifyResult, pgstac_api: str, tmp_path: Path
) -> None:
    # pgstac's items point at cog_server, which serves the session demo world's COGs: the same bytes.
    result = run(engine_world, tmp_path / "api", source=pgstac_api)
    assert same_bytes(baseline.classes, result.classes)
    links = [link["href"] for link in result.item_dict["links"] if link["rel"] == "derived_from"]
    assert any(href.startswith(pgstac_api.rstrip("/")) for href in links), links


def test_a_scheduler_host_that_does_not_resolve_fails_at_once_and_leaves_no_folder(
    engine_world: EngineWorld, tmp_path: Path
) -> None:
    """The review's typo ``lcoal:2``: an unknown host, named with the local:N hint.

    It was distributed's connect timeout after 20 s, and an empty --out folder left behind.
    """
    from lulc.errors import InputError

    with pytest.raises(InputError, match=r"unknown host 'lcoal' \(local:N starts a local cluster\)"):
        run(engine_world, tmp_path / "runs" / "out", dask_scheduler="lcoal:2")
    assert list(tmp_path.iterdir()) == [], "the folders made for --out are removed again"
