"""One pixel path: features sampled at training points equal, bit for bit, the classifier's at those pixels.

Training samples through ``training.sampling`` on its own grid (``training.composite``, ``training.imagery``);
the classifier reads the blocks of its request's grid through ``service.readers`` and featurises them with
``service.blocks`` (what ``infer_block`` hands the model). Both sides run here exactly as they run in
``lulc train`` and ``lulc classify``; only the comparison is the test's.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import rasterio
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.transform import Affine

from lulc.classes import ClassTable
from lulc.contract import Features, ModelContract, Outputs, Provenance
from lulc.grid import Block
from service.blocks import block_features, valid_pixels
from service.readers import ImageReaderFactory, ReaderFactory, StacReaderFactory
from service.request import ClassifyRequest
from training.config import TrainingConfig, load_config
from training.imagery import Imagery
from training.pipeline import contract_inputs, open_imagery, sample_features
from training.points import read_points
from training.sampling import Samples, sample_points
from training.settings import TrainingSettings

Floats = npt.NDArray[np.float32]


def bits(values: npt.NDArray[Any]) -> npt.NDArray[np.uint32]:
    """The float32 bit patterns (so the comparison is bit for bit, NaN and signed zeros included)."""
    return np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)


def contract_of(imagery: Imagery, config: TrainingConfig, samples: Samples) -> ModelContract:
    """The contract training would write for this imagery and recipe (model-independent parts)."""
    labels = sorted({int(v) for v in samples.labels})
    return ModelContract(
        name=config.name,
        version="skew",
        inputs=contract_inputs(imagery, config),
        features=Features(indices=list(config.indices)),
        classes=ClassTable.from_labels(labels),
        outputs=Outputs(class_order=labels),
        provenance=Provenance(model_type="svm", seed=0),
    )


def classifier_features(
    factory: ReaderFactory,
    request: ClassifyRequest,
    contract: ModelContract,
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    crs: str,
    shift: int = 0,
) -> tuple[Floats, npt.NDArray[np.bool_], Any]:
    """The features the classifier hands its model at the pixels holding ``(x, y)`` (``crs``).

    Rows of pixels the classifier leaves unclassified are NaN (and False in the validity vector).
    ``shift`` moves every pixel that many columns east (a control).
    """
    grid = factory.prepare_grid(request, contract)
    reader = factory.open(request, grid, contract)
    if grid.crs != crs:
        x, y = Transformer.from_crs(crs, grid.crs, always_xy=True).transform(x, y)
    rows, cols = grid.pixel_index(x, y)
    cols = cols + shift
    n_features = len(contract.inputs.bands) + len(contract.features.indices)
    out = np.full((len(x), n_features), np.nan, dtype=np.float32)
    valid_out = np.zeros(len(x), dtype=bool)
    by_block: dict[Block, list[int]] = defaultdict(list)
    for i in range(len(x)):
        assert 0 <= rows[i] < grid.height, "every point is on the map"
        assert 0 <= cols[i] < grid.width, "every point is on the map"
        by_block[grid.block_at(int(rows[i]) // grid.block_size, int(cols[i]) // grid.block_size)].append(i)
    for block, members in by_block.items():
        reflectance = reader.read(block)
        valid = valid_pixels(grid, block, reflectance)
        features = block_features(contract, reflectance, valid)  # exactly what infer_block predicts on
        position = np.cumsum(valid.ravel()).reshape(valid.shape) - 1
        for i in members:
            r, c = int(rows[i]) - block.row, int(cols[i]) - block.col
            if valid[r, c]:
                out[i] = features[position[r, c]]
                valid_out[i] = True
    return out, valid_out, grid


# ---------------------------------------------------------------------------------------------
# A STAC source: the demo world (several dates, SCL clouds and shadows, 20 m SWIR bands)


@pytest.fixture(scope="module")
def stac_training(demo_world: Any) -> tuple[TrainingConfig, Imagery, Samples, Floats]:
    """The demo recipe's imagery, samples and features, as ``lulc train`` computes them."""
    config = load_config(demo_world.training_config)
    imagery = open_imagery(config, TrainingSettings())
    points = read_points(str(config.points), config.label_field, None, config.points_crs)
    samples = sample_points(imagery, points)
    return config, imagery, samples, sample_features(imagery, config, samples.reflectance)


def test_stac_training_samples_are_the_classifiers_pixels_bit_for_bit(
    demo_world: Any, stac_training: tuple[TrainingConfig, Imagery, Samples, Floats]
) -> None:
    config, imagery, samples, trained = stac_training
    assert len(samples.labels) > 100
    contract = contract_of(imagery, config, samples)
    request = ClassifyRequest(aoi=json.loads(demo_world.aoi.read_text()), datetime=demo_world.datetime_window)
    factory = StacReaderFactory(str(demo_world.catalog))
    seen, valid, grid = classifier_features(
        factory, request, contract, samples.x, samples.y, imagery.grid.crs
    )
    # Different grids (training covers the AOI's bounding box from the tile's origin, the map the AOI),
    # one lattice: the same pixels whatever block they fall in.
    assert grid.crs == imagery.grid.crs
    assert grid.transform != imagery.grid.transform
    assert valid.all(), "the classifier classifies every pixel training sampled"
    np.testing.assert_array_equal(bits(seen), bits(trained))
    # Control: one pixel east, the classifier's features are another pixel's.
    east, _, _ = classifier_features(factory, request, contract, samples.x, samples.y, imagery.grid.crs, 1)
    assert (bits(east) != bits(trained)).any(axis=1).mean() > 0.9


