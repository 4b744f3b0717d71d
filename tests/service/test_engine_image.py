"""The engine on the tutorial's real Sentinel-2 image (``--image``) with an SVM trained like the tutorial."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely.geometry

from lulc.classes import NODATA, ClassTable
from service.engine import ClassifyResult, classify
from service.readers import ImageReaderFactory
from service.request import ClassifyRequest
from service.runner import load_model
from tests.service.engine_support import export_onnx, make_contract

BANDS = ("blue", "green", "red", "nir")
DATE = "2023-05-01"
"""The tutorial image records no acquisition date, so every run names one (as `--datetime` would)."""
TUTORIAL_CLASSES = ClassTable.model_validate(
    {
        "classes": [
            {"value": 1, "name": "Water", "color": "#1f78b4"},
            {"value": 2, "name": "Dense Veg", "color": "#33a02c"},
            {"value": 3, "name": "Veg", "color": "#b2df8a"},
            {"value": 4, "name": "Impervious", "color": "#e31a1c"},
        ]
    }
)


@pytest.fixture(scope="module")
def tutorial_model(lulc_py: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RBF SVM with default hyper-parameters on a stratified 70 % of the 121 points, as the tutorial."""
    return train_tutorial_svm(lulc_py, tmp_path_factory.mktemp("svm"))


def train_tutorial_svm(lulc_py: Path, out: Path) -> Path:
    """The tutorial's SVM (default hyper-parameters, stratified 70 % of the points) as ``out/model.onnx``."""
    from sklearn.model_selection import train_test_split
    from sklearn.svm import SVC

    points = gpd.read_file(lulc_py / "samples.shp")
    with rasterio.open(lulc_py / "s2image.tif") as src:
        values = np.array(list(src.sample([(p.x, p.y) for p in points.geometry])), dtype=np.float32)
    labels = points["labels"].to_numpy().astype(np.int64)
    x_train, _, y_train, _ = train_test_split(values, labels, test_size=0.3, stratify=labels, random_state=42)
    with warnings.catch_warnings():  # scikit-learn 1.9 deprecates probability=True; ONNX export needs it
        warnings.simplefilter("ignore", FutureWarning)
        svm = SVC(probability=True, random_state=0).fit(x_train, y_train)
        contract = make_contract(
            TUTORIAL_CLASSES, svm.classes_, bands=BANDS, resolution=10.0, model_type="svm"
        )
        return export_onnx(svm, len(BANDS), contract, out / "model.onnx")


