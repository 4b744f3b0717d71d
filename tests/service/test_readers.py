"""The STAC block reader: scaling, SCL masking and both compositing rules, checked against the raw COGs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import rasterio

from service.engine import ClassifyRequest
from service.readers import StacBlockReader, StacReaderFactory
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
    # first-valid: the earliest date whose pixel is valid (items are in date order)
    valid = ~np.isnan(per_item).any(axis=1)  # (dates, rows, cols)
    earliest = np.argmax(valid, axis=0)
    rows, cols = np.indices(earliest.shape)
    expected_first = per_item[earliest, :, rows, cols].transpose(2, 0, 1)
    expected_first[:, ~valid.any(axis=0)] = np.nan
    np.testing.assert_allclose(first, expected_first, rtol=1e-6, equal_nan=True)
    assert not np.allclose(np.nan_to_num(first), np.nan_to_num(median)), "the two rules differ somewhere"
