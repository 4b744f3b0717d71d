"""Classification outputs: block-wise temporary GeoTIFFs, class and confidence COGs, stats.json, item.json.

Everything is written in a hidden staging folder inside the output folder and moved to its final name
only when complete (``item.json`` last), so an interrupted run leaves nothing at the final paths.
Nothing carries a timestamp and JSON is written with sorted keys: a rerun gives byte-identical files.

Category names: GDAL's GTiff driver keeps category names and raster attribute tables only in a PAM
``.aux.xml`` sidecar (checked with GDAL 3.10: neither reaches the TIFF's ``GDAL_METADATA`` tag). So
the class COG carries (1) the colour table in the TIFF itself, (2) the class names as band metadata
(``CLASS_<value>=<name>``, stored in ``GDAL_METADATA``, survives any copy of the COG alone), and (3) a
``classes.tif.aux.xml`` sidecar with ``CategoryNames`` and a thematic RAT. QGIS 3.22 reads neither into a
legend (it lists all 256 palette entries), so (4) ``classes.qml`` beside the map is a QGIS layer style that
QGIS applies by default when it opens ``classes.tif``: a paletted renderer listing just the classes, with
their names and colours.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.windows import Window

from lulc import applicability
from lulc.checksum import multihash_sha256
from lulc.classes import NODATA, ClassTable
from lulc.cog import HALVING, CogOptions, OverviewLevels, overview_factors, translate_to_cog
from lulc.errors import InputError, LimitError
from lulc.gdal_env import gdal_env
from lulc.grid import Block, OutputGrid
from lulc.signals import held
from lulc.writable import check_writable, nearest_existing
from service.folders import made_folders
from service.publish import ITEM_NAME

CLASSES_NAME = "classes.tif"
CONFIDENCE_NAME = "confidence.tif"
STATS_NAME = "stats.json"
AUX_NAME = f"{CLASSES_NAME}.aux.xml"
QML_NAME = "classes.qml"
PROBABILITIES_NAME = "probabilities.tif"
AOA_NAME = "aoa.tif"
SETS_NAME = "sets.tif"
"""QGIS reads ``<map name>.qml`` beside a raster as the layer's default style."""

CLASSES_COG = CogOptions(overview_resampling="mode", level=4)
"""Class COG: MODE overviews (the most frequent class, never a blend of values), deflate, 512 tiles. Deflate
level 4: the COG translation after the last block cannot overlap with inference, and for the tutorial scene
repeated to 26 Mpx it took 1.96 CPU s at level 6 (4.14 MB), 0.81 s at level 4 (4.48 MB), 0.56 s at level 1
(5.04 MB)."""

CONFIDENCE_COG = CogOptions(overview_resampling="average", level=1)
"""Confidence COG: a continuous 0-100 quantity, so overviews average it (nodata excluded). Deflate level 1:
on such noisy values level 6 costs three times the CPU for files about 5 % smaller (measured on the bench
scene), and the COG translation is the one step of a run that cannot overlap with inference."""

AOA_COG = CogOptions(overview_resampling="max", level=1)
"""Area-of-applicability COG: DI x 100, its overviews the largest DI of the pixels below, so a pixel outside
the area stays outside at every zoom (averaged, the web map hatched half of the extrapolated area at low
zoom: review); deflate level 1 as the confidence."""

SETS_COG = CogOptions(overview_resampling="mode", level=1)
"""Class-set COG: categorical (a count and a bitmask), so MODE overviews like the classes, of whole pixels
(``lulc.cog.halve``: a level never pairs one set's count with another's bitmask); deflate level 1:
half the CPU of level 6 for files about 25 % larger (3.6 -> 4.7 MB at 25 Mpx on the bench scene), paid only
by runs that ask for the sets."""


def dump_json(data: Any) -> str:
    """Stable JSON text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


STAGING_PREFIX = ".lulc-staging-"
"""Prefix of the hidden work folders of runs in progress."""

STALE_STAGING_SECONDS = 24 * 3600
"""A staging folder untouched this long is a killed run's: a live run writes its blocks far more often."""


def remove_stale_staging(out_dir: Path, older_than: float = STALE_STAGING_SECONDS) -> list[Path]:
    """Delete the staging folders in ``out_dir`` that nothing has touched for ``older_than`` seconds.

    A killed run (SIGKILL, power loss) cannot remove its own. A folder any file of which changed recently
    is kept: it may be a live run's, in this process or another writing to the same folder.
    """
    now = time.time()
    removed = []
    for folder in sorted(out_dir.glob(f"{STAGING_PREFIX}*")):
        if folder.is_dir() and now - last_change(folder) >= older_than:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def last_change(folder: Path) -> float:
    """The newest modification time of ``folder`` and everything in it."""
    newest = folder.stat().st_mtime
    for path in folder.rglob("*"):
        try:
            newest = max(newest, path.lstat().st_mtime)
        except OSError:
            continue
    return newest