@pytest.fixture(scope="module")
def whole_image(
    lulc_py: Path, tutorial_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> ClassifyResult:
    request = ClassifyRequest(aoi=None, datetime=DATE)
    factory = ImageReaderFactory(lulc_py / "s2image.tif")
    return classify(request, load_model(tutorial_model), factory, tmp_path_factory.mktemp("tutorial"))


def test_nodata_is_255_and_the_map_agrees_with_the_published_svm_map(
    lulc_py: Path, whole_image: ClassifyResult
) -> None:
    with rasterio.open(lulc_py / "s2image.tif") as src:
        image = src.read()
        transform, shape = src.transform, src.shape
    nodata = ~(np.isfinite(image) & (image < 1e30)).all(axis=0)
    assert 4000 < nodata.sum() < 5000  # the slivers outside the AOI quadrilateral
    with rasterio.open(whole_image.classes) as out:
        assert out.transform == transform
        assert out.shape == shape
        mapped = out.read(1)
    with rasterio.open(lulc_py / "published" / "lulc_SVM.tif") as pub:
        published = pub.read(1)
    assert (mapped[nodata] == NODATA).all()
    assert (published[nodata] == 4).all(), "the tutorial's map calls nodata class 4"
    assert (mapped[~nodata] != NODATA).all()
    agreement = float((mapped[~nodata] == published[~nodata]).mean())
    assert agreement >= 0.90, agreement
    stats = whole_image.stats_dict
    assert stats["nodata_pixels"] == int(nodata.sum())
    # EPSG:3395 map units are not metres on the ground: hectares use the true pixel area (~8.07 m side).
    assert stats["pixel_area_m2"] == pytest.approx(8.07**2, rel=0.02)


def test_the_item_links_the_input_image_with_its_band_roles_and_scaling(
    lulc_py: Path, whole_image: ClassifyResult
) -> None:
    """What a viewer needs to draw the input under the map: which band is red, green, blue, nir; scaling."""
    from tests.support.stac_validation import assert_valid_stac

    item = whole_image.item_dict
    assert_valid_stac(item, "item.json")
    (link,) = [link for link in item["links"] if link.get("title") == "s2image"]
    assert link["rel"] == "derived_from"
    assert (whole_image.item.parent / link["href"]).resolve() == (lulc_py / "s2image.tif").resolve()
    assert link["lulc:bands"] == {"blue": 1, "green": 2, "red": 3, "nir": 4}  # the tutorial's band order
    assert (link["lulc:scale"], link["lulc:offset"]) == (1.0, 0.0)  # the image holds reflectance
    model_links = [link for link in item["links"] if str(link["href"]).endswith(".onnx")]
    assert all("lulc:bands" not in link for link in model_links)
    assert item["properties"]["start_datetime"] == f"{DATE}T00:00:00Z"
    assert item["properties"]["title"].startswith("Land cover from test-model ")


def test_an_aoi_cuts_the_image_grid_and_masks_outside_the_polygon(
    lulc_py: Path, tutorial_model: Path, whole_image: ClassifyResult, tmp_path: Path
) -> None:
    boundary = gpd.read_file(lulc_py / "aoi_boundary.shp").to_crs("EPSG:4326")
    polygon = boundary.geometry.iloc[0].buffer(0)
    # A disc in the west half of the tutorial AOI: its bounding box's corners are valid image pixels.
    west, south, east, north = polygon.bounds
    radius = (north - south) / 3
    disc = shapely.geometry.Point(west + (east - west) / 3, (south + north) / 2).buffer(radius)
    request = ClassifyRequest(aoi=shapely.geometry.mapping(disc), datetime=DATE)
    result = classify(
        request, load_model(tutorial_model), ImageReaderFactory(lulc_py / "s2image.tif"), tmp_path
    )
    with rasterio.open(result.classes) as part, rasterio.open(whole_image.classes) as whole:
        assert part.crs == whole.crs
        assert part.width < whole.width * 0.6
        col_off = round((part.transform.c - whole.transform.c) / whole.transform.a)
        row_off = round((part.transform.f - whole.transform.f) / whole.transform.e)
        window = rasterio.windows.Window(col_off, row_off, part.width, part.height)
        expected = whole.read(1, window=window)
        got = part.read(1)
    inside = got != NODATA
    assert inside.mean() > 0.5
    assert (got[inside] == expected[inside]).all(), "the same pixels get the same classes"
    assert (expected[~inside] != NODATA).any(), "pixels outside the AOI polygon are nodata"


def test_a_target_crs_warps_the_image_to_the_model_resolution(
    lulc_py: Path, tutorial_model: Path, whole_image: ClassifyResult, tmp_path: Path
) -> None:
    request = ClassifyRequest(aoi=None, datetime=DATE, crs="EPSG:32654", confidence=False)
    (tmp_path / "confidence.tif").write_bytes(b"a previous run's confidence map")
    result = classify(
        request, load_model(tutorial_model), ImageReaderFactory(lulc_py / "s2image.tif"), tmp_path
    )
    assert result.confidence is None
    assert not (tmp_path / "confidence.tif").exists()
    with rasterio.open(result.classes) as out:
        assert out.crs.to_epsg() == 32654
        assert out.res == (10.0, 10.0)
    fractions = {r["value"]: r["fraction"] for r in result.stats_dict["classes"]}
    reference = {r["value"]: r["fraction"] for r in whole_image.stats_dict["classes"]}
    for value, fraction in reference.items():
        assert fractions[value] == pytest.approx(fraction, abs=0.03)
    assert result.item_dict["properties"]["proj:code"] == "EPSG:32654"


def test_an_aoi_keeps_every_pixel_whose_centre_it_holds_and_an_edge_alone_is_refused(
    lulc_py: Path, tutorial_model: Path, tmp_path: Path
) -> None:
    """AOI review: the window's far column and row were lost, and an AOI on the image's edge was exit 1."""
    from pyproj import Transformer
    from rasterio.transform import Affine

    from lulc.errors import InputError, NoItemsError

    with rasterio.open(lulc_py / "s2image.tif") as src:
        transform, crs = src.transform, src.crs
    to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)

    def pixel_box(c0: float, r0: float, c1: float, r1: float) -> dict[str, object]:
        x0, y0 = transform @ (c0, r1)
        x1, y1 = transform @ (c1, r0)
        (lon0, lon1), (lat0, lat1) = to_lonlat.transform([x0, x1], [y0, y1])
        return shapely.geometry.mapping(shapely.geometry.box(lon0, lat0, lon1, lat1))

    def run(aoi: dict[str, object], out: str) -> ClassifyResult:
        request = ClassifyRequest(aoi=aoi, datetime=DATE)
        factory = ImageReaderFactory(lulc_py / "s2image.tif")
        return classify(request, load_model(tutorial_model), factory, tmp_path / out)

    result = run(pixel_box(300.9, 200.9, 306.6, 206.6), "part")  # centres of columns and rows 301..306
    with rasterio.open(result.classes) as out:
        assert out.transform == transform @ Affine.translation(300, 200)
        assert (out.width, out.height) == (7, 7)
        mapped = out.read(1) != NODATA
    assert mapped.sum() == 36
    assert mapped[1:, 1:].all()
    for aoi, out in (
        (pixel_box(-2.0, 100.0, 0.0, 110.0), "edge"),
        (pixel_box(300.2, 200.2, 300.4, 200.4), "dot"),
    ):
        with pytest.raises((NoItemsError, InputError), match=r"does not overlap image|holds no pixel centre"):
            run(aoi, out)
        assert not (tmp_path / out).exists()


