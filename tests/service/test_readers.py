"""The STAC block reader: scaling, SCL masking and both compositing rules, checked against the raw COGs."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling

from lulc.grid import Block, OutputGrid
from service.readers import (
    StacBlockReader,
    StacReaderFactory,
    aligned_offset,
    read_aligned,
    read_warped,
)
from service.request import ClassifyRequest
from service.runner import load_model
from tests.service.conftest import EngineWorld


@pytest.fixture(scope="module")
def opened(engine_world: EngineWorld) -> tuple[StacBlockReader, object]:
    contract = load_model(engine_world.model).contract
    factory = StacReaderFactory(str(engine_world.catalog))
    request = ClassifyRequest(aoi=engine_world.aoi, datetime=engine_world.datetime, block_size=256)
    grid = factory.prepare_grid(request, contract)
    return factory.open(request, grid, contract), grid


def test_one_item_is_scaled_dn_masked_by_scl(opened: tuple[StacBlockReader, object]) -> None:
    reader, _ = opened
    grid = reader.grid
    block = list(grid.blocks())[5]
    masked_total = 0
    for item in reader.items:
        single = replace(reader, items=(item,)).read(block)
        west, south, east, north = grid.block_bounds(block)
        red = item.bands[2]  # the contract's bands are blue, green, red, ...
        assert red.band == "red"
        with rasterio.open(item.scl.href) as scl_src, rasterio.open(red.href) as src:  # type: ignore[union-attr]
            window = rasterio.windows.from_bounds(west, south, east, north, src.transform)
            dn = src.read(1, window=window).astype(np.float64)
            scl_window = rasterio.windows.from_bounds(west, south, east, north, scl_src.transform)
            scl = scl_src.read(
                1, window=scl_window, out_shape=dn.shape, resampling=rasterio.enums.Resampling.nearest
            )
        masked = np.isin(scl, item.mask_classes) | (dn == 0)
        masked_total += int(masked.sum())
        assert np.isnan(single[2][masked]).all()
        expected = (dn * red.scale + red.offset).astype(np.float32)
        np.testing.assert_allclose(single[2][~masked], expected[~masked], rtol=1e-6)
    assert masked_total > 0, "some clouds, shadows or nodata in the block"


def test_median_and_first_valid_composites(opened: tuple[StacBlockReader, object]) -> None:
    reader, _ = opened
    block = list(reader.grid.blocks())[5]
    per_item = np.stack([replace(reader, items=(it,)).read(block) for it in reader.items])
    assert len(reader.items) >= 3
    median = replace(reader, composite="median").read(block)
    first = replace(reader, composite="first-valid").read(block)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected_median = np.nanmedian(per_item, axis=0)
    np.testing.assert_allclose(median, expected_median, rtol=1e-6, equal_nan=True)
    # Both branches of the median: pixels seen on one date only, and pixels seen on several.
    seen = (~np.isnan(per_item).any(axis=1)).sum(axis=0)
    assert (seen == 1).any()
    assert (seen > 1).any()
    # first-valid: the earliest date whose pixel is valid (items are in date order)
    valid = ~np.isnan(per_item).any(axis=1)  # (dates, rows, cols)
    earliest = np.argmax(valid, axis=0)
    rows, cols = np.indices(earliest.shape)
    expected_first = per_item[earliest, :, rows, cols].transpose(2, 0, 1)
    expected_first[:, ~valid.any(axis=0)] = np.nan
    np.testing.assert_allclose(first, expected_first, rtol=1e-6, equal_nan=True)
    assert not np.allclose(np.nan_to_num(first), np.nan_to_num(median)), "the two rules differ somewhere"


def test_a_source_on_the_grid_lattice_is_read_as_a_plain_window_with_the_warped_pixels(
    opened: tuple[StacBlockReader, object],
) -> None:
    """A source on the grid's lattice is read as a plain window, giving exactly the warped pixels.

    That holds for a block hanging over the source's edge too; a 20 m band is not on the lattice.
    """
    reader, _ = opened
    item = reader.items[0]
    red = next(a for a in item.bands if a.band == "red")
    swir = next(a for a in item.bands if a.band == "swir16")
    with rasterio.open(red.href) as src, rasterio.open(swir.href) as coarse:
        # A grid on the band's lattice, starting 100 px up and left of the image.
        shifted = src.transform @ rasterio.Affine.translation(-100, -100)
        grid = OutputGrid(reader.grid.crs, shifted, src.width + 200, src.height + 200, 256, None)
        assert aligned_offset(src, grid) == (-100, -100)
        assert aligned_offset(coarse, grid) is None
        corner = Block(0, 0, 0, 256, 256)  # 100 px outside, 156 px inside, each way
        inside = Block(1, 300, 300, 256, 256)
        for block in (corner, inside):
            fast = read_aligned(src, block, (-100, -100), 0.0)
            warped = read_warped(src, grid, block, 0.0, Resampling.nearest)
            np.testing.assert_array_equal(fast, warped)
        fast = read_aligned(src, corner, (-100, -100), 0.0)
        assert (fast[:100] == 0).all()
        assert (fast[:, :100] == 0).all()
        assert (fast[100:, 100:] > 0).any()
    # Half-pixel shifts are not the lattice.
    half = OutputGrid(reader.grid.crs, shifted @ rasterio.Affine.translation(0.5, 0), 10, 10, 256, None)
    with rasterio.open(red.href) as src:
        assert aligned_offset(src, half) is None


@pytest.mark.parametrize("block_size", [512, 200, 37])
def test_the_aoi_mask_of_every_block_is_the_pixel_centres_inside_the_aoi(block_size: int) -> None:
    import shapely
    from rasterio.transform import from_origin

    # A star whose edges cross blocks and cells at every angle, with a hole: the mask is tested cell by
    # cell along the boundary, and must be what testing every pixel centre gives.
    angles = np.linspace(0, 2 * np.pi, 23, endpoint=False)
    radii = np.where(np.arange(23) % 2 == 0, 4000.0, 1700.0)
    star = shapely.Polygon(np.c_[5000 + radii * np.cos(angles), 5000 + radii * np.sin(angles)])
    aoi = star.difference(shapely.Point(5000, 5000).buffer(900))
    grid = OutputGrid("EPSG:32654", from_origin(0, 10000, 10, 10), 1000, 1000, block_size, aoi)
    cols, rows = np.meshgrid(np.arange(1000) + 0.5, np.arange(1000) + 0.5)
    truth = shapely.contains_xy(aoi, cols * 10.0, 10000 - rows * 10.0)
    mask = np.zeros((1000, 1000), dtype=bool)
    for block in grid.blocks():
        mask[block.row : block.row + block.height, block.col : block.col + block.width] = grid.aoi_mask(block)
    assert 0.1 < truth.mean() < 0.9  # the control: a mask with both sides
    np.testing.assert_array_equal(mask, truth)


def test_two_tiles_of_one_acquisition_are_one_date_in_the_median(
    opened: tuple[StacBlockReader, object],
) -> None:
    """Adjacent MGRS tiles of one pass overlap: there they must not vote twice (review finding)."""
    reader, _ = opened
    block = list(reader.grid.blocks())[5]
    first, *rest = reader.items
    twin = replace(first, id=f"{first.id}-next-tile")  # the same acquisition under a second id
    once = replace(reader, items=(first, *rest)).read(block)
    twice = replace(reader, items=(first, twin, *rest)).read(block)
    np.testing.assert_array_equal(twice, once)
    # the control: a second date with the same pixels (a day later) does vote, and moves the median
    later = replace(
        first,
        id=f"{first.id}-a-day-later",
        datetime=first.datetime + timedelta(days=1),
    )
    moved = replace(reader, items=(first, later, *rest)).read(block)
    assert not np.array_equal(np.nan_to_num(moved), np.nan_to_num(once))


def test_a_contract_that_masks_no_scl_class_masks_none(engine_world: EngineWorld) -> None:
    """``mask_scl: []`` is a choice (mask nothing), not a missing value that falls back to the defaults."""
    contract = load_model(engine_world.model).contract
    factory = StacReaderFactory(str(engine_world.catalog))
    request = ClassifyRequest(aoi=engine_world.aoi, datetime=engine_world.datetime, block_size=256)
    grid = factory.prepare_grid(request, contract)
    assert all(item.mask_classes for item in factory.open(request, grid, contract).items)  # the control
    nothing = contract.model_copy(update={"inputs": contract.inputs.model_copy(update={"mask_scl": []})})
    assert [item.mask_classes for item in factory.open(request, grid, nothing).items] == [()] * len(
        factory.open(request, grid, contract).items
    )


def test_a_jpeg2000_asset_is_refused_with_the_reason_before_any_read(engine_world: EngineWorld) -> None:
    """Rasters open as GeoTIFF only: a .jp2 band (Copernicus' archive) is named up front (review finding)."""
    from lulc.errors import SourceError
    from lulc.pixels.stac import item_assets

    contract = load_model(engine_world.model).contract
    factory = StacReaderFactory(str(engine_world.catalog))
    request = ClassifyRequest(aoi=engine_world.aoi, datetime=engine_world.datetime, block_size=256)
    grid = factory.prepare_grid(request, contract)
    item = factory.item_source().search(datetime=engine_world.datetime)[0]
    assert item_assets(item, contract.inputs.bands, grid).bands  # the control: COGs are fine
    red = item.bands["red"]
    jp2 = replace(item, bands={**item.bands, "red": replace(red, href=red.href.replace(".tif", ".jp2"))})
    with pytest.raises(SourceError, match="is JPEG 2000"):
        item_assets(jp2, contract.inputs.bands, grid)


def test_a_float_band_whose_nodata_is_nan_marks_those_pixels_nodata(tmp_path: Path) -> None:
    """STAC's raster:nodata may be the string "nan": parsed as NaN, and NaN pixels are not OK (review)."""
    import json as jsonlib
    from datetime import UTC, datetime

    import shapely.geometry
    from rasterio.transform import from_origin

    from lulc.cog import write_cog
    from lulc.pixels.stac import ItemAssets
    from lulc.pixels.types import Status
    from lulc.sentinel2 import normalize_item

    raw = jsonlib.loads(
        (Path(__file__).parents[1] / "data" / "items" / "earth-search-v1-sentinel-2-l2a.json").read_text()
    )
    raw["assets"]["red"]["raster:bands"][0]["nodata"] = "nan"
    band = normalize_item(raw).band("red")
    assert np.isnan(band.nodata)  # was 0.0: the string was not a number
    data = np.full((1, 64, 64), 0.2, dtype=np.float32)
    data[0, :8, :8] = np.nan
    transform = from_origin(500_000, 4_000_000, 10, 10)
    href = write_cog(tmp_path / "red.tif", data, crs="EPSG:32633", transform=transform, nodata=None)
    grid = OutputGrid("EPSG:32633", transform, 64, 64, 64)
    asset = replace(band, href=str(href), scale=1.0, offset=0.0)
    item = ItemAssets(
        "float",
        str(href),
        datetime(2024, 6, 1, tzinfo=UTC),
        shapely.geometry.box(*grid.bounds),
        (asset,),
        None,
        (),
    )
    pixels = StacBlockReader(grid, (item,)).read_pixels(next(iter(grid.blocks())))
    assert (pixels.status[:8, :8] == Status.NODATA).all()
    assert (pixels.status[8:, 8:] == Status.OK).all()
    assert np.isnan(pixels.reflectance[:, :8, :8]).all()