def refuse_here_or_root(path: Path, named: str, instead: str) -> None:
    """Refuse the current folder or the file system's root as a folder to write (``""``, ``.``, ``/``).

    Raises:
        InputError: ``{named} {path} is the current folder: {instead}`` (or the root).
    """
    resolved = path.resolve()
    here = resolved == Path.cwd().resolve()
    if here or resolved == Path(resolved.anchor):
        place = "the current folder" if here else "the file system's root"
        raise InputError(f"{named} {str(path) or '.'} is {place}: {instead}")


def check_out_folder(out_dir: Path, product: str | None = None) -> None:
    """Refuse, before any work, an output folder whose contents a run would mix with its own (all are kept).

    A run replaces its own files in ``out_dir`` and leaves anything else there, so ``out_dir`` must be new,
    empty, or an earlier run of the same kind (a rerun): not a file, not the current folder or the file
    system's root (``--out ""``, ``--out .``, ``--out /``), not a folder of someone's own files, not another
    product's run (a cleaned map written over a map left its old AOA and sets beside the new classes; a change
    took over a map's ``item.json``). ``product`` is the run's ``lulc:product``: None for a map of
    ``lulc classify``, ``SERIES`` for its series (``--every``: period folders, then ``collection.json``).

    Raises:
        InputError: any of those.
    """
    refuse_file(out_dir)
    refuse_here_or_root(out_dir, "--out", "give a folder of the run's own, e.g. --out runs/map")
    folder = nearest_existing(out_dir)
    if folder is not None and folder.is_dir():  # CLI review: a read-only folder's error named staging files
        check_writable(folder, f"--out {out_dir}")
    refuse_other_runs(out_dir, "--out", product)


def refuse_other_runs(folder: Path, named: str, product: str | None) -> None:
    """Refuse a folder of someone's own files or of another product's run (``product``: as ``product_in``).

    Raises:
        InputError: ``{named} {folder} holds files of no run (...)`` or ``... holds a X, not a Y: ...``.
    """
    found = refuse_foreign_files(folder, named)
    if found != _EMPTY and found != product:
        raise InputError(
            f"{named} {folder} holds a {_PRODUCTS.get(found, str(found))}, not a {_PRODUCTS.get(product)}: "
            "give a new or empty folder, or an earlier run of the same kind"
        )


_EMPTY = "empty"
"""What ``refuse_foreign_files`` finds in a missing folder or one holding only hidden files."""


def refuse_foreign_files(folder: Path, named: str) -> str | None:
    """Refuse a folder holding files of no run (someone's own): a run written there would mix with them.

    Returns what run the folder holds (``product_in``), or ``_EMPTY`` for a missing or empty folder.

    Raises:
        InputError: ``{named} {folder} holds files of no run (...)``.
    """
    if not folder.is_dir():
        return _EMPTY
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    if not names:
        return _EMPTY
    found = product_in(folder)
    if found == _NO_RUN:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise InputError(
            f"{named} {folder} holds files of no run ({shown}): give a new or empty folder, or an earlier "
            "run's"
        )
    return found


def refuse_file(out_dir: Path) -> None:
    """``InputError`` if ``out_dir`` is an existing file (which is left as it is)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file: give a folder (the file is left as it is)")


SERIES = "series"
"""A series of maps (``lulc classify --every``) to ``check_out_folder``: it has no ``lulc:product``."""
RUNS = "runs"
"""A folder of runs (each subfolder a map) that is not a series: its subfolders are not named as periods."""
PERIOD_NAME = re.compile(r"\d{4}(-(0[1-9]|1[0-2]|DJF|MAM|JJA|SON))?")
"""The name of a series' period folder (``service.series``): a year, a month (``2021-07``) or a season
(``2021-DJF``)."""


def series_or_runs(names: Iterable[str]) -> str:
    """``SERIES`` if every one of ``names`` (subfolders holding maps) is a period's, else ``RUNS``."""
    return SERIES if all(PERIOD_NAME.fullmatch(name) for name in names) else RUNS


MODEL = "model"
"""A model folder (``lulc train``: ``model.onnx`` and its ``model.json``), to name it when refusing it."""

_PRODUCTS = {
    None: "map (lulc classify)",
    SERIES: "series of maps (lulc classify --every)",
    RUNS: "set of runs (one in each subfolder)",
    MODEL: "model (lulc train)",
    "clean": "cleaned map (lulc clean)",
    "smooth": "smoothed map (lulc smooth)",
    "change": "change (lulc change)",
}


_NO_RUN = "no run"


