"""A summary of a demo world read back from its files: items, cloud cover, points and truth per class."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyogrio
import pystac
import rasterio

from demo.world import DemoWorld
from lulc.classes import NODATA, load_class_table


@dataclass(frozen=True)
class ItemRow:
    """One item of the catalog."""

    id: str
    datetime: str
    baseline: str
    cloud_cover: float
    nodata: float


@dataclass(frozen=True)
class ClassRow:
    """One class: its points and its share of the truth map."""

    value: int
    name: str
    train: int
    validation: int
    share: float


@dataclass(frozen=True)
class Summary:
    """What a demo world holds."""

    items: list[ItemRow]
    classes: list[ClassRow]


def _labels(path: str) -> np.ndarray:
    _, _, _, fields = pyogrio.raw.read(path, columns=["label"], read_geometry=False)
    return np.asarray(fields[0])


def summarize(world: DemoWorld) -> Summary:
    """Read the world's catalog, points and truth back and summarise them."""
    catalog = pystac.Catalog.from_file(str(world.catalog))
    items = sorted(catalog.get_items(recursive=True), key=lambda item: (item.datetime, item.id))
    item_rows = [
        ItemRow(
            id=item.id,
            datetime=str(item.properties["datetime"]),
            baseline=str(item.properties["s2:processing_baseline"]),
            cloud_cover=float(item.properties["eo:cloud_cover"]),
            nodata=float(item.properties["s2:nodata_pixel_percentage"]),
        )
        for item in items
    ]
    table = load_class_table(world.classes)
    train = _labels(str(world.train_points))
    validation = _labels(str(world.validation_points))
    with rasterio.open(world.truth) as src:
        truth = src.read(1)
    class_rows = [
        ClassRow(
            value=c.value,
            name=c.name,
            train=int((train == c.value).sum()),
            validation=int((validation == c.value).sum()),
            share=100.0 * float((truth == c.value).mean()),
        )
        for c in table.classes
    ]
    return Summary(items=item_rows, classes=class_rows)


def on_truth_grid(classes: Path, truth: Path) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """A class map resampled (nearest) onto a truth raster's grid, and the truth, to compare pixels."""
    from rasterio.warp import reproject

    with rasterio.open(classes) as src, rasterio.open(truth) as ref:
        mapped = np.full(ref.shape, NODATA, dtype=np.uint8)
        reproject(
            src.read(1),
            mapped,
            src_transform=src.transform,
            src_crs=src.crs,
            dst_transform=ref.transform,
            dst_crs=ref.crs,
            src_nodata=NODATA,
            dst_nodata=NODATA,
        )
        known: npt.NDArray[np.uint8] = ref.read(1)
    return mapped, known


def at_validation_points(world: DemoWorld, folder: Path) -> dict[str, npt.NDArray[Any]]:
    """A run's layers at the world's validation points, with their true labels.

    ``truth`` (labels), ``labels`` (classes.tif), and where the run has them ``di`` (aoa.tif: DI x 100),
    ``sets`` (sets.tif: size, bitmask) and ``percent`` (probabilities.tif: one band per class).
    """
    import geopandas as gpd

    points = gpd.read_file(world.validation_points).to_crs(world.epsg)
    xy = list(zip(points.geometry.x, points.geometry.y, strict=True))
    found: dict[str, npt.NDArray[Any]] = {"truth": points["label"].to_numpy()}
    for key, name, first_band in (
        ("labels", "classes.tif", True),
        ("di", "aoa.tif", True),
        ("sets", "sets.tif", False),
        ("percent", "probabilities.tif", False),
    ):
        if (folder / name).exists():
            with rasterio.open(folder / name) as src:
                values = np.array(list(src.sample(xy)))
            found[key] = values[:, 0] if first_band else values
    return found