def test_an_aoi_half_past_the_image_says_half_of_it_is_mapped(
    lulc_py: Path, tutorial_model: Path, tmp_path: Path
) -> None:
    """An --image grid stops at the image: an AOI half past the scene read as wholly mapped (1.0, no note)."""
    from pyproj import Transformer

    with rasterio.open(lulc_py / "s2image.tif") as src:
        transform, crs = src.transform, src.crs
    to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
    x0, y0 = transform @ (-100, 200)  # columns -100..100, rows 100..200: half of it west of the image
    x1, y1 = transform @ (100, 100)
    (lon0, lon1), (lat0, lat1) = to_lonlat.transform([x0, x1], [y0, y1])
    aoi = shapely.geometry.mapping(shapely.geometry.box(lon0, lat0, lon1, lat1))
    request = ClassifyRequest(aoi=aoi, datetime=DATE)
    factory = ImageReaderFactory(lulc_py / "s2image.tif")
    result = classify(request, load_model(tutorial_model), factory, tmp_path / "run")
    stats = result.stats_dict
    assert stats["aoi_pixels"] == pytest.approx(20_000, rel=0.02)
    assert stats["mapped_fraction"] == pytest.approx(0.5, abs=0.02)
    assert result.item_dict["properties"]["lulc:mapped_fraction"] == stats["mapped_fraction"]
    # review: the item's geometry (the AOI on the image) and lulc:unmapped (past it) make the AOI
    footprint = shapely.geometry.shape(result.item_dict["geometry"])
    unmapped = shapely.geometry.shape(result.item_dict["properties"]["lulc:unmapped"])
    box = shapely.geometry.shape(aoi)
    assert unmapped.area == pytest.approx(0.5 * box.area, rel=0.05)
    assert unmapped.union(footprint).symmetric_difference(box).area < 1e-3 * box.area


def _dn_copy(lulc_py: Path, path: Path, dtype: str = "uint16") -> Path:
    """The tutorial image as digital numbers: uint16 reflectance x 10000, nodata 0, no scale metadata."""
    with rasterio.open(lulc_py / "s2image.tif") as src:
        reflectance, profile = src.read(masked=True), src.profile
        descriptions = src.descriptions
    dn = np.where(
        np.ma.getmaskarray(reflectance), 0, np.clip(np.rint(reflectance.filled(0) * 10000), 1, 65535)
    )
    profile.update(dtype=dtype, nodata=0)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn.astype(dtype))
        dst.descriptions = descriptions
    return path