@pytest.mark.parametrize("selection", [{"max_items": 2}, {"max_cloud_cover": 20.0}])
def test_a_recipes_item_selection_is_the_classifiers(demo_world: Any, selection: dict[str, Any]) -> None:
    """A recipe keeping the least cloudy 2 items, or items under 20 % cloud: the classifier does the same.

    The contract records the selection; the classifier composited every item (84 % of the points differed).
    """
    config = load_config(demo_world.training_config).model_copy(update=selection)
    imagery = open_imagery(config, TrainingSettings())
    points = read_points(str(config.points), config.label_field, None, config.points_crs)
    samples = sample_points(imagery, points)
    trained = sample_features(imagery, config, samples.reflectance)
    contract = contract_of(imagery, config, samples)
    assert contract.inputs.max_items == config.max_items
    assert contract.inputs.max_cloud_cover == config.max_cloud_cover
    request = ClassifyRequest(aoi=json.loads(demo_world.aoi.read_text()), datetime=demo_world.datetime_window)
    factory = StacReaderFactory(str(demo_world.catalog))
    reader = factory.open(request, factory.prepare_grid(request, contract), contract)
    found = sum(1 for _ in factory.item_source().search(datetime=demo_world.datetime_window))
    chosen = [source.id for source in reader.sources()]
    assert chosen == [item.id for item in imagery.items]  # type: ignore[attr-defined]
    assert 0 < len(chosen) < found
    seen, valid, _ = classifier_features(factory, request, contract, samples.x, samples.y, imagery.grid.crs)
    assert valid.all()
    np.testing.assert_array_equal(bits(seen), bits(trained))


def test_the_stac_case_covers_median_scl_masking_and_a_20m_band(
    stac_training: tuple[TrainingConfig, Imagery, Samples, Floats],
) -> None:
    """What the bit-for-bit test above exercises at the training points (so it could fail there)."""
    config, imagery, samples, _ = stac_training
    assert config.composite == "median"
    items = imagery.items  # type: ignore[attr-defined]
    assert len(items) >= 3
    assert {items[0].bands[b].resolution for b in config.bands} == {10, 20}
    # Each date alone: some training points are under cloud or shadow (SCL), and many are clear on
    # several dates, so the composite is a median of dates, not one date's value.
    reader = imagery.reader  # type: ignore[attr-defined]
    clear = []
    for item in reader.items:
        single = dataclasses.replace(imagery, reader=dataclasses.replace(reader, items=(item,)))
        alone = sample_points(single, _points_of(samples, imagery))
        assert all(d.reason != "outside imagery" for d in alone.dropped)
        clear.append(np.isin(samples.index, alone.index))
    per_point = np.sum(clear, axis=0)
    assert (per_point < len(items)).sum() > 10, "SCL masks dates at some training points"
    assert (per_point >= 3).sum() > 10, "a median over several dates at others"
    # The scaling both sides share is float32 (DN * 1e-4 here): float64 rounded to float32 differs in
    # the last bit at many of these very points, which the bit-for-bit comparison would catch.
    assert {(items[0].bands[b].scale, items[0].bands[b].offset) for b in config.bands} == {(1e-4, 0.0)}
    dn = np.rint(samples.reflectance.astype(np.float64) * 10_000)
    float64_scaled = (dn * 1e-4).astype(np.float32)
    assert (bits(float64_scaled) != bits(samples.reflectance)).any(axis=1).sum() > 10


def _points_of(samples: Samples, imagery: Imagery) -> Any:
    """The kept training points again, as points in the imagery's CRS (index order)."""
    from training.points import LabelledPoints

    labels = np.asarray(samples.labels, dtype=np.int64)
    table = ClassTable.from_labels(sorted({int(v) for v in labels}))
    return LabelledPoints("kept", imagery.grid.rasterio_crs, samples.x, samples.y, labels, table, ["label"])


# ---------------------------------------------------------------------------------------------
# A local GeoTIFF: one the test writes (integer DNs, nodata holes) and the tutorial's image


