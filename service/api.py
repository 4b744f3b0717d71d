"""Classification from Python (a notebook): the engine ``lulc classify`` runs, and the map to look at.

    from service.api import classify
    result = classify("models/tutorial", image="s2image.tif", out="runs/tutorial")
    result.labels()          # the class map as a numpy array (255 = nodata)
    result.areas             # hectares per class (a pandas DataFrame)
    result.figure()          # the map in its class colours (matplotlib)
    result = classify("models/demo", stac="world/catalog.json", aoi="world/aoi.geojson",
                      datetime="2021/2024", out="runs/demo", mmu_ha=0.5)
    result.clean.areas       # the map cleaned to a 0.5 ha minimum mapping unit (runs/demo/clean)
    series = classify_series("models/demo", stac="world/catalog.json", aoi="world/aoi.geojson",
                             datetime="2021/2024", every="year", out="runs/yearly")
    series.areas             # hectares per class (columns) and year (rows)

Bad input raises the same ``LulcError`` subclasses, with the same messages, as ``lulc classify``.
"""

from __future__ import annotations

import inspect
import json
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lulc.classes import ClassTable
from lulc.errors import InputError
from lulc.progress import Progress
from service.local_run import DEFAULT_MAX_MPX, prepare_run, unmapped_note


@dataclass(frozen=True)
class MapRun:
    """A finished classification: its files, its STAC item and its class statistics."""

    classes: Path
    confidence: Path | None
    probabilities: Path | None
    item: dict[str, Any]
    stats: dict[str, Any]
    table: ClassTable
    """The model's classes: values, names and colours."""
    clean: MapRun | None = None
    """The map cleaned to the minimum mapping unit asked for (``mmu_ha=``), a run of its own."""
    aoa: Path | None = None
    """``aoa.tif``: where the model can be trusted (DI x 100, when the model carries an AOA)."""
    sets: Path | None = None
    """``sets.tif``: the calibrated class sets (size, bitmask), when the model carries them."""
    notes: tuple[str, ...] = ()
    """What ``lulc classify`` prints beside its areas: a part of the AOI without class (notebook review)."""

    def __fspath__(self) -> str:
        """The run folder: ``assess(run, ...)``, ``clean``... take the run itself (notebook review)."""
        return str(self.classes.parent)

    def labels(self) -> npt.NDArray[np.uint8]:
        """The class map (uint8; 255 outside the AOI or where no valid pixel was seen)."""
        import rasterio

        with rasterio.open(self.classes) as src:
            return np.asarray(src.read(1), dtype=np.uint8)

    @property
    def areas(self) -> Any:
        """Pixels and hectares per class, of the AOI's mapped part (``notes`` says when it is not all)."""
        import pandas as pd

        return pd.DataFrame(self.stats["classes"]).set_index("name")

    def figure(self, title: str | None = None) -> Any:
        """The map in its class colours with a legend (matplotlib Figure; nodata transparent)."""
        from matplotlib.colors import ListedColormap
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch

        labels = self.labels()
        lut = np.zeros((256, 4))
        for entry in self.table.classes:
            lut[entry.value] = [channel / 255 for channel in entry.rgba]
        figure = Figure(figsize=(8, 8 * labels.shape[0] / max(labels.shape[1], 1) + 0.5))
        axes = figure.subplots()
        axes.imshow(labels, cmap=ListedColormap(lut), vmin=0, vmax=255, interpolation="nearest")
        axes.set_axis_off()
        axes.legend(
            handles=[Patch(color=lut[c.value], label=c.name) for c in self.table.classes],
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
        )
        axes.set_title(title or self.item.get("id", self.classes.name))
        figure.tight_layout()
        return figure


def classify(
    model: str | os.PathLike[str],
    *,
    out: str | Path,
    image: str | Path | None = None,
    image_bands: Sequence[str] | None = None,
    scale: float | None = None,
    offset: float | None = None,
    stac: str | None = None,
    collection: Sequence[str] | None = None,
    max_cloud_cover: float | None = None,
    aoi: object = None,
    datetime: str | date | None = None,
    crs: str | None = None,
    block_size: int = 512,
    confidence: bool = True,
    probabilities: bool = False,
    aoa: bool = True,
    sets: bool = True,
    mmu_ha: float | None = None,
    mmu_connectivity: int = 4,
    workers: int = 2,
    threads: int = 1,
    max_mpx: float = DEFAULT_MAX_MPX,
    progress: Progress | None = None,
) -> MapRun:
    """Classify as ``lulc classify`` does: a model directory or file, a local image or a STAC source.

    ``aoi`` (required with ``stac``): a GeoJSON mapping or geometry with ``__geo_interface__`` in lon/lat, a
    GeoDataFrame (reprojected), a vector file's path or ``"w,s,e,n"``. ``image_bands`` names all the image's
    bands in order when it names none (as ``training.api.train`` takes them); ``scale`` and ``offset`` turn
    its values into reflectance (``value x scale + offset``), over the image's own scaling. ``mmu_ha`` also
    cleans the map to that minimum mapping unit into ``out/clean`` (``MapRun.clean``). ``max_mpx``: the
    largest output grid of a STAC run, as ``--max-mpx``.

    Raises:
        LulcError: bad input, no items, a model the inputs cannot feed, unreadable rasters.
    """
    from service.engine import classify as run_engine

    check_numbers(locals())
    prepared = prepare_run(os.fspath(model), out=Path(out), **_options(locals()))
    result = run_engine(
        prepared.request, prepared.runner, prepared.factory, out, workers=workers, progress=progress
    )
    return _map_run(result, prepared.runner.contract.classes, image is not None)