@pytest.mark.parametrize("trained_on", ["reflectance", "digital numbers"])
def test_each_image_is_read_by_its_own_scaling_whatever_the_model_was_trained_on(
    lulc_py: Path, tutorial_model: Path, whole_image: ClassifyResult, tmp_path: Path, trained_on: str
) -> None:
    """Training review: the model's training scaling was applied to any image (a map of one class, exit 0)."""
    import onnx

    from lulc.contract import METADATA_KEY, ModelContract, Radiometry

    model_path = tutorial_model
    if trained_on == "digital numbers":  # the same SVM, its contract saying its image held DN / 10000
        model = onnx.load(tutorial_model)
        (entry,) = [p for p in model.metadata_props if p.key == METADATA_KEY]
        contract = ModelContract.model_validate_json(entry.value)
        inputs = contract.inputs.model_copy(update={"radiometry": Radiometry(scale=1e-4, offset=0.0)})
        entry.value = contract.model_copy(update={"inputs": inputs}).model_dump_json()
        model_path = tmp_path / "dn-model.onnx"
        onnx.save(model, model_path)
    with rasterio.open(whole_image.classes) as src:
        reference = src.read(1)
    request = ClassifyRequest(aoi=None, datetime=DATE)
    images = [lulc_py / "s2image.tif", _dn_copy(lulc_py, tmp_path / "dn.tif")]
    if trained_on == "digital numbers":  # a float image of DNs, trained with --scale 0.0001: the model's
        images.append(_dn_copy(lulc_py, tmp_path / "dnfloat.tif", "float32"))
    for image in images:
        result = classify(request, load_model(model_path), ImageReaderFactory(image), tmp_path / image.stem)
        with rasterio.open(result.classes) as src:
            labels = src.read(1)
        assert (labels == reference).mean() > 0.995, f"{image.name} under a model trained on {trained_on}"
        (link,) = [link for link in result.item_dict["links"] if link.get("title") == image.stem]
        expected = 1.0 if image.name == "s2image.tif" else 1e-4
        assert link["lulc:scale"] == pytest.approx(expected)


def test_a_float_image_of_digital_numbers_under_a_model_of_reflectance_needs_a_scale(
    lulc_py: Path, tutorial_model: Path, whole_image: ClassifyResult, tmp_path: Path
) -> None:
    """CLI review: the tutorial scene x 10,000 as float32 was mapped wholly as Impervious, exit 0.

    Refused as training refuses the same image; with ``--scale`` (the user's word) it is the reference map.
    """
    from lulc.errors import InputError

    image = _dn_copy(lulc_py, tmp_path / "dnfloat.tif", "float32")
    request = ClassifyRequest(aoi=None, datetime=DATE)
    with pytest.raises(
        InputError, match=r"dnfloat.tif's values under the AOI have a median of [\d,]+, and"
    ) as e:
        classify(request, load_model(tutorial_model), ImageReaderFactory(image), tmp_path / "refused")
    assert "--scale 0.0001" in str(e.value)
    assert not (tmp_path / "refused").exists()
    result = classify(
        request, load_model(tutorial_model), ImageReaderFactory(image, scale=1e-4), tmp_path / "scaled"
    )
    with rasterio.open(result.classes) as src, rasterio.open(whole_image.classes) as ref:
        assert (src.read(1) == ref.read(1)).mean() > 0.995
    (link,) = [link for link in result.item_dict["links"] if link.get("title") == image.stem]
    assert link["lulc:scale"] == pytest.approx(1e-4)