def product_in(folder: Path) -> str | None:
    """What ``folder`` holds: its item's ``lulc:product`` (None: a map), ``SERIES``, ``RUNS``, ``MODEL``...

    ... or ``_NO_RUN``. A series is known by its ``collection.json`` or, cut short before it was written,
    by its subfolders holding maps, all named as periods; other subfolders holding maps make a folder of runs
    (it was called a series: "destination runs holds a series of maps" for ``lulc publish runs/a runs``). A
    cleaned map of before ``lulc:product`` by its ``lulc:mmu_pixels``.
    """
    item = folder / ITEM_NAME
    if not item.is_file():
        if (folder / "model.onnx").is_file():  # README review: it was "files of no run (... model.json ...)"
            return MODEL
        if (folder / "collection.json").is_file():
            return SERIES
        # a map's folder has its item: only those are read (the whole tree below was walked, review)
        maps = [p.name for p in folder.iterdir() if not p.name.startswith(".") and (p / ITEM_NAME).is_file()]
        maps = [name for name in maps if product_in(folder / name) is None]
        if not maps:
            return _NO_RUN
        return series_or_runs(maps)
    try:
        properties = json.loads(item.read_text(encoding="utf-8")).get("properties", {})
    except (OSError, ValueError, AttributeError):
        return _NO_RUN
    if not isinstance(properties, dict):
        return _NO_RUN
    product = properties.get("lulc:product", "clean" if "lulc:mmu_pixels" in properties else None)
    return product if isinstance(product, str) or product is None else _NO_RUN


@contextmanager
def staging_dir(out_dir: Path) -> Iterator[Path]:
    """A hidden folder inside ``out_dir`` for work files, removed whatever happens.

    Stale staging folders of killed runs in ``out_dir`` are removed first. The folders made for ``out_dir``
    are removed again when the run leaves them empty (it failed): a failed run leaves no trace.
    """
    refuse_file(out_dir)
    with ExitStack() as stack:
        try:
            stack.enter_context(made_folders(out_dir))
            with held():  # an interrupt between the two left the folder behind (review)
                path = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
                stack.callback(shutil.rmtree, path, ignore_errors=True)
        except PermissionError as exc:
            raise InputError(f"cannot write into --out {out_dir}: permission denied") from exc
        remove_stale_staging(out_dir)  # not the one just made: it is new
        yield path


