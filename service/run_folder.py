"""A finished classification run as ``lulc classify`` writes it: the folder the map products start from.

A run folder holds ``classes.tif`` (the categorical COG), ``item.json`` (its STAC item), ``stats.json``
(pixels and hectares per class, the true ground area of a pixel) and usually ``confidence.tif``. The class
table is read from the COG itself (``CLASS_<value>`` band tags and the colour table), so it survives a copy
of the COG alone; the item's ``classification:classes`` is the fallback.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine

from lulc.classes import NODATA, ClassTable, raster_class_table
from lulc.errors import InputError
from lulc.gdal_env import gdal_env
from lulc.grid import crs_text
from lulc.local_files import read_json
from lulc.urls import missing_file
from service.output import CLASSES_NAME, CONFIDENCE_NAME, SERIES, STATS_NAME, series_or_runs
from service.publish import ITEM_NAME


@dataclass(frozen=True)
class RunGrid:
    """The pixel grid of a map: CRS, transform and shape."""

    crs: CRS
    transform: Affine
    height: int
    width: int

    def describe(self) -> str:
        """A short text naming the grid, for error messages."""
        t = self.transform
        return f"{crs_text(self.crs)} {self.width}x{self.height} px of {t.a:g} m at ({t.c!r}, {t.f!r})"


@dataclass(frozen=True)
class RunFolder:
    """The parts of a finished run that the map products use."""

    path: Path
    classes_path: Path
    confidence_path: Path | None
    item: dict[str, Any]
    stats: dict[str, Any]
    classes: ClassTable
    grid: RunGrid
    nodata: int

    @property
    def item_path(self) -> Path:
        """The run's ``item.json``."""
        return self.path / ITEM_NAME

    @property
    def pixel_area_m2(self) -> float:
        """The true ground area of one pixel (``stats.json``), in square metres."""
        return float(self.stats["pixel_area_m2"])

    @property
    def model(self) -> str | None:
        """The model that made the map (``lulc:model``), if the item names one."""
        value = self.item.get("properties", {}).get("lulc:model")
        return str(value) if value else None


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.exists():
        raise InputError(
            f"run folder {path.parent} has no {path.name} ({what}); is it a `lulc classify` output?"
        )
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise InputError(f"{what} {path} is not a JSON object")
    return data


def _class_table(src: rasterio.io.DatasetReader, item: dict[str, Any], path: Path) -> ClassTable:
    asset = item.get("assets", {}).get("classes", {})
    stac_classes = asset.get("classification:classes") or item.get("properties", {}).get(
        "classification:classes"
    )
    tagged = raster_class_table(src, str(path))
    if tagged is not None:
        return _described(tagged, stac_classes)
    if not stac_classes:
        raise InputError(
            f"{path} names no classes (no CLASS_<value> band tags, no classification:classes in its item)"
        )
    return ClassTable.from_stac(stac_classes)


def _described(table: ClassTable, stac_classes: Any) -> ClassTable:
    """The map's own class table with each class's description from its item, where the item has one.

    The band tags name the classes but carry no description: cleaned, smoothed, vectorised and sampled
    products described "Lakes, rivers and ponds." as "Water" (outputs review).
    """
    if not isinstance(stac_classes, list):
        return table
    described = {
        (c.get("value"), c.get("title") or c.get("name")): c["description"]
        for c in stac_classes
        if isinstance(c, dict) and isinstance(c.get("description"), str)
    }
    rows = [
        row.model_copy(update={"description": described[(row.value, row.name)]})
        if not row.description and described.get((row.value, row.name)) not in (None, "", row.name)
        else row
        for row in table.classes
    ]
    return table.model_copy(update={"classes": rows})


def run_folder_path(path: str | Path) -> Path:
    """The run folder a product command is given: the folder itself, or the folder of its ``classes.tif``.

    ``lulc assess`` takes the map (``RUN/classes.tif``) and the products the run: either names the run
    wherever a run is given (``open_run``).
    """
    given = Path(path)
    return given.parent if given.name == CLASSES_NAME and given.is_file() else given


def open_run(path: str | Path) -> RunFolder:
    """Read and check a run folder (or the folder of the ``classes.tif`` given).

    Raises:
        InputError: the folder, or one of its files, is missing or not what ``lulc classify`` writes.
    """
    folder = run_folder_path(path)
    if folder.is_file():
        raise InputError(
            f"{folder} is a file, not a run: give the output folder of `lulc classify` or its {CLASSES_NAME}"
        )
    if not folder.is_dir():
        raise InputError(missing_file("run folder", folder, " (give the output folder of `lulc classify`)"))
    classes_path = folder / CLASSES_NAME
    if not classes_path.is_file():
        periods = sorted(p.name for p in folder.iterdir() if (p / CLASSES_NAME).is_file())
        if periods:  # a series of maps (lulc classify --every): each period is a run (CLI review)
            shown = ", ".join(periods[:3]) + (", ..." if len(periods) > 3 else "")
            if series_or_runs(periods) == SERIES:
                what, which = "a series of maps", "one of its period folders"
            else:
                what, which = "a folder of runs", "one of them"
            raise InputError(f"{folder} is {what} ({shown}): give {which}, e.g. {folder / periods[0]}")
        raise InputError(f"run folder {folder} has no {CLASSES_NAME}; is it a `lulc classify` output?")
    item = _read_json(folder / ITEM_NAME, "STAC item")
    stats = _read_json(folder / STATS_NAME, "class statistics")
    if not isinstance(stats.get("pixel_area_m2"), int | float) or stats["pixel_area_m2"] <= 0:
        raise InputError(f"{folder / STATS_NAME} has no positive pixel_area_m2")
    try:
        with gdal_env(), warnings.catch_warnings():
            # the CRS is checked below: rasterio's NotGeoreferencedWarning was two more lines (CLI review)
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(classes_path) as src:
                if src.count != 1 or src.dtypes[0] != "uint8":
                    raise InputError(
                        f"{classes_path} is not a one-band uint8 class map ({src.count} x {src.dtypes[0]})"
                    )
                if src.crs is None:
                    raise InputError(
                        f"{classes_path} has no CRS: every map lulc writes has one (is the file cut short?)"
                    )
                grid = RunGrid(src.crs, src.transform, src.height, src.width)
                nodata = int(src.nodata) if src.nodata is not None else NODATA
                classes = _class_table(src, item, classes_path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"{classes_path} cannot be read as a raster: {exc}") from exc
    confidence = folder / CONFIDENCE_NAME
    return RunFolder(
        path=folder,
        classes_path=classes_path,
        confidence_path=confidence if confidence.is_file() else None,
        item=item,
        stats=stats,
        classes=classes,
        grid=grid,
        nodata=nodata,
    )


def read_band(src: rasterio.io.DatasetReader, window: Any, band: int = 1) -> Any:
    """``src.read(band, window=window)``; a damaged file is an ``InputError`` naming it.

    GDAL's own message ("Read failed. See previous exception for details.") named no file, and the
    command printed it as an unexpected error (review: a truncated classes.tif in a run folder).
    """
    from rasterio.errors import RasterioIOError

    from lulc.raster_failures import reason

    try:
        return src.read(band, window=window)
    except RasterioIOError as exc:
        raise InputError(f"{src.name} cannot be read, damaged or cut short: {reason(exc)}") from exc