@pytest.mark.parametrize("image_holds", ["reflectance", "digital numbers"])
def test_the_scaling_of_a_float_image_is_judged_on_the_aoi_not_on_far_parts_of_it(
    lulc_py: Path,
    tutorial_model: Path,
    whole_image: ClassifyResult,
    tmp_path: Path,
    image_holds: str,
) -> None:
    """A float image's "reflectance or DN?" median was read over the whole image (every block of it).

    Reflectance: the image is reflectance where the AOI is, and an undeclared fill value (9999, not nodata)
    over most of the rest: judged on the whole image, the AOI's reflectance was taken as DNs and scaled by
    the model's 1e-4 (a map of one class). Digital numbers: a float DN image whose undeclared fill is 0, on
    two thirds of the AOI: judged with the zeros, its DNs read as reflectance (review).
    """
    import onnx
    from pyproj import Transformer

    from lulc.contract import METADATA_KEY, ModelContract, Radiometry

    model = onnx.load(tutorial_model)  # the same SVM, its contract saying its image held DN / 10000
    (entry,) = [p for p in model.metadata_props if p.key == METADATA_KEY]
    contract = ModelContract.model_validate_json(entry.value)
    inputs = contract.inputs.model_copy(update={"radiometry": Radiometry(scale=1e-4, offset=0.0)})
    entry.value = contract.model_copy(update={"inputs": inputs}).model_dump_json()
    onnx.save(model, tmp_path / "dn-model.onnx")
    with rasterio.open(lulc_py / "s2image.tif") as src:
        data, profile, descriptions = src.read(), src.profile, src.descriptions
        transform, crs = src.transform, src.crs
    width = data.shape[2]
    dn = image_holds == "digital numbers"
    filled = np.where(np.isfinite(data) & (data < 1e30), data * 10000.0, data) if dn else data.copy()
    # three quarters of the image: a fill value, not the nodata
    filled[:, :, width // 4 :] = 0.0 if dn else 9999.0
    image = tmp_path / "filled.tif"
    with rasterio.open(image, "w", **profile) as dst:
        dst.write(filled)
        dst.descriptions = descriptions
    to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
    x0, y0 = transform @ (10, data.shape[1] - 10)
    x1, y1 = transform @ ((width // 4) * 3 if dn else width // 4 - 10, 10)  # DN: 2/3 of it on the fill
    (lon0, lon1), (lat0, lat1) = to_lonlat.transform([x0, x1], [y0, y1])
    aoi = shapely.geometry.mapping(shapely.geometry.box(lon0, lat0, lon1, lat1))
    result = classify(
        ClassifyRequest(aoi=aoi, datetime=DATE),
        load_model(tmp_path / "dn-model.onnx"),
        ImageReaderFactory(image),
        tmp_path / "run",
    )
    (link,) = [link for link in result.item_dict["links"] if link.get("title") == "filled"]
    assert link["lulc:scale"] == pytest.approx(1e-4 if dn else 1.0)  # read as what it is
    with rasterio.open(result.classes) as src, rasterio.open(whole_image.classes) as ref:
        labels = src.read(1)
        window = rasterio.windows.from_bounds(*src.bounds, transform=ref.transform)
        reference = ref.read(1, window=window.round_offsets().round_lengths())
    columns = np.arange(labels.shape[1]) + int(window.round_offsets().col_off)
    data_part = (labels != NODATA) & (columns < width // 4)[None, :]  # the fill is mapped too: leave it out
    assert data_part.sum() > 0.2 * labels.size
    assert (labels[data_part] == reference[data_part]).mean() > 0.995


def test_a_map_across_the_antimeridian_is_outlined_in_two_parts_with_its_bbox_across(
    lulc_py: Path, tutorial_model: Path, tmp_path: Path
) -> None:
    """RFC 7946 3.1.9 and 5.2: an outline across 180° is split there, and its bbox has west above east.

    The tutorial's pixels moved to UTM zone 1, centred on 180° at 36° N. Taken to lon/lat as it was, the
    outline's edges ran from +179.96 to -179.96, the long way round: an invalid polygon with a whole-world
    bbox, which the tiler's statistics could not use as the run's ground.
    """
    from pyproj import Transformer

    from tests.support.stac_validation import assert_valid_stac
    from tiler.areas import run_mapped_area

    to_utm = Transformer.from_crs(4326, 32601, always_xy=True)
    east, north = to_utm.transform(180.0, 36.0)
    with rasterio.open(lulc_py / "s2image.tif") as src:
        profile, pixels = src.profile, src.read()
    left, top = round(east) - 3810, round(north) + 2030
    profile.update(crs="EPSG:32601", transform=rasterio.Affine(10.0, 0.0, left, 0.0, -10.0, top))
    image = tmp_path / "fiji.tif"
    with rasterio.open(image, "w", **profile) as dst:
        dst.write(pixels)
    # the AOI: split at 180° as RFC 7946 asks, its north half past the image's top edge
    to_lonlat = Transformer.from_crs(32601, 4326, always_xy=True)
    (west, far_east), (south, far_north) = to_lonlat.transform(
        [left + 1000, left + 6600], [top - 3000, top + 2000]
    )
    assert west > 179.9
    assert far_east < -179.9
    aoi = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[west, south], [180, south], [180, far_north], [west, far_north], [west, south]]],
            [[[-180, south], [far_east, south], [far_east, far_north], [-180, far_north], [-180, south]]],
        ],
    }
    result = classify(
        ClassifyRequest(aoi=aoi, datetime=DATE),
        load_model(tutorial_model),
        ImageReaderFactory(image),
        tmp_path / "run",
    )
    item = result.item_dict
    assert_valid_stac(item, "item.json")
    footprint = shapely.geometry.shape(item["geometry"])
    unmapped = shapely.geometry.shape(item["properties"]["lulc:unmapped"])
    assert footprint.is_valid
    assert unmapped.is_valid
    for outline in (footprint, unmapped):
        assert outline.bounds[0] == -180.0
        assert outline.bounds[2] == 180.0
    bbox_west, bbox_south, bbox_east, bbox_north = item["bbox"]
    assert bbox_west == pytest.approx(west, abs=1e-6)
    assert bbox_east == pytest.approx(far_east, abs=1e-6)
    assert bbox_south == pytest.approx(south, abs=1e-6)
    # the image's top edge, not the AOI's: north of it is unmapped
    assert bbox_north < far_north
    whole = shapely.geometry.shape(aoi)
    assert unmapped.union(footprint).symmetric_difference(whole).area < 1e-3 * whole.area
    assert unmapped.area == pytest.approx(0.4 * whole.area, rel=0.05)
    mapped = run_mapped_area(item)
    assert mapped is not None
    assert shapely.geometry.shape(mapped).area == pytest.approx(whole.area, rel=1e-3)


