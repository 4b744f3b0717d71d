"""Classification from Python (a notebook): the engine ``lulc classify`` runs, and the map to look at.

    from service.api import classify
    result = classify("models/tutorial", image="s2image.tif", out="runs/tutorial")
    result.labels()          # the class map as a numpy array (255 = nodata)
    result.areas             # hectares per class (a pandas DataFrame)
    result.figure()          # the map in its class colours (matplotlib)

Bad input raises the same ``LulcError`` subclasses, with the same messages, as ``lulc classify``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lulc.classes import ClassTable
from lulc.errors import InputError
from lulc.progress import Progress


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

    def labels(self) -> npt.NDArray[np.uint8]:
        """The class map (uint8; 255 outside the AOI or where no valid pixel was seen)."""
        import rasterio

        with rasterio.open(self.classes) as src:
            return np.asarray(src.read(1), dtype=np.uint8)

    @property
    def areas(self) -> Any:
        """Pixels and hectares per class."""
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
    model: str | Path,
    *,
    out: str | Path,
    image: str | Path | None = None,
    stac: str | None = None,
    aoi: dict[str, Any] | str | Path | None = None,
    datetime: str | None = None,
    crs: str | None = None,
    block_size: int = 512,
    confidence: bool = True,
    probabilities: bool = False,
    aoa: bool = True,
    sets: bool = True,
    workers: int = 2,
    threads: int = 1,
    progress: Progress | None = None,
) -> MapRun:
    """Classify as ``lulc classify`` does: a model directory or file, a local image or a STAC source.

    ``aoi`` is a GeoJSON mapping or the path of a GeoJSON file (lon/lat); it is required with ``stac``.

    Raises:
        LulcError: bad input, no items, a model the inputs cannot feed, unreadable rasters.
    """
    from service.engine import classify as run_engine
    from service.readers import ImageReaderFactory, ReaderFactory, StacReaderFactory
    from service.request import ClassifyRequest
    from service.runner import load_model

    if (stac is None) == (image is None):
        raise InputError("give exactly one of stac= and image=")
    geojson = _read_aoi(aoi)
    if geojson is None and stac is not None:
        raise InputError("aoi= is required with stac=")
    request = ClassifyRequest(
        aoi=geojson,
        datetime=datetime,
        crs=crs,
        block_size=block_size,
        confidence=confidence,
        probabilities=probabilities,
        aoa=aoa,
        sets=sets,
    )
    factory: ReaderFactory
    if image is not None:
        if not Path(image).is_file():
            raise InputError(f"image {image} does not exist")
        factory = ImageReaderFactory(Path(image))
    else:
        factory = StacReaderFactory(str(stac))
    runner = load_model(model, threads=threads)
    result = run_engine(request, runner, factory, out, workers=workers, progress=progress)
    return MapRun(
        result.classes,
        result.confidence,
        result.probabilities,
        result.item_dict,
        result.stats_dict,
        runner.contract.classes,
    )


def _read_aoi(aoi: dict[str, Any] | str | Path | None) -> dict[str, Any] | None:
    """A GeoJSON mapping as given, or read from a file (checked by the engine's one AOI parser)."""
    if aoi is None or isinstance(aoi, dict):
        return aoi
    return read_aoi_file(Path(aoi))


def read_aoi_file(path: Path) -> dict[str, Any]:
    """The GeoJSON object in an AOI file (``lulc classify --aoi`` and ``classify(aoi=path)`` alike).

    Raises:
        InputError: the file is missing, not JSON text, or not a JSON object.
    """
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(f"AOI file {path} does not exist") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"AOI file {path} is not valid GeoJSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"AOI file {path} is not a GeoJSON object")
    return data
