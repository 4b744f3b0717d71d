"""One block's inference: the valid pixels go to the model in row order and its answers come back to them.

A small real runner (the ``ModelRunner`` Protocol) stands in for ONNX: it derives every answer from the
pixel's own features, so a pixel put back at the wrong place, or features taken from the wrong pixel, shows.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from rasterio.transform import from_origin
from shapely.geometry import box

from lulc.classes import NODATA, ClassTable
from lulc.contract import ModelContract
from lulc.decision import percent
from lulc.grid import Block, OutputGrid
from service.blocks import infer_block
from service.runner import Prediction
from tests.service.engine_support import make_contract

CLASSES = ClassTable.from_labels([1, 2, 3])


class FeatureEcho:
    """Labels 1-3 and probabilities computed from each pixel's features (red, nir, ndvi)."""

    def __init__(self) -> None:
        self.contract: ModelContract = make_contract(
            CLASSES, [1, 2, 3], bands=("red", "nir"), indices=("ndvi",), model_type="rf"
        )
        self.origin = "echo"
        self.item_href = None
        self.calls: list[npt.NDArray[np.float32]] = []

    def predict(self, features: npt.NDArray[np.float32], *, dissimilarity: bool = False) -> Prediction:
        self.calls.append(features)
        labels = (1 + (features[:, 0] * 1000).astype(np.int64) % 3).astype(np.uint8)
        top = np.clip(features[:, 1], 0.34, 1.0).astype(np.float32)
        rest = (1.0 - top) / 2
        probabilities = np.repeat(rest[:, np.newaxis], 3, axis=1)
        probabilities[np.arange(len(labels)), labels - 1] = top
        return Prediction(labels, probabilities)


@pytest.mark.parametrize("inside", ["all", "part", "none"])
def test_answers_return_to_their_pixels(inside: str) -> None:
    rng = np.random.default_rng(5)
    height, width = 37, 53
    reflectance = rng.uniform(0.01, 0.6, (2, height, width)).astype(np.float32)
    if inside != "all":
        reflectance[0, 3, 7] = np.nan  # no valid input there
    aoi = {"all": None, "part": box(0, -300, 330, 0), "none": box(1e6, 1e6, 1e6 + 10, 1e6 + 10)}[inside]
    grid = OutputGrid("EPSG:32654", from_origin(0, 0, 10, 10), width, height, 64, aoi)
    block = Block(0, 0, 0, height, width)
    model = FeatureEcho()
    result = infer_block(model, grid, block, reflectance, confidence=True)
    red, nir = reflectance
    valid = np.isfinite(reflectance).all(axis=0) & grid.aoi_mask(block)
    assert {"all": valid.all(), "part": 0 < valid.sum() < valid.size - 1, "none": not valid.any()}[inside]
    expected = np.full((height, width), NODATA, np.uint8)
    expected[valid] = 1 + (red[valid] * 1000).astype(np.int64) % 3
    np.testing.assert_array_equal(result.labels, expected)
    assert result.confidence is not None
    top = np.full((height, width), NODATA, np.uint8)
    top[valid] = percent(np.clip(nir[valid], 0.34, 1.0))  # rounded to 5 decimals, then to a percent
    np.testing.assert_array_equal(result.confidence, top)
    if valid.any():
        (features,) = model.calls
        np.testing.assert_array_equal(features[:, 0], red[valid])  # row order, valid pixels only
        ndvi = (nir[valid] - red[valid]) / (nir[valid] + red[valid])
        np.testing.assert_allclose(features[:, 2], ndvi, rtol=1e-6)
        assert features.flags.c_contiguous
    else:
        assert model.calls == []