class _CountedReads:
    """A dataset whose ``read`` calls are recorded (everything else is the dataset's own)."""

    def __init__(self, dataset: rasterio.io.DatasetReader) -> None:
        self.dataset = dataset
        self.reads: list[dict[str, object]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.dataset, name)

    def read(self, *args: object, **kwargs: object) -> np.ndarray:
        self.reads.append(kwargs)
        return self.dataset.read(*args, **kwargs)  # type: ignore[no-any-return]


def test_a_float_images_median_is_read_from_a_few_whole_blocks(lulc_py: Path) -> None:
    """Whole blocks, a few of them, read each once.

    A 256 px view of the AOI's window (no overviews) decoded each tile again for every output row under
    GDAL_CACHEMAX's few bytes: 10 of the 11 s of a 0.6 Mpx run (2026-12-03).
    """
    from rasterio.windows import Window

    from lulc.gdal_env import gdal_env
    from lulc.grid import OutputGrid, normalize_crs
    from service.readers import MEDIAN_BLOCKS, _median_value

    with gdal_env(), rasterio.open(lulc_py / "s2image.tif") as src:
        grid = OutputGrid(normalize_crs(src.crs.to_string()), src.transform, src.width, src.height)
        counted = _CountedReads(src)
        median = _median_value(counted, (1, 2, 3, 4), grid)  # type: ignore[arg-type]
        every = src.read(masked=True).compressed()
        block_h, block_w = src.block_shapes[0]
        blocks = -(-src.height // block_h) * -(-src.width // block_w)
    assert 1 < len(counted.reads) <= MEDIAN_BLOCKS < blocks
    for read in counted.reads:
        assert "out_shape" not in read
        window = read["window"]
        assert isinstance(window, Window)
        assert (window.row_off % block_h, window.col_off % block_w) == (0, 0)  # one block each
        assert (min(window.height, block_h), min(window.width, block_w)) == (window.height, window.width)
    assert median == pytest.approx(float(np.median(every[every != 0])), rel=0.1)


def test_a_float_images_median_keeps_a_sample_of_each_block_not_the_blocks(tmp_path: Path) -> None:
    """16 whole blocks of 4 bands, kept as float64, doubled `lulc classify`'s peak memory (290 -> 581 MiB)."""
    import tracemalloc

    from lulc.gdal_env import gdal_env
    from lulc.grid import OutputGrid, normalize_crs
    from service.readers import MEDIAN_BLOCKS, MEDIAN_VALUES_PER_BLOCK, _median_value

    side = 2048  # 16 blocks of 512 px: 64 MiB of float32, whose values kept as float64 are 128 MiB
    rows, cols = np.indices((side, side), dtype=np.float32)
    band = (0.05 + 0.3 * ((rows + cols) % 997) / 997).astype(np.float32)
    image = tmp_path / "float.tif"
    profile = {
        "driver": "GTiff",
        "width": side,
        "height": side,
        "count": 4,
        "dtype": "float32",
        "crs": "EPSG:32633",
        "transform": rasterio.transform.from_origin(500000, 5000000, 10, 10),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
    }
    with rasterio.open(image, "w", **profile) as dst:
        for b in range(1, 5):
            dst.write(band, b)
    with gdal_env(), rasterio.open(image) as src:
        grid = OutputGrid(normalize_crs(src.crs.to_string()), src.transform, src.width, src.height)
        tracemalloc.start()
        try:
            median = _median_value(src, (1, 2, 3, 4), grid)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert MEDIAN_BLOCKS * MEDIAN_VALUES_PER_BLOCK * 8 < 16 * 2**20
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MiB"  # a block's read and its filtered copy, not 16 blocks
    assert median == pytest.approx(float(np.median(band)), rel=0.02)