@dataclass(frozen=True)
class MapSeries:
    """One map per period (``runs`` by label, e.g. ``"2021"``), the periods skipped and the collection."""

    runs: dict[str, MapRun]
    skipped: dict[str, str]
    """Periods without imagery to classify, and why."""
    collection: Path
    """The series' STAC collection (``collection.json``), linking every period's item."""

    @property
    def areas(self) -> Any:
        """Hectares per class (columns) and period (rows), and each period's ``mapped_fraction`` of the AOI.

        A period mapped over part of the AOI (clouds) has smaller areas that are no change on the ground:
        without the column, 38 % of an AOI mapped read as forest loss (notebook review).
        """
        import pandas as pd

        rows = {
            label: {
                **{row["name"]: row["hectares"] for row in run.stats["classes"]},
                "mapped_fraction": run.stats.get("mapped_fraction"),
            }
            for label, run in self.runs.items()
        }
        return pd.DataFrame.from_dict(rows, orient="index")


def classify_series(
    model: str | os.PathLike[str],
    *,
    out: str | Path,
    stac: str,
    aoi: object,
    datetime: str,
    every: str = "year",
    collection: Sequence[str] | None = None,
    max_cloud_cover: float | None = None,
    crs: str | None = None,
    block_size: int = 512,
    confidence: bool = True,
    probabilities: bool = False,
    aoa: bool = True,
    sets: bool = True,
    mmu_ha: float | None = None,
    mmu_connectivity: int = 4,
    workers: int = 2,
    threads: int = 1,
    max_mpx: float = DEFAULT_MAX_MPX,
    progress: Progress | None = None,
) -> MapSeries:
    """``lulc classify --every``: a map per year, season or month of ``datetime`` (one model); a collection.

    The options are ``classify``'s (``max_mpx`` bounds each period's grid, the same for all).

    Raises:
        LulcError: as ``classify``; ``NoItemsError`` when no period has imagery.
    """
    from service.series import classify_series as run_series

    check_numbers(locals())
    prepared = prepare_run(os.fspath(model), out=Path(out), **_options(locals()))
    result = run_series(
        prepared.request, prepared.runner, prepared.factory, out, every, workers=workers, progress=progress
    )
    table = prepared.runner.contract.classes
    runs = {label: _map_run(run, table) for label, run in result.runs.items()}
    return MapSeries(runs, result.skipped, result.collection)


NUMBER_ARGUMENTS: dict[str, bool] = {
    "scale": False,
    "offset": False,
    "max_cloud_cover": False,
    "mmu_ha": False,
    "max_mpx": False,
    "block_size": True,
    "mmu_connectivity": True,
    "workers": True,
    "threads": True,
}
"""The numeric keyword arguments of ``classify`` and ``classify_series``: True for whole numbers."""


def check_numbers(arguments: dict[str, Any]) -> None:
    """Refuse a numeric keyword argument given as text or another type, in one line.

    ``mmu_ha="0.5"`` or ``block_size="256"`` raised a TypeError from deep inside the engine (notebook review);
    numpy's numbers are numbers too.

    Raises:
        InputError: an argument of ``NUMBER_ARGUMENTS`` is neither None nor a number of its kind.
    """
    for name, whole in NUMBER_ARGUMENTS.items():
        value = arguments.get(name)
        kind = numbers.Integral if whole else numbers.Real
        if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
            continue
        what = "a whole number" if whole else "a number"
        raise InputError(f"{name}= must be {what}, got {type(value).__name__} {value!r}")


def _options(arguments: dict[str, Any]) -> dict[str, Any]:
    """``prepare_run``'s keyword arguments from ``classify``'s (or ``classify_series``'s) own."""
    taken = inspect.signature(prepare_run).parameters
    options = {
        name: value for name, value in arguments.items() if name in taken and name not in ("model", "out")
    }
    image = arguments.get("image")
    options["image"] = Path(image) if image is not None else None
    options["when"] = arguments["datetime"]
    return options


def _map_run(result: Any, table: ClassTable, local_image: bool = False) -> MapRun:
    """A ``MapRun`` of an engine result, with its cleaned map when it has one."""
    clean = None
    if result.clean is not None and result.clean_stats is not None:
        from service.output import CLASSES_NAME, CONFIDENCE_NAME
        from service.publish import ITEM_NAME

        confidence = result.clean / CONFIDENCE_NAME
        clean = MapRun(
            result.clean / CLASSES_NAME,
            confidence if confidence.is_file() else None,
            None,
            json.loads((result.clean / ITEM_NAME).read_text(encoding="utf-8")),
            result.clean_stats,
            table,
        )
    return MapRun(
        result.classes,
        result.confidence,
        result.probabilities,
        result.item_dict,
        result.stats_dict,
        table,
        clean,
        result.aoa,
        result.sets,
        tuple(note for note in [unmapped_note(result.stats_dict, local_image)] if note is not None),
    )