def check_working_space(folder: Path, width: int, height: int, factors: Sequence[int], bands: int) -> None:
    """Refuse, before any block, a map whose uncompressed overview levels cannot fit the free disk space.

    The levels are staged uncompressed (``lulc.cog.OverviewLevels``), one byte per pixel and band: GDAL
    checks each file's size against the free space as it creates it, which for a continent-sized AOI gave
    an "unexpected RasterioIOError" after the blocks had started (CLI review). The maps themselves are
    compressed and not counted.

    Raises:
        LimitError: the levels need more bytes than ``folder``'s file system has free.
    """
    needed = bands * sum(-(-width // f) * -(-height // f) for f in factors)
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise LimitError(
            f"a {width:,} x {height:,} px map needs about {needed / 2**30:,.1f} GiB of working space for its "
            f"overview levels in {folder.parent}, where {free / 2**30:,.1f} GiB are free: classify a smaller "
            "AOI, or its parts apart"
        )


def staging_profile(crs: Any, transform: Any, width: int, height: int) -> dict[str, Any]:
    """The rasterio profile of a temporary uint8 map written block by block before its COG translation.

    Tiled 512, fast zstd (the file lives for one run), nodata 255, BigTIFF only when needed.
    """
    return {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "uint8",
        "crs": crs,
        "transform": transform,
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "zstd",
        "zstd_level": 1,
        "bigtiff": "if_safer",
    }


@dataclass(frozen=True)
class Layer:
    """An optional output map: its file, asset key, bands and how its overviews are made."""

    key: str
    file: str
    title: str
    descriptions: tuple[str, ...]
    unit: str | None
    cog: CogOptions
    scale: float | None = None
    """``raster:bands`` ``scale`` of its bands: what a stored value times gives (the DI of ``aoa.tif``)."""
    band_fields: tuple[Mapping[str, Any], ...] = ()
    """More ``raster:bands`` fields, band by band (the bit fields of the set bitmask)."""


def set_bitfields(classes: ClassTable) -> list[dict[str, Any]]:
    """``classification:bitfields`` of the set bitmask: bit i (one bit) says whether class i is in the set."""
    return [
        {
            "name": c["name"],
            "description": f"{c['title']} is in the pixel's class set",
            "offset": bit,
            "length": 1,
            "classes": [
                {"value": 0, "name": "not-in-set", "title": "not in the set"},
                {"value": 1, "name": "in-set", "title": "in the set"},
            ],
        }
        for bit, c in enumerate(classes.to_stac())
    ]


def layer_specs(keys: frozenset[str], classes: ClassTable) -> list[Layer]:
    """The optional maps asked for, in a fixed order (probabilities, aoa, sets)."""
    specs = {
        "probabilities": Layer(
            "probabilities",
            PROBABILITIES_NAME,
            "Class probabilities (percent), one band per class in class-table order",
            tuple(c.name for c in classes.classes),
            "percent",
            CONFIDENCE_COG,
        ),
        "aoa": Layer(
            "aoa",
            AOA_NAME,
            "Dissimilarity index x 100: inside the area of applicability where DI <= lulc:aoa_threshold",
            ("dissimilarity index x 100",),
            None,
            AOA_COG,
            1.0 / applicability.SCALE,
        ),
        "sets": Layer(
            "sets",
            SETS_NAME,
            "Conformal class sets: band 1 how many classes each pixel's set holds, band 2 the set as a "
            "bitmask (bit i = the i-th class of the class table)",
            ("classes in set", "set bitmask"),
            None,
            SETS_COG,
            band_fields=({}, {"classification:bitfields": set_bitfields(classes)}),
        ),
    }
    return [specs[key] for key in ("probabilities", "aoa", "sets") if key in keys]


class BlockSink:
    """Temporary tiled GeoTIFFs (classes and, optionally, confidence) the blocks are written into.

    Blocks are written as they come, one window at a time, so memory holds no more than a block. Each map's
    overview levels are built as the blocks arrive (``lulc.cog.OverviewLevels``), so that the COG
    translation after the last block only copies them; when the blocks do not start on multiples of the
    largest overview factor, the levels are built from the finished map in aligned strips instead (the same
    pixels either way).
    """

    def __init__(
        self,
        folder: Path,
        grid: OutputGrid,
        classes: ClassTable,
        confidence: bool,
        layers: Sequence[Layer] = (),
    ) -> None:
        self.grid = grid
        self.classes_path = folder / "classes.tmp.tif"
        self.confidence_path = folder / "confidence.tmp.tif" if confidence else None
        self.layers = list(layers)
        self.layer_paths = {layer.key: folder / f"{layer.key}.tmp.tif" for layer in self.layers}
        self._factors = overview_factors(grid.width, grid.height, CogOptions().blocksize)
        self._incremental = not self._factors or grid.block_size % self._factors[-1] == 0
        bands = 1 + int(confidence) + sum(len(layer.descriptions) for layer in self.layers)
        check_working_space(folder, grid.width, grid.height, self._factors, bands)
        self._levels: dict[Path, OverviewLevels] = {}
        self._env = gdal_env()
        self._env.__enter__()
        self._classes = self._open(self.classes_path, CLASSES_COG, 1)
        self._classes.write_colormap(1, classes.colormap())
        self._classes.set_band_description(1, "land cover class")
        self._classes.update_tags(1, **class_tags(classes))
        self._confidence = None
        if self.confidence_path is not None:
            self._confidence = self._open(self.confidence_path, CONFIDENCE_COG, 1)
            self._confidence.set_band_description(1, "top-class probability (percent)")
            self._confidence.update_tags(1, UNITS="percent")
        self._layers: dict[str, Any] = {}
        for layer in self.layers:
            dataset = self._open(self.layer_paths[layer.key], layer.cog, len(layer.descriptions))
            self._layers[layer.key] = dataset
            for band, description in enumerate(layer.descriptions, start=1):
                dataset.set_band_description(band, description)
                if layer.unit:
                    dataset.update_tags(band, UNITS=layer.unit)

    def _open(self, path: Path, cog: CogOptions, count: int) -> Any:
        """A staging map (and its overview levels, when ``halve`` does the COG's resampling)."""
        profile = staging_profile(
            self.grid.rasterio_crs, self.grid.transform, self.grid.width, self.grid.height
        )
        if count > 1:
            profile.update(count=count, interleave="band")
        if self._factors and cog.overview_resampling in HALVING:
            self._levels[path] = OverviewLevels(path, profile, self._factors, cog.overview_resampling)
        return rasterio.open(path, "w", **profile)

    def overviews(self, path: Path) -> list[Path]:
        """The overview level files of the staging map at ``path`` (none: the COG driver computes them)."""
        levels = self._levels.get(path)
        return levels.paths if levels is not None else []

    def _write(self, dataset: Any, path: Path, block: Block, data: npt.NDArray[np.uint8]) -> None:
        bands = data if data.ndim == 3 else data[np.newaxis]
        dataset.write(bands, window=block.window)
        levels = self._levels.get(path)
        if levels is not None and self._incremental:
            levels.add(block.row, block.col, bands)

    def write(
        self,
        block: Block,
        labels: npt.NDArray[np.uint8],
        confidence: npt.NDArray[np.uint8] | None,
        layers: Mapping[str, npt.NDArray[np.uint8]] | None = None,
    ) -> None:
        """Write one block's labels (and confidence, and the optional layers)."""
        self._write(self._classes, self.classes_path, block, labels)
        if self._confidence is not None and self.confidence_path is not None:
            data = confidence if confidence is not None else np.full_like(labels, NODATA)
            self._write(self._confidence, self.confidence_path, block, data)
        for key, dataset in self._layers.items():
            bands = (layers or {}).get(key)
            if bands is None:
                bands = np.full((dataset.count, *labels.shape), NODATA, dtype=np.uint8)
            self._write(dataset, self.layer_paths[key], block, bands)

    def close(self) -> None:
        """Flush and close the temporary files (building the overview levels now if not done block-wise)."""
        try:
            for dataset in (self._classes, self._confidence, *self._layers.values()):
                if dataset is not None:
                    dataset.close()
            if not self._incremental:
                for path, levels in self._levels.items():
                    _add_in_strips(path, levels)
        finally:
            try:
                for levels in self._levels.values():
                    levels.close()
            finally:
                self._env.__exit__(None, None, None)


def _add_in_strips(path: Path, levels: OverviewLevels) -> None:
    """Build the overview levels of a finished staging map from strips aligned on the largest factor."""
    with rasterio.open(path) as src:
        step = levels.factors[-1] * max(1, 512 // levels.factors[-1])
        for row in range(0, src.height, step):
            window = Window(0, row, src.width, min(step, src.height - row))
            levels.add(row, 0, src.read(window=window))


def class_tags(classes: ClassTable) -> dict[str, str]:
    """Band metadata naming every class: ``CLASS_<value>=<name>`` (kept inside the GeoTIFF)."""
    return {f"CLASS_{c.value}": c.name for c in classes.classes}


def aux_xml(classes: ClassTable) -> str:
    """A GDAL PAM sidecar with the category names and a thematic RAT (value, class name, colour)."""
    names = classes.category_names()
    categories = "\n".join(f"      <Category>{escape(n)}</Category>" for n in names)
    fields = [
        ("Value", 0, 5),
        ("Class", 2, 2),
        ("Red", 0, 6),
        ("Green", 0, 7),
        ("Blue", 0, 8),
        ("Alpha", 0, 9),
    ]
    defs = "\n".join(
        f'      <FieldDefn index="{i}">\n        <Name>{n}</Name>\n        <Type>{t}</Type>\n'
        f"        <Usage>{u}</Usage>\n      </FieldDefn>"
        for i, (n, t, u) in enumerate(fields)
    )
    rows = "\n".join(
        f'      <Row index="{i}">'
        + "".join(f"<F>{v}</F>" for v in (c.value, escape(c.name), *c.rgba))
        + "</Row>"
        for i, c in enumerate(classes.classes)
    )
    return (
        "<PAMDataset>\n"
        '  <PAMRasterBand band="1">\n'
        "    <CategoryNames>\n"
        f"{categories}\n"
        "    </CategoryNames>\n"
        '    <GDALRasterAttributeTable tableType="thematic">\n'
        f"{defs}\n{rows}\n"
        "    </GDALRasterAttributeTable>\n"
        "  </PAMRasterBand>\n"
        "</PAMDataset>\n"
    )


def qml_style(classes: ClassTable) -> str:
    """A QGIS layer style (``.qml``): a paletted renderer with one named, coloured entry per class.

    QGIS applies it when it opens ``classes.tif`` (the style beside a file is its default), so the legend
    shows exactly the classes; nodata (255) is transparent and not listed.
    """
    entries = "\n".join(
        f'        <paletteEntry value={quoteattr(str(c.value))} color={quoteattr(c.color)} alpha="255"'
        f" label={quoteattr(c.name)}/>"
        for c in classes.classes
    )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.22.0" styleCategories="Symbology">\n'
        "  <pipe>\n"
        '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">\n'
        "      <rasterTransparency/>\n"
        "      <colorPalette>\n"
        f"{entries}\n"
        "      </colorPalette>\n"
        "    </rasterrenderer>\n"
        "  </pipe>\n"
        "  <blendMode>0</blendMode>\n"
        "</qgis>\n"
    )


@dataclass(frozen=True)
class ClassCounts:
    """Pixel counts per value 0-255 over the whole map, and their true ground areas where pixel areas vary."""

    counts: npt.NDArray[np.int64]
    area_m2: npt.NDArray[np.float64] | None = None
    """Square metres per value, summed pixel by pixel (``lulc.areas``); None: counts x the mean pixel area."""

    @classmethod
    def empty(cls) -> ClassCounts:
        """All zero."""
        return cls(np.zeros(256, dtype=np.int64))

    def add(
        self, labels: npt.NDArray[np.uint8], area_m2: npt.NDArray[np.float64] | None = None
    ) -> ClassCounts:
        """These counts plus a block's (and the block's areas per value, where pixel areas vary)."""
        counts = self.counts + np.bincount(labels.ravel(), minlength=256)
        if area_m2 is None:
            return ClassCounts(counts, self.area_m2)
        return ClassCounts(counts, area_m2 if self.area_m2 is None else self.area_m2 + area_m2)

    @property
    def valid(self) -> int:
        """Pixels with a class (not nodata)."""
        return int(self.counts.sum() - self.counts[NODATA])


def build_stats(
    counts: ClassCounts, classes: ClassTable, grid: OutputGrid, aoi_pixels: int | None = None
) -> dict[str, Any]:
    """``stats.json``: pixels and hectares per class (true ground area, whatever the CRS).

    With ``aoi_pixels`` (the pixels whose centre is in the AOI, mapped or not, with those past the edge of a
    grid cut to an image: ``OutputGrid.aoi_pixels_beyond``) it also says how much of the
    AOI has a class (``mapped_fraction``): ``nodata_pixels`` counts the grid's corners outside the AOI too,
    so an AOI reaching past the imagery, or under clouds, read as mapped (AOI review).
    """
    stats = stats_document(counts, classes, grid.pixel_area_m2(), grid.crs, grid.height, grid.width)
    if aoi_pixels is not None:
        stats["aoi_pixels"] = aoi_pixels
        stats["mapped_fraction"] = round(counts.valid / aoi_pixels, 6) if aoi_pixels else 0.0
    return stats


def write_class_sidecars(
    folder: Path, classes: ClassTable, aux_name: str = AUX_NAME, qml_name: str = QML_NAME
) -> None:
    """A class map's GDAL PAM sidecar (category names, attribute table) and QGIS style into ``folder``."""
    (folder / aux_name).write_text(aux_xml(classes), encoding="utf-8")
    (folder / qml_name).write_text(qml_style(classes), encoding="utf-8")


def stats_document(
    counts: ClassCounts, classes: ClassTable, pixel_m2: float, crs: str, height: int, width: int
) -> dict[str, Any]:
    """``stats.json`` of a map: each class's pixels, share and hectares.

    Hectares are the counts' summed pixel areas where the map has them (pixel areas varying by more than
    0.5 %: ``lulc.areas``), else pixels x ``pixel_m2``, the map's mean true pixel area.
    """
    valid = counts.valid

    def hectares(pixels: int, value: int | None) -> float:
        if counts.area_m2 is None:
            return round(pixels * pixel_m2 / 10_000.0, 4)
        area = counts.area_m2.sum() - counts.area_m2[NODATA] if value is None else counts.area_m2[value]
        return round(float(area) / 10_000.0, 4)

    rows = []
    for c in classes.classes:
        pixels = int(counts.counts[c.value])
        rows.append(
            {
                "value": c.value,
                "name": c.name,
                "pixels": pixels,
                "hectares": hectares(pixels, c.value),
                "fraction": round(pixels / valid, 6) if valid else 0.0,
            }
        )
    return {
        "classes": rows,
        "valid_pixels": valid,
        "nodata_pixels": int(counts.counts[NODATA]),
        "total_pixels": height * width,
        "pixel_area_m2": round(pixel_m2, 6),
        "valid_hectares": hectares(valid, None),
        "hectares_from": "mean pixel area" if counts.area_m2 is None else "each pixel's area",
        "crs": crs,
        "shape": [height, width],
    }


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def finish_cogs(
    sink: BlockSink, staging: Path, classes: ClassTable
) -> tuple[Path, Path | None, dict[str, Path]]:
    """Translate the temporary GeoTIFFs into COGs inside ``staging``, beside the sidecars; returns the COGs.

    The sidecars (``AUX_NAME``, ``QML_NAME``) are written into ``staging`` too, so they reach the output
    folder by the same renames as the maps.

    The translations run side by side (GDAL releases the GIL; each is single-threaded, so the bytes do not
    depend on it): they are the only part of a run that cannot overlap with inference, so the overview
    levels, built while the blocks arrived, are copied rather than computed here.
    """
    write_class_sidecars(staging, classes)
    with ThreadPoolExecutor(2, thread_name_prefix="lulc-cog") as pool:

        def translate(path: Path, name: str, cog: CogOptions) -> Any:
            return pool.submit(translate_to_cog, path, staging / name, cog, sink.overviews(path))

        classes_job = translate(sink.classes_path, CLASSES_NAME, CLASSES_COG)
        confidence_job = (
            translate(sink.confidence_path, CONFIDENCE_NAME, CONFIDENCE_COG)
            if sink.confidence_path is not None
            else None
        )
        layer_jobs = {
            layer.file: translate(sink.layer_paths[layer.key], layer.file, layer.cog) for layer in sink.layers
        }
        classes_cog = classes_job.result()
        confidence_cog = confidence_job.result() if confidence_job is not None else None
        layer_cogs = {name: job.result() for name, job in layer_jobs.items()}
    for temporary in (sink.classes_path, sink.confidence_path, *sink.layer_paths.values()):
        if temporary is not None:
            for level in sink.overviews(temporary):
                level.unlink(missing_ok=True)
            temporary.unlink(missing_ok=True)
    return classes_cog, confidence_cog, layer_cogs


def move_into_place(staging: Path, out_dir: Path, names: list[str]) -> dict[str, Path]:
    """Rename finished files from ``staging`` to ``out_dir`` in the order given (put item.json last).

    A previous run's ``item.json`` there goes first: a run killed between two renames leaves a folder
    without an item, never an item that pairs the old run's description with the new run's files. Ctrl-C
    and SIGTERM wait until the renames are done (``lulc.signals.held``).
    """
    with held():
        if ITEM_NAME in names:
            withdraw_item(out_dir)
        final = {}
        for name in names:
            target = out_dir / name
            os.replace(staging / name, target)
            final[name] = target
    return final


def withdraw_item(out_dir: Path) -> None:
    """Remove ``out_dir/item.json`` before its run's files are replaced (see ``move_into_place``)."""
    (out_dir / ITEM_NAME).unlink(missing_ok=True)


def raster_band(
    grid: OutputGrid, *, unit: str | None = None, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A ``raster:bands`` entry of a uint8 output band."""
    band: dict[str, Any] = {
        "data_type": "uint8",
        "nodata": NODATA,
        "spatial_resolution": grid.resolution[0],
        "sampling": "area",
    }
    if unit:
        band["unit"] = unit
    band.update(extra or {})
    return band


STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/classification/v2.0.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


QML_TYPE = "text/xml"
"""Media type of the QGIS style (QGIS has registered none; a ``.qml`` is plain XML)."""


@dataclass(frozen=True)
class ItemInputs:
    """What the output item says about its inputs.

    Hrefs are as the item should show them: URLs, or paths relative to the output folder (never a local
    absolute path, meaningless once the folder is published).
    """

    item_id: str
    model_name: str
    model_version: str
    model_href: str
    sources: list[tuple[str, str | None]]
    start: str
    end: str
    datetime_window: str | None
    software: dict[str, str]


def item_datetimes(start: str, end: str) -> dict[str, Any]:
    """STAC's time fields for inputs acquired from ``start`` to ``end`` (ISO 8601, ``Z``).

    One instant is ``datetime``; a range is ``datetime: null`` with ``start_datetime`` and ``end_datetime``
    (STAC allows a null ``datetime`` only with both).
    """
    if start == end:
        return {"datetime": start}
    return {"datetime": None, "start_datetime": start, "end_datetime": end}


def link_type(href: str) -> str:
    """Media type of a ``derived_from`` target from its name: a GeoTIFF, an ONNX file, else a STAC item."""
    name = href.split("?", 1)[0].lower()
    if name.endswith((".tif", ".tiff")):
        return "image/tiff; application=geotiff"
    if name.endswith(".onnx"):
        return "application/octet-stream; framework=onnx; profile=onnx"
    return "application/geo+json"


def round_coords(value: Any) -> Any:
    """A GeoJSON geometry (or any JSON value) as JSON holds it: lists, floats to 7 decimals (about 1 cm)."""
    if isinstance(value, float):
        return round(value, 7)
    if isinstance(value, list | tuple):
        return [round_coords(v) for v in value]
    if isinstance(value, dict):
        return {k: round_coords(v) for k, v in value.items()}
    return value


def pam_asset(name: str, of: str) -> dict[str, Any]:
    """The asset of map ``of``'s GDAL PAM sidecar ``name``, without ``file:`` size and checksum.

    GDAL rewrites the sidecar whenever a reader computes statistics (``gdalinfo -stats``, rasterio's
    ``stats()``, QGIS), so a checksum of it went stale on first use (outputs review).
    """
    return {
        "href": f"./{name}",
        "type": "application/xml",
        "title": f"GDAL PAM sidecar of {of} (category names, attribute table) for QGIS",
        "roles": ["metadata"],
    }


def file_fields(path: Path) -> dict[str, Any]:
    """The ``file:checksum`` and ``file:size`` of an asset's file."""
    return {"file:checksum": multihash_sha256(path), "file:size": path.stat().st_size}


def build_item(
    inputs: ItemInputs,
    grid: OutputGrid,
    classes: ClassTable,
    files: Mapping[str, Path],
    footprint: Mapping[str, Any],
    bbox: tuple[float, float, float, float],
    layers: Sequence[Layer] = (),
    extra_properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The STAC item of a classification: assets with checksums, classes, projection, provenance links.

    Args:
        inputs: identifiers, provenance and time range of the run.
        grid: the output grid.
        classes: the class table.
        files: finished files by name (``classes.tif``, ``classes.qml``, ...), for checksums.
        footprint: the lon/lat GeoJSON geometry of the mapped area.
        bbox: its lon/lat bounds.
        layers: the optional maps made (probabilities, aoa, sets), listed as assets when in ``files``.
        extra_properties: more item properties (``lulc:aoa_threshold``, ``lulc:aoa_fraction``, ...).
    """
    epsg = rasterio.crs.CRS.from_user_input(grid.crs).to_epsg()
    properties: dict[str, Any] = {
        **item_datetimes(inputs.start, inputs.end),
        "title": f"Land cover from {inputs.model_name} {inputs.model_version}",
        "classification:classes": classes.to_stac(),
        "processing:software": dict(sorted(inputs.software.items())),
        "processing:lineage": (
            f"ONNX model {inputs.model_name} {inputs.model_version} applied block by block by lulc-stac "
            f"to {len(inputs.sources)} input(s)"
        ),
        "proj:code": f"EPSG:{epsg}" if epsg is not None else None,
        "proj:shape": [grid.height, grid.width],
        "proj:transform": [float(v) for v in list(grid.transform)[:6]],
        "proj:bbox": [float(v) for v in grid.bounds],
        "lulc:model": f"{inputs.model_name}-{inputs.model_version}",
    }
    if epsg is None:
        properties["proj:wkt2"] = rasterio.crs.CRS.from_user_input(grid.crs).to_wkt()
    if inputs.datetime_window:
        properties["lulc:datetime_window"] = inputs.datetime_window
    properties.update(extra_properties or {})
    assets: dict[str, Any] = {
        "classes": {
            "href": f"./{CLASSES_NAME}",
            "type": COG_TYPE,
            "title": "Land cover classes",
            "roles": ["data"],
            "classification:classes": classes.to_stac(),
            "raster:bands": [raster_band(grid)],
            **file_fields(files[CLASSES_NAME]),
        }
    }
    if CONFIDENCE_NAME in files:
        assets["confidence"] = {
            "href": f"./{CONFIDENCE_NAME}",
            "type": COG_TYPE,
            "title": "Top-class probability (percent)",
            "roles": ["data", "quality"],
            "raster:bands": [raster_band(grid, unit="percent")],
            **file_fields(files[CONFIDENCE_NAME]),
        }
    for layer in layers:
        if layer.file in files:
            assets[layer.key] = {
                "href": f"./{layer.file}",
                "type": COG_TYPE,
                "title": layer.title,
                "roles": ["data", "quality"],
                "raster:bands": [
                    raster_band(
                        grid,
                        unit=layer.unit,
                        extra={
                            "name": d,
                            **({"scale": layer.scale} if layer.scale is not None else {}),
                            **(layer.band_fields[i] if i < len(layer.band_fields) else {}),
                        },
                    )
                    for i, d in enumerate(layer.descriptions)
                ],
                **file_fields(files[layer.file]),
            }
    if QML_NAME in files:
        assets["classes_style"] = {
            "href": f"./{QML_NAME}",
            "type": QML_TYPE,
            "title": "QGIS layer style of classes.tif: the class names and colours as its legend",
            "roles": ["metadata", "style"],
            **file_fields(files[QML_NAME]),
        }
    if AUX_NAME in files:
        assets["classes_aux"] = pam_asset(AUX_NAME, CLASSES_NAME)
    assets["stats"] = {
        "href": f"./{STATS_NAME}",
        "type": "application/json",
        "title": "Pixels and hectares per class",
        "roles": ["metadata"],
        **file_fields(files[STATS_NAME]),
    }
    links: list[dict[str, Any]] = []
    for source_id, href in inputs.sources:
        if href:
            links.append({"rel": "derived_from", "href": href, "type": link_type(href), "title": source_id})
    links.append(
        {
            "rel": "derived_from",
            "href": inputs.model_href,
            "type": link_type(inputs.model_href),
            "title": f"model {inputs.model_name} {inputs.model_version}",
        }
    )
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": STAC_EXTENSIONS,
        "id": inputs.item_id,
        "geometry": round_coords(footprint),
        "bbox": [round(v, 7) for v in bbox],
        "properties": properties,
        "links": links,
        "assets": assets,
    }
