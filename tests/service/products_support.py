"""Runs for the map-product tests: real ``classify`` outputs of synthetic images with speckled classes.

A small random forest is trained on three spectrally distinct classes; images are drawn from a truth map
(blocks of classes) with enough noise that the classified map has many small patches, the case a minimum
mapping unit is for. Classes have human names with spaces, so machine names must be derived.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import rasterio
from rasterio.transform import from_origin

from lulc.classes import ClassTable, LandCoverClass
from lulc.cog import write_cog
from tests.service.engine_support import export_onnx, fit_forest, make_contract

BANDS = ("red", "nir", "swir16")
MEANS = np.array([[0.03, 0.02, 0.01], [0.05, 0.40, 0.20], [0.20, 0.25, 0.30]], dtype=np.float32)
CLASSES = ClassTable(
    classes=[
        LandCoverClass(value=1, name="Open water", color="#1f78b4", description="Lakes, rivers and ponds."),
        LandCoverClass(value=2, name="Tree cover", color="#33a02c"),
        LandCoverClass(value=3, name="Built-up area", color="#e31a1c"),
    ]
)
ORIGIN = (500000.0, 5000000.0)


def train_model(folder: Path) -> Path:
    """An ONNX random forest for the three classes (bands red, nir, swir16 and NDVI)."""
    rng = np.random.default_rng(0)
    contract = make_contract(CLASSES, [1, 2, 3], bands=BANDS, indices=("ndvi",), scale=1e-4)
    x = np.concatenate([MEANS[k] + rng.normal(0, 0.03, (60, 3)) for k in range(3)]).astype(np.float32)
    ndvi = (x[:, 1] - x[:, 0]) / (x[:, 1] + x[:, 0])
    features = np.column_stack([x, ndvi]).astype(np.float32)
    return export_onnx(
        fit_forest(features, np.repeat(np.arange(1, 4), 60)), 4, contract, folder / "model.onnx"
    )


def truth_map(shape: tuple[int, int], cell: int, seed: int) -> npt.NDArray[np.uint8]:
    """Classes 1-3 in square cells of ``cell`` pixels."""
    rng = np.random.default_rng(seed)
    rows, cols = -(-shape[0] // cell), -(-shape[1] // cell)
    coarse = rng.integers(1, 4, (rows, cols))
    return np.kron(coarse, np.ones((cell, cell), dtype=np.int64))[: shape[0], : shape[1]].astype(np.uint8)


def write_image(
    path: Path, truth: npt.NDArray[np.uint8], noise: float, seed: int, nodata_corner: int = 0
) -> Path:
    """A 3-band uint16 image (reflectance x 10000) drawn from ``truth``; nodata 0 in a top-left square."""
    rng = np.random.default_rng(seed)
    reflectance = MEANS[truth - 1].transpose(2, 0, 1) + rng.normal(0, noise, (3, *truth.shape)).astype(
        np.float32
    )
    dn = np.clip(reflectance * 10000, 1, 65535).astype(np.uint16)
    if nodata_corner:
        dn[:, :nodata_corner, :nodata_corner] = 0
    return write_cog(
        path,
        dn,
        crs="EPSG:32633",
        transform=from_origin(*ORIGIN, 10, 10),
        nodata=0,
        band_descriptions=list(BANDS),
    )


def classify_image(
    model: Path,
    image: Path,
    out: Path,
    block_size: int = 128,
    datetime: str = "2024-06-01",
    probabilities: bool = False,
) -> Path:
    """Run the classification engine on a local image acquired on ``datetime``, as ``lulc classify`` does."""
    from service.engine import classify
    from service.readers import ImageReaderFactory
    from service.request import ClassifyRequest
    from service.runner import load_model

    request = ClassifyRequest(aoi=None, datetime=datetime, block_size=block_size, probabilities=probabilities)
    classify(request, load_model(model), ImageReaderFactory(image), out, workers=1)
    return out


def read_band(path: Path) -> npt.NDArray[np.uint8]:
    """Band 1 of a raster."""
    with rasterio.open(path) as src:
        data: npt.NDArray[np.uint8] = src.read(1)
    return data


@dataclass(frozen=True)
class Runs:
    """Two classifications by one model on one grid, a year apart, of different speckled truths."""

    model: Path
    first: Path
    second: Path


_RUNS: dict[Path, Runs] = {}


def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """The session's pair of 600 x 640 runs (10 m pixels, nodata corners), made once per session."""
    base = tmp_path_factory.getbasetemp()
    if base not in _RUNS:
        folder = tmp_path_factory.mktemp("product-runs")
        model = train_model(folder)
        first = write_image(
            folder / "a.tif", truth_map((600, 640), 40, seed=1), 0.06, seed=1, nodata_corner=50
        )
        second = write_image(
            folder / "b.tif", truth_map((600, 640), 40, seed=2), 0.06, seed=2, nodata_corner=80
        )
        _RUNS[base] = Runs(
            model,
            classify_image(model, first, folder / "run-2024"),
            classify_image(model, second, folder / "run-2025", datetime="2025-06-01"),
        )
    return _RUNS[base]


def speckled(
    rng: np.random.Generator, shape: tuple[int, int], cell: int, noise: float, k: int
) -> npt.NDArray[np.uint8]:
    """Classes 0..k-1 in square cells, a share ``noise`` of pixels flipped at random, some nodata."""
    coarse = rng.integers(0, k, (-(-shape[0] // cell), -(-shape[1] // cell)))
    array = np.kron(coarse, np.ones((cell, cell), dtype=np.int64))[: shape[0], : shape[1]].astype(np.uint8)
    flip = rng.random(shape) < noise
    array[flip] = rng.integers(0, k, int(flip.sum()))
    array[rng.random(shape) < noise / 4] = 255
    return array


def file_map(path: Path, array: npt.NDArray[np.uint8]) -> Path:
    """A tiled GeoTIFF of ``array`` (EPSG:32633, 10 m pixels, nodata 255)."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=array.shape[1],
        height=array.shape[0],
        count=1,
        dtype="uint8",
        tiled=True,
        blockxsize=256,
        blockysize=256,
        crs="EPSG:32633",
        transform=from_origin(0, 0, 10, 10),
        nodata=255,
    ) as dst:
        dst.write(array, 1)
    return path
