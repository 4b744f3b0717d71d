"""The offline Sentinel-2 world: deterministic bytes, valid COGs and STAC, real structure, offsets, clouds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyogrio
import pystac
import pytest
import rasterio
import shapely
from pyproj import Transformer
from pystac.validation.stac_validator import JsonSchemaSTACValidator
from rasterio.warp import transform as warp_transform
from rio_cogeo.cogeo import cog_validate
from scipy import ndimage
from typer.testing import CliRunner

from demo.world import DemoWorld, generate
from lulc.classes import NODATA, load_class_table
from lulc.cli import app
from lulc.errors import InputError

SIZE = 640  # 10 m bands of 2 x 2 tiles with one overview; 20 m bands of one tile
SEED = 3
BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
CLEAR_SCL = (4, 5, 6)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> DemoWorld:
    return generate(tmp_path_factory.mktemp("world") / "w", size=SIZE, seed=SEED)


@pytest.fixture(scope="module")
def items(world: DemoWorld) -> list[pystac.Item]:
    catalog = pystac.Catalog.from_file(str(world.catalog))
    return sorted(catalog.get_items(recursive=True), key=lambda item: item.id)


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _read(path: Path | str) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def _up(array: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(array, 2, axis=0), 2, axis=1)


def _asset_path(item: pystac.Item, key: str) -> Path:
    return Path(item.assets[key].get_absolute_href() or "")


def _baseline_offset(item: pystac.Item) -> int:
    return 1000 if str(item.properties["s2:processing_baseline"]) >= "04.00" else 0


def test_same_seed_gives_identical_bytes_through_the_cli_and_another_seed_differs(
    world: DemoWorld, tmp_path: Path
) -> None:
    runner = CliRunner()
    again = tmp_path / "again"
    result = runner.invoke(app, ["demo-data", str(again), "--size", str(SIZE), "--seed", str(SEED)])
    assert result.exit_code == 0, result.output
    for item_id in world.item_ids:
        assert item_id in result.output
    assert "validation" in result.output
    reference = _digests(world.root)
    # 28 COGs + catalog, collection, 4 items (twice: both flavours), aoi, classes, 2 GeoPackages,
    # truth and recipe
    assert len(reference) == 4 * 7 + 2 * 6 + 6
    assert _digests(again) == reference
    # Rerunning into the same folder replaces every file by the same bytes and leaves nothing else.
    generate(again, size=SIZE, seed=SEED)
    assert _digests(again) == reference
    other = _digests(generate(tmp_path / "other", size=SIZE, seed=SEED + 1).root)
    assert other.keys() == reference.keys()
    changed = [name for name in reference if other[name] != reference[name]]
    assert "truth.tif" in changed
    assert "train.gpkg" in changed
    assert len([name for name in changed if name.endswith(".tif")]) == 4 * 7 + 1


def test_every_cog_is_valid_with_512_tiles_deflate_and_nodata(world: DemoWorld) -> None:
    tifs = sorted(world.root.rglob("*.tif"))
    assert len(tifs) == 4 * 7 + 1
    for tif in tifs:
        valid, errors, warnings = cog_validate(str(tif), quiet=True)
        assert valid, (tif, errors)
        assert not errors
        assert not warnings, (tif, warnings)
        with rasterio.open(tif) as src:
            assert src.block_shapes == [(512, 512)]
            assert src.compression is not None
            assert src.compression.value == "DEFLATE"
            assert src.crs.to_epsg() == world.epsg
            if tif.name == "truth.tif":
                assert (src.dtypes[0], src.nodata) == ("uint8", NODATA)
                assert src.colormap(1)[1][:3] == (0x1F, 0x78, 0xB4)
            elif tif.name == "scl.tif":
                assert (src.dtypes[0], src.nodata, src.res) == ("uint8", 0, (20.0, 20.0))
            else:
                assert (src.dtypes[0], src.nodata) == ("uint16", 0)
                if tif.stem in ("swir16", "swir22"):
                    assert src.res == (20.0, 20.0)
                else:
                    assert src.res == (10.0, 10.0)
                    assert src.overviews(1) == [2]


def test_catalog_reads_back_and_validates_against_the_bundled_core_schemas(
    world: DemoWorld, items: list[pystac.Item]
) -> None:
    catalog = pystac.Catalog.from_file(str(world.catalog))
    collections = list(catalog.get_collections())
    assert [c.id for c in collections] == ["sentinel-2-l2a"]
    assert sorted(world.item_ids) == [item.id for item in items]
    validator = JsonSchemaSTACValidator()  # pystac ships the core schemas: no network needed
    stac_files = [world.catalog, world.pc_catalog, *sorted(world.root.glob("**/sentinel-2-l2a/**/*.json"))]
    assert len(stac_files) == 2 * 6
    for path in stac_files:
        data = json.loads(path.read_text())
        kind = {"Catalog": "Catalog", "Collection": "Collection", "Feature": "Feature"}[data["type"]]
        schema = validator.validate_core(data, pystac.STACObjectType(kind), data["stac_version"], str(path))
        assert schema is not None
    baselines = set()
    for item in items:
        raw = json.loads(Path(item.get_self_href() or "").read_text())
        props = raw["properties"]
        assert props["proj:epsg"] == world.epsg
        assert "proj:code" not in props  # projection v1.1.0, as Earth Search v1 publishes
        assert props["earthsearch:boa_offset_applied"] is False
        assert props["platform"] in ("sentinel-2a", "sentinel-2b")
        assert item.id.startswith(props["platform"][-1].upper().join(("S2", "_54SVE_")))
        assert set(item.assets) == {*BANDS, "scl"}
        baselines.add(props["s2:processing_baseline"] >= "04.00")
        for key in BANDS:
            asset = raw["assets"][key]
            assert asset["href"] == f"../../cogs/{item.id}/{key}.tif"
            assert asset["eo:bands"][0]["common_name"] == key
            band = asset["raster:bands"][0]
            assert band["scale"] == 0.0001
            assert band["offset"] == (-0.1 if _baseline_offset(item) else 0.0)
            with rasterio.open(_asset_path(item, key)) as src:
                assert list(src.shape) == asset["proj:shape"]
                assert list(src.transform)[:6] == asset["proj:transform"]
                assert list(src.bounds) == asset["proj:bbox"]
        assert raw["assets"]["scl"]["roles"][0] == "data"
        assert _asset_path(item, "scl").exists()
    assert baselines == {True, False}
    start, end = world.datetime_window.split("/")
    assert start <= min(item.properties["datetime"] for item in items)
    assert end >= max(item.properties["datetime"] for item in items)


def test_planetary_computer_flavour_describes_the_same_cogs(
    world: DemoWorld, items: list[pystac.Item]
) -> None:
    catalog = pystac.Catalog.from_file(str(world.pc_catalog))
    pc_items = sorted(catalog.get_items(recursive=True), key=lambda item: item.datetime or 0)
    es_items = sorted(items, key=lambda item: item.datetime or 0)
    assert len(pc_items) == len(es_items) == 4
    keys = {
        "blue": "B02",
        "green": "B03",
        "red": "B04",
        "nir": "B08",
        "swir16": "B11",
        "swir22": "B12",
        "scl": "SCL",
    }
    for pc, es in zip(pc_items, es_items, strict=True):
        assert pc.id.startswith(es.id[:3] + "_MSIL2A_")
        assert set(pc.assets) == set(keys.values())
        for es_key, pc_key in keys.items():
            assert _asset_path(pc, pc_key).resolve() == _asset_path(es, es_key).resolve()
            assert "raster:bands" not in pc.assets[pc_key].extra_fields
        raw = json.loads(Path(pc.get_self_href() or "").read_text())
        assert raw["properties"]["proj:epsg"] == world.epsg
        assert raw["properties"]["s2:mgrs_tile"] == "54SVE"
        for name in ("eo:cloud_cover", "s2:processing_baseline", "s2:nodata_pixel_percentage"):
            assert raw["properties"][name] == es.properties[name]
        assert pc.geometry == es.geometry


def test_asset_base_url_makes_hrefs_absolute(tmp_path: Path) -> None:
    world = generate(tmp_path / "w", size=256, seed=1, asset_base_url="http://127.0.0.1:8123/demo/")
    hrefs = []
    for path in world.root.glob("**/sentinel-2-l2a/*/*.json"):
        item = json.loads(path.read_text())
        for asset in item["assets"].values():
            hrefs.append(asset["href"])
            assert asset["href"].startswith("http://127.0.0.1:8123/demo/cogs/")
            assert (world.root / asset["href"].removeprefix("http://127.0.0.1:8123/demo/")).is_file()
    assert len(hrefs) == 2 * 4 * 7


def test_truth_map_has_landscape_structure(world: DemoWorld) -> None:
    truth = _read(world.truth)
    table = load_class_table(world.classes)
    assert sorted(np.unique(truth).tolist()) == table.values
    shares = {value: float((truth == value).mean()) for value in table.values}
    assert all(0.005 < share < 0.6 for share in shares.values()), shares
    components = sum(ndimage.label(truth == value)[1] for value in table.values)
    assert components < truth.size / 500
    # A river: water spanning the grid from west to east (bridges closed over), thin for its length.
    water, _ = ndimage.label(ndimage.binary_closing(truth == 1, iterations=2))
    shapes = [
        (
            sl[1].stop - sl[1].start,
            (sl[0].stop - sl[0].start) * (sl[1].stop - sl[1].start),
            (water[sl] == i + 1).sum(),
        )
        for i, sl in enumerate(ndimage.find_objects(water))
    ]
    assert any(width > 0.9 * SIZE and area < 0.3 * box for width, box, area in shapes), shapes
    # Fields are rectangles: cropland edges are mostly straight axis-parallel runs.
    crop = truth == 3
    assert crop.any()
    rows_change = np.count_nonzero(np.diff(crop, axis=0))
    assert rows_change < crop.sum() / 5


def test_post_baseline_dns_carry_the_1000_offset(world: DemoWorld, items: list[pystac.Item]) -> None:
    truth = _read(world.truth)
    stats: dict[tuple[bool, int], list[float]] = {}
    for item in items:
        scl = _up(_read(_asset_path(item, "scl")))
        clear = np.isin(scl, CLEAR_SCL)
        for value in (1, 2):  # water and forest: stable through the season
            pixels = clear & (truth == value)
            dn = _read(_asset_path(item, "red")).astype(float)[pixels]
            stats.setdefault((_baseline_offset(item) > 0, value), []).append(float(np.median(dn)))
    for value in (1, 2):
        pre = np.mean(stats[(False, value)]) * 1e-4
        post_raw = np.mean(stats[(True, value)]) * 1e-4
        post = post_raw - 0.1
        assert abs(post - pre) < 0.01, (value, pre, post)
        assert abs(post_raw - pre - 0.1) < 0.01


def test_soils_grow_lighter_from_west_to_east(world: DemoWorld, items: list[pystac.Item]) -> None:
    """``sensor.SOIL_GRADIENT``: bare soil is lighter in the eastern third than in the western, water not."""
    truth = _read(world.truth)
    thirds = np.zeros(truth.shape, dtype=np.int8)
    thirds[:, : SIZE // 3] = -1
    thirds[:, -(SIZE // 3) :] = 1
    ratios: dict[int, list[float]] = {}
    for item in items:
        clear = np.isin(_up(_read(_asset_path(item, "scl"))), CLEAR_SCL)
        red = (_read(_asset_path(item, "red")).astype(float) - _baseline_offset(item)) * 1e-4
        for value in (1, 6):  # water (no soil in it) and bare soil
            east, west = (np.median(red[clear & (truth == value) & (thirds == side)]) for side in (1, -1))
            ratios.setdefault(value, []).append(float(east / west))
    water, bare = np.median(ratios[1]), np.median(ratios[6])
    assert bare > 1.2, ratios  # measured 1.37 (seed 3); 1.08 with SOIL_GRADIENT = 0 (patches vary too)
    assert abs(water - 1) < 0.05, ratios


def test_scl_marks_clouds_and_shadows_and_every_pixel_is_clear_once(
    world: DemoWorld, items: list[pystac.Item]
) -> None:
    ever_clear = np.zeros((SIZE // 2, SIZE // 2), dtype=bool)
    covers = []
    seen_clouds = seen_shadows = False
    for item in items:
        scl = _read(_asset_path(item, "scl"))
        offset = _baseline_offset(item)
        blue = (_read(_asset_path(item, "blue")).astype(float) - offset) * 1e-4
        up = _up(scl)
        valid = scl != 0
        cloudy = np.isin(scl, (8, 9, 10)) & valid
        expected = round(100 * cloudy.sum() / valid.sum(), 4)
        assert item.properties["eo:cloud_cover"] == pytest.approx(expected, abs=1e-3)
        assert item.properties["s2:nodata_pixel_percentage"] == pytest.approx(100 * (~valid).mean(), abs=1e-3)
        covers.append(expected)
        clear_blue = float(np.median(blue[np.isin(up, CLEAR_SCL)]))
        assert clear_blue < 0.1
        if (up == 9).any():
            assert float(np.median(blue[up == 9])) > clear_blue + 0.25
            seen_clouds = True
        if (up == 3).any():
            assert float(np.median(blue[up == 3])) < clear_blue
            seen_shadows = True
        assert np.all(_read(_asset_path(item, "blue"))[up == 0] == 0)
        assert np.all(_read(_asset_path(item, "blue"))[up != 0] > 0)
        ever_clear |= np.isin(scl, CLEAR_SCL)
        # The item's footprint covers exactly the pixels with data.
        footprint = shapely.geometry.shape(item.geometry)
        rows, cols = np.nonzero(valid)
        with rasterio.open(_asset_path(item, "scl")) as src:
            xs, ys = rasterio.transform.xy(src.transform, rows[::97], cols[::97])
        lon, lat = warp_transform(f"EPSG:{world.epsg}", "EPSG:4326", xs, ys)
        assert shapely.contains_xy(footprint.buffer(1e-6), lon, lat).all()
    assert seen_clouds
    assert seen_shadows
    assert ever_clear.all()
    assert min(covers) < 5 < max(covers)
    assert len({round(c) for c in covers}) == len(covers)


def _points(path: Path, epsg: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    info = pyogrio.read_info(path)
    assert info["crs"] == "EPSG:4326"
    assert info["geometry_type"] == "Point"
    _, _, geometry, fields = pyogrio.raw.read(path, columns=["label"])
    assert fields[0].dtype.kind == "i"
    points = shapely.from_wkb(geometry)
    xs, ys = Transformer.from_crs(4326, epsg, always_xy=True).transform(
        shapely.get_x(points), shapely.get_y(points)
    )
    return np.asarray(xs), np.asarray(ys), np.asarray(fields[0])


def test_points_are_labelled_with_the_truth_inside_the_aoi_and_apart(world: DemoWorld) -> None:
    truth = _read(world.truth)
    with rasterio.open(world.truth) as src:
        transform = src.transform
    aoi = shapely.geometry.shape(json.loads(world.aoi.read_text())["features"][0]["geometry"])
    to_utm = Transformer.from_crs(4326, world.epsg, always_xy=True)
    aoi_utm = shapely.transform(aoi, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))
    samples = {}
    for name, path in (("train", world.train_points), ("validation", world.validation_points)):
        xs, ys, labels = _points(path, world.epsg)
        rows, cols = rasterio.transform.rowcol(transform, xs, ys)
        assert np.array_equal(truth[np.asarray(rows), np.asarray(cols)], labels)
        assert shapely.contains_xy(aoi_utm, xs, ys).all()
        samples[name] = (xs, ys, labels)
    train_labels = samples["train"][2]
    assert np.unique(train_labels, return_counts=True)[1].min() >= 50
    # Validation: a simple random sample, so its class shares follow the map's.
    vx, vy, vlabels = samples["validation"]
    assert vlabels.size >= 1000
    for value in np.unique(truth):
        share = float((truth == value).mean())
        assert abs(float((vlabels == value).mean()) - share) < 0.05
    tx, ty, _ = samples["train"]
    distance = np.hypot(vx[:, None] - tx[None], vy[:, None] - ty[None]).min()
    assert distance > 40


def test_bad_targets_and_options_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"foreign.*notes\.txt"):
        generate(foreign, size=256)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    with pytest.raises(InputError, match="even"):
        generate(tmp_path / "odd", size=255)
    for url in ("cogs-server", "ftp://files/demo", "http://files/a?b", "https:///demo"):
        with pytest.raises(InputError, match="absolute http"):
            generate(tmp_path / "url", size=256, asset_base_url=url)
    assert not (tmp_path / "odd").exists()
    assert not (tmp_path / "url").exists()
    result = CliRunner().invoke(app, ["demo-data", str(foreign), "--size", "256"])
    assert isinstance(result.exception, InputError)


def test_an_interrupted_world_can_be_regenerated_in_place(tmp_path: Path) -> None:
    partial = tmp_path / "w" / "cogs" / "S2B_54SVE_20210718_0_L2A"
    partial.mkdir(parents=True)
    (partial / "blue.tif").write_bytes(b"half a file")
    world = generate(tmp_path / "w", size=256)
    with rasterio.open(world.cogs_dir / "S2B_54SVE_20210718_0_L2A" / "blue.tif") as src:
        assert src.shape == (256, 256)


def test_a_world_failing_part_way_has_no_catalog(tmp_path: Path) -> None:
    """Its catalog.json was written before the points and recipes: a half world looked like a world."""
    (tmp_path / "w" / "training.yaml").mkdir(parents=True)  # the recipe cannot be written: fails late
    with pytest.raises(IsADirectoryError, match="training"):
        generate(tmp_path / "w", size=256)
    assert (tmp_path / "w" / "train.gpkg").exists()  # it failed after most of the world was written
    assert not (tmp_path / "w" / "catalog.json").exists()
    assert not (tmp_path / "w" / "pc").exists()


def test_cli_default_size_is_the_library_default() -> None:
    import inspect

    from demo import commands as demo_commands
    from demo import world as demo_world

    assert inspect.signature(demo_commands.demo_data).parameters["size"].default == demo_world.DEFAULT_SIZE


@pytest.mark.slow
def test_a_classifier_on_the_training_points_is_good_not_perfect_and_validation_estimates_it(
    world: DemoWorld, items: list[pystac.Item]
) -> None:
    from sklearn.ensemble import RandomForestClassifier

    from lulc.features import compute_features

    stack = []
    for item in items:
        offset = _baseline_offset(item)
        clear = np.isin(_up(_read(_asset_path(item, "scl"))), CLEAR_SCL)
        bands = []
        for key in BANDS:
            dn = _read(_asset_path(item, key)).astype(np.float32)
            dn = dn if dn.shape[0] == SIZE else _up(dn)
            bands.append(np.where(clear, (dn - offset) * 1e-4, np.nan))
        stack.append(bands)
    composite = np.nanmedian(np.asarray(stack), axis=0)
    features = compute_features(composite, list(BANDS), ["ndvi", "ndwi", "ndbi"])
    truth = _read(world.truth)
    with rasterio.open(world.truth) as src:
        transform = src.transform

    def sample(path: Path) -> tuple[np.ndarray, np.ndarray]:
        xs, ys, labels = _points(path, world.epsg)
        rows, cols = rasterio.transform.rowcol(transform, xs, ys)
        return features[np.asarray(rows), np.asarray(cols)], labels

    x_train, y_train = sample(world.train_points)
    model = RandomForestClassifier(n_estimators=60, random_state=0, n_jobs=1).fit(x_train, y_train)
    predicted = model.predict(features.reshape(-1, features.shape[-1])).reshape(truth.shape)
    map_accuracy = float((predicted == truth).mean())
    x_val, y_val = sample(world.validation_points)
    estimate = float((model.predict(x_val) == y_val).mean())
    print(f"map accuracy {map_accuracy:.4f}, validation estimate {estimate:.4f}")
    assert 0.85 < map_accuracy < 0.995
    assert abs(estimate - map_accuracy) < 0.03


def test_change_adds_a_later_year_after_real_change_and_keeps_every_other_byte(
    world: DemoWorld, tmp_path: Path
) -> None:
    from demo.sensor import CHANGE_YEAR

    runner = CliRunner()
    folder = tmp_path / "change"
    done = runner.invoke(
        app, ["demo-data", str(folder), "--size", str(SIZE), "--seed", str(SEED), "--change"]
    )
    assert done.exit_code == 0, done.output
    assert "later truth raster" in done.output
    changed_world = _digests(folder)
    reference = _digests(world.root)
    collections = {n for n in reference if n.endswith("collection.json") or n.endswith("catalog.json")}
    # everything of the default world is there with the same bytes, but the catalogs listing more items
    assert {n: d for n, d in reference.items() if changed_world[n] != d}.keys() <= collections
    added = sorted(set(changed_world) - set(reference))
    assert f"truth-{CHANGE_YEAR}.tif" in added
    assert len([n for n in added if n.startswith("cogs/")]) == 2 * 7  # two overpasses of the later year
    before, after = _read(world.truth), _read(folder / f"truth-{CHANGE_YEAR}.tif")
    moved = before != after
    assert 0.005 < moved.mean() < 0.05  # real change, a small share of the land
    to_built, to_bare = moved & (after == 5), moved & (after == 6)
    assert to_built.sum() > 0.1 * moved.sum()  # new built-up ...
    assert to_bare.sum() > 0.3 * moved.sum()  # ... and felled forest
    assert np.all(before[to_bare] == 2)
    assert np.all(moved == (to_built | to_bare))
    # the later year's image shows the change: NIR drops where forest was felled, not where nothing changed
    later = pystac.Catalog.from_file(str(folder / "catalog.json"))
    items = [i for i in later.get_items(recursive=True) if i.datetime and i.datetime.year == CHANGE_YEAR]
    assert len(items) == 2
    nir_later = _read(_asset_path(items[0], "nir")).astype(float) - _baseline_offset(items[0])
    first = next(i for i in later.get_items(recursive=True) if i.id == world.item_ids[1])
    nir_before = _read(_asset_path(first, "nir")).astype(float) - _baseline_offset(first)
    scl = _read(_asset_path(items[0], "scl"))
    clear = np.isin(_up(scl), CLEAR_SCL) & np.isin(_up(_read(_asset_path(first, "scl"))), CLEAR_SCL)
    felled, kept = clear & to_bare, clear & ~moved & (before == 2)
    drop = nir_before - nir_later
    assert np.median(drop[felled]) > 400  # forest NIR ~0.31, bare soil ~0.22
    assert abs(np.median(drop[kept])) < 150


def test_a_world_made_again_keeps_nothing_of_the_earlier_one(tmp_path: Path) -> None:
    """A world made again over an earlier one holds nothing of it.

    README walk: a plain world over a --seasons --change one kept its seasonal recipe (whose items the new
    catalog lacks: "no items") and its change truth.
    """
    from demo.world import CHANGE_YEAR, generate

    out = tmp_path / "world"
    richer = generate(out, size=128, seed=1, seasons=True, change=True)
    assert (out / "training-seasons.yaml").is_file()
    assert (out / f"truth-{CHANGE_YEAR}.tif").is_file()
    earlier_cogs = {p.name for p in (out / "cogs").iterdir()}
    plain = generate(out, size=128, seed=1)
    assert not (out / "training-seasons.yaml").exists()
    assert not (out / f"truth-{CHANGE_YEAR}.tif").exists()
    cogs = {p.name for p in (out / "cogs").iterdir()}
    assert cogs < earlier_cogs, "only the plain world's items are left"
    assert plain.catalog == richer.catalog


def test_a_users_folder_with_a_demo_layout_name_is_not_cleared(tmp_path: Path) -> None:
    """Review of the clearing: a user's own cogs/ (a demo layout name) was deleted with everything in it."""
    from demo.world import generate

    mine = tmp_path / "mydata" / "cogs" / "field_survey" / "ortho.tif"
    mine.parent.mkdir(parents=True)
    mine.write_text("precious")
    generate(tmp_path / "mydata", size=128, seed=1)  # no demo catalog there: written over in place
    assert mine.read_text() == "precious"