def write_image(path: Path) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """A 4-band uint16 GeoTIFF (DN, nodata 0 in a few holes) and point centres on it, some in the holes."""
    rng = np.random.default_rng(7)
    height, width = 90, 130
    dn = rng.integers(200, 6000, size=(4, height, width), dtype=np.uint16)
    dn[:, 10:14, 20:30] = 0  # a nodata hole in every band
    dn[2, 50:53, 60:64] = 0  # and one in the red band only
    transform = Affine(10.0, 0.0, 500_003.0, 0.0, -10.0, 4_000_007.0)  # not on any 10 m multiple
    profile = {"driver": "GTiff", "dtype": "uint16", "count": 4, "width": width, "height": height}
    with rasterio.open(
        path,
        "w",
        **profile,
        crs="EPSG:32654",
        transform=transform,
        nodata=0,
        tiled=True,
        blockxsize=32,
        blockysize=32,
    ) as dst:
        dst.write(dn)
    rows = np.concatenate([rng.integers(0, height, 200), [11, 12, 51]])
    cols = np.concatenate([rng.integers(0, width, 200), [25, 21, 61]])
    x = transform.c + (cols + 0.5) * transform.a
    y = transform.f + (rows + 0.5) * transform.e
    labels = np.asarray([1 + i % 3 for i in range(len(rows))], dtype=np.int64)
    return x, y, labels


@pytest.fixture(params=["written", "tutorial"])
def local_case(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[TrainingConfig, Any, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """A local-image recipe and its points: a GeoTIFF written here, or the tutorial's (skips if absent)."""
    from training.points import LabelledPoints

    if request.param == "written":
        image = tmp_path / "image.tif"
        x, y, labels = write_image(image)
        config = TrainingConfig.model_validate(
            {"image": str(image), "bands": ["blue", "green", "red", "nir"], "indices": ["ndvi", "ndwi"]}
        )
        table = ClassTable.from_labels([1, 2, 3])
        points = LabelledPoints("written", CRS.from_epsg(32654), x, y, labels, table, ["label"])
        return config, points, x, y
    tutorial: Path = request.getfixturevalue("lulc_py")
    config = TrainingConfig.model_validate(
        {
            "image": str(tutorial / "s2image.tif"),
            "bands": ["blue", "green", "red", "nir"],
            "indices": ["ndvi"],
        }
    )
    points = read_points(str(tutorial / "samples.shp"), "labels", None)
    return config, points, points.x, points.y


def test_local_training_samples_are_the_classifiers_pixels_bit_for_bit(
    local_case: tuple[TrainingConfig, Any, npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> None:
    config, points, _, _ = local_case
    imagery = open_imagery(config, TrainingSettings())
    samples = sample_points(imagery, points)
    trained = sample_features(imagery, config, samples.reflectance)
    assert len(samples.labels) > 50
    contract = contract_of(imagery, config, samples)
    request = ClassifyRequest(aoi=None, datetime="2023-05-01", block_size=64)
    factory = ImageReaderFactory(Path(str(config.image)))
    x, y = points.xy_in(imagery.grid.rasterio_crs)
    rows, cols = imagery.grid.pixel_index(x, y)
    on_map = (rows >= 0) & (rows < imagery.grid.height) & (cols >= 0) & (cols < imagery.grid.width)
    assert on_map.mean() > 0.9
    seen, valid, grid = classifier_features(
        factory, request, contract, x[on_map], y[on_map], imagery.grid.crs
    )
    assert grid.block_size != imagery.grid.block_size, "blocks cut differently on each side"
    # The same pixels are valid on both sides: training dropped exactly what the classifier leaves out.
    kept = np.zeros(len(x), dtype=bool)
    kept[samples.index] = True
    np.testing.assert_array_equal(valid, kept[on_map])
    np.testing.assert_array_equal(bits(seen[kept[on_map]]), bits(trained))
    assert {d.reason for d in samples.dropped} <= {"nodata", "outside imagery"}
    # Control: one pixel east, the classifier's features are another pixel's (the tutorial's image was
    # resampled to its grid, so some neighbours are duplicates: most, not all, differ).
    inner = kept & (cols < imagery.grid.width - 1)
    east, _, _ = classifier_features(factory, request, contract, x[inner], y[inner], imagery.grid.crs, 1)
    at_inner = bits(trained)[inner[kept]]
    assert (bits(east) != at_inner).any(axis=1).mean() > 0.7


def test_the_written_image_exercises_scaling_and_partial_nodata(tmp_path: Path) -> None:
    """The written GeoTIFF's DNs are scaled (DN / 10000) and a hole in one band drops the pixel."""
    image = tmp_path / "image.tif"
    x, y, _ = write_image(image)
    config = TrainingConfig.model_validate({"image": str(image), "bands": ["blue", "green", "red", "nir"]})
    imagery = open_imagery(config, TrainingSettings())
    assert (imagery.radiometry.scale, imagery.radiometry.offset) == (1e-4, 0.0)
    grid = imagery.grid
    rows, cols = grid.pixel_index(x[-3:], y[-3:])
    size = grid.block_size
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):  # two points in the hole, one in red's
        block = grid.block_at(r // size, c // size)
        _, pixels = next(iter(imagery.read_blocks([block])))
        assert np.isnan(pixels.reflectance[:, r - block.row, c - block.col]).all()
    _, pixels = next(iter(imagery.read_blocks([grid.block_at(0, 0)])))
    with rasterio.open(image) as src:
        dn = src.read(1, window=((0, 5), (0, 5))).astype(np.float32)
    np.testing.assert_array_equal(bits(pixels.reflectance[0, :5, :5]), bits(dn * np.float32(1e-4)))
