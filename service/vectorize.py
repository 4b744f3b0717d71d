"""``lulc vectorize``: one polygon per patch of a map (class, area, mean confidence) in bounded memory.

The map is read block by block. Patches are labelled as ``lulc clean`` labels them (``service.sieve``): a
first pass joins the patches that cross block edges, so each patch's last block is known. A patch inside one
block is polygonised (GDAL's polygoniser on the block's labels) and written at once; the pieces of a patch
that crosses blocks are held only until its last block, then dissolved into one geometry. Areas are true
ground areas: pixels times ``stats.json``'s pixel area, or, where pixel areas vary across the map, the
pixels' own areas (``lulc.areas``), so the polygons' areas add up to the map's class areas. Output:
GeoPackage (``.gpkg``), FlatGeobuf (``.fgb``) or GeoParquet 1.1 (``.parquet``, row group by row group),
written under a temporary name and renamed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyproj
import rasterio
import rasterio.features
import shapely
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from lulc.areas import AreaCells, area_cells
from lulc.classes import NODATA
from lulc.cog import atomic_path
from lulc.errors import InputError
from lulc.gdal_env import gdal_env
from lulc.progress import NullProgress, Progress
from lulc.signals import held
from lulc.writable import check_file_writable
from service.output import dump_json, file_fields, write_text_atomic
from service.product_item import CLASSIFICATION, derived_link, product_item, stac_classes
from service.run_folder import RunFolder, open_run, read_band
from service.sieve import BlockSieve, Connectivity, GridBlock, checked_connectivity, grid_blocks

PARQUET = "GeoParquet"
FORMATS: dict[str, tuple[str, str]] = {
    ".gpkg": ("GPKG", "application/geopackage+sqlite3"),
    ".fgb": ("FlatGeobuf", "application/vnd.flatgeobuf"),
    ".parquet": (PARQUET, "application/vnd.apache.parquet"),
}
"""Output suffix -> (OGR driver, media type)."""

FIXED_DATE = "2000-01-01T00:00:00.000Z"
"""The ``last_change`` written into GeoPackages (GDAL's ``OGR_CURRENT_DATE``), for byte-identical reruns."""

CHUNK = 5000
"""Features written per call: memory holds at most this many finished polygons."""


@dataclass(frozen=True)
class Patch:
    """One finished patch: its class, size, confidence sum and geometry."""

    value: int
    pixels: int
    confidence_sum: int
    confidence_pixels: int
    geometry: BaseGeometry
    area_m2: float | None = None
    """The pixels' summed true areas where pixel areas vary across the map (``lulc.areas``), else None."""


@dataclass
class _Pieces:
    """The pieces of a patch that crosses blocks, gathered until its last block."""

    value: int
    parts: list[BaseGeometry] = field(default_factory=list)
    pixels: int = 0
    area_m2: float = 0.0
    confidence_sum: int = 0
    confidence_pixels: int = 0


@dataclass(frozen=True)
class VectorizeResult:
    """The vector file, its item, and totals by class."""

    path: Path
    item_path: Path
    features: int
    pixels_by_value: dict[int, int]
    item: dict[str, Any]


def _dissolve(parts: list[BaseGeometry]) -> BaseGeometry:
    geometry = parts[0] if len(parts) == 1 else shapely.union_all(parts)
    return geometry if geometry.is_valid else shapely.make_valid(geometry)


def _block_shapes(
    labels: npt.NDArray[np.int32], transform: rasterio.Affine, connectivity: Connectivity
) -> dict[int, list[BaseGeometry]]:
    """The polygons of each label of a block (GDAL's polygoniser), parsed in one vectorised call."""
    texts: list[str] = []
    owners: list[int] = []
    for geojson, label in rasterio.features.shapes(
        labels, mask=labels > 0, connectivity=connectivity, transform=transform
    ):
        texts.append(json.dumps(geojson))
        owners.append(int(label))
    shapes: dict[int, list[BaseGeometry]] = {}
    for label, geometry in zip(owners, shapely.from_geojson(texts).tolist(), strict=True):
        shapes.setdefault(label, []).append(geometry)
    return shapes


def iter_patches(
    run: RunFolder, *, connectivity: Connectivity = 4, block_size: int = 512, progress: Progress | None = None
) -> Iterator[Patch]:
    """Every patch of the run's map once, in a fixed order (block order, then label order)."""
    progress = progress or NullProgress()
    grid = run.grid
    with gdal_env(), rasterio.open(run.classes_path) as src:
        conf = rasterio.open(run.confidence_path) if run.confidence_path is not None else None
        try:
            sieve = BlockSieve(
                lambda window: read_band(src, window),
                grid.height,
                grid.width,
                threshold=1,
                connectivity=connectivity,
                nodata=run.nodata,
                block_size=block_size,
            )
            sieve.join()
            cells = area_cells(grid.crs.to_string(), grid.transform, grid.width, grid.height)
            blocks = list(grid_blocks(grid.height, grid.width, block_size))
            progress.start("vectorizing blocks", len(blocks))
            open_patches: dict[int, _Pieces] = {}
            for block in blocks:
                yield from _block_patches(sieve, block, grid.transform, conf, open_patches, cells)
                progress.advance()
        finally:
            if conf is not None:
                conf.close()


def _block_patches(
    sieve: BlockSieve,
    block: GridBlock,
    transform: rasterio.Affine,
    conf: rasterio.io.DatasetReader | None,
    open_patches: dict[int, _Pieces],
    cells: AreaCells | None,
) -> Iterator[Patch]:
    patches = sieve.patches(block, joined=True)
    window = rasterio.windows.Window(block.col, block.row, block.width, block.height)
    n = patches.node.size
    local_pixels = np.bincount(patches.labels.ravel(), minlength=n)
    local_area = None if cells is None else cells.sum_by_value(patches.labels, block.row, block.col, n)
    conf_sum = np.zeros(n, dtype=np.int64)
    conf_pixels = np.zeros(n, dtype=np.int64)
    if conf is not None:
        confidence = read_band(conf, window)
        known = confidence != NODATA
        conf_sum = np.bincount(patches.labels[known], weights=confidence[known], minlength=n).astype(np.int64)
        conf_pixels = np.bincount(patches.labels[known], minlength=n)
    shapes = _block_shapes(patches.labels, rasterio.windows.transform(window, transform), sieve.connectivity)
    for label in range(1, n):
        parts = shapes[label]
        if not patches.edge[label]:
            geometry = _dissolve(parts)
            yield Patch(
                int(patches.value[label]),
                int(local_pixels[label]),
                int(conf_sum[label]),
                int(conf_pixels[label]),
                geometry,
                None if local_area is None else float(local_area[label]),
            )
            continue
        root = int(patches.node[label])
        pieces = open_patches.setdefault(root, _Pieces(int(patches.value[label])))
        pieces.parts.extend(parts)
        pieces.pixels += int(local_pixels[label])
        pieces.area_m2 += 0.0 if local_area is None else float(local_area[label])
        pieces.confidence_sum += int(conf_sum[label])
        pieces.confidence_pixels += int(conf_pixels[label])
    done = sorted(root for root in open_patches if sieve.edges.last_block[root] == block.index)
    for root in done:
        pieces = open_patches.pop(root)
        yield Patch(
            pieces.value,
            pieces.pixels,
            pieces.confidence_sum,
            pieces.confidence_pixels,
            _dissolve(pieces.parts),
            None if cells is None else pieces.area_m2,
        )


class _FeatureWriter:
    """Writes patches in chunks to one OGR layer."""

    def __init__(self, path: Path, driver: str, run: RunFolder, with_confidence: bool) -> None:
        self.path, self.driver, self.run = path, driver, run
        self.with_confidence = with_confidence
        self.names = {c.value: c.name for c in run.classes.classes}
        self.buffer: list[Patch] = []
        self.written = 0
        self.pixels_by_value: dict[int, int] = {}
        self._parquet: Any = None

    def add(self, patch: Patch) -> None:
        self.buffer.append(patch)
        self.pixels_by_value[patch.value] = self.pixels_by_value.get(patch.value, 0) + patch.pixels
        if len(self.buffer) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        import pyogrio.raw

        if not self.buffer and self.written:
            return
        patches, self.buffer = self.buffer, []
        mean_ha = self.run.pixel_area_m2 / 10_000.0
        ha = [p.pixels * mean_ha if p.area_m2 is None else p.area_m2 / 10_000.0 for p in patches]
        ids = np.arange(self.written + 1, self.written + len(patches) + 1, dtype=np.int64)
        fields = ["patch_id", "value", "class", "pixels", "area_ha"]
        data: list[npt.NDArray[Any]] = [
            ids,
            np.array([p.value for p in patches], dtype=np.int32),
            np.array([self.names.get(p.value, str(p.value)) for p in patches], dtype=object),
            np.array([p.pixels for p in patches], dtype=np.int64),
            np.array([round(a, 6) for a in ha], dtype=np.float64),
        ]
        if self.with_confidence:
            fields.append("confidence")
            data.append(
                np.array(
                    [
                        round(p.confidence_sum / p.confidence_pixels, 3) if p.confidence_pixels else np.nan
                        for p in patches
                    ],
                    dtype=np.float64,
                )
            )
        geometry = shapely.to_wkb(np.array([_multi(p.geometry) for p in patches], dtype=object))
        if self.driver == PARQUET:
            self._write_parquet(geometry, data, fields)
        else:
            pyogrio.raw.write(
                str(self.path),
                geometry,
                data,
                fields,
                layer="patches",
                driver=self.driver,
                geometry_type="MultiPolygon",
                crs=self.run.grid.crs.to_wkt(),
                append=self.written > 0,
            )
        self.written += len(patches)

    def _write_parquet(
        self, geometry: npt.NDArray[Any], data: list[npt.NDArray[Any]], fields: list[str]
    ) -> None:
        """One row group of a GeoParquet 1.1 file (WKB geometry, PROJJSON CRS in the ``geo`` metadata)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = [pa.array(d, from_pandas=True) for d in data] + [pa.array(geometry.tolist(), pa.binary())]
        table = pa.Table.from_arrays(columns, names=[*fields, "geometry"])
        if self._parquet is None:
            geo = {
                "version": "1.1.0",
                "primary_column": "geometry",
                "columns": {
                    "geometry": {
                        "encoding": "WKB",
                        "geometry_types": ["MultiPolygon"],
                        "crs": pyproj.CRS.from_wkt(self.run.grid.crs.to_wkt()).to_json_dict(),
                    }
                },
            }
            schema = table.schema.with_metadata({b"geo": json.dumps(geo).encode()})
            self._parquet = pq.ParquetWriter(str(self.path), schema, compression="zstd")
        self._parquet.write_table(table.replace_schema_metadata(self._parquet.schema.metadata))

    def close(self) -> None:
        """Write what is buffered and finish the file."""
        self.flush()
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None


def _multi(geometry: BaseGeometry) -> BaseGeometry:
    return shapely.MultiPolygon([geometry]) if isinstance(geometry, shapely.Polygon) else geometry


@contextmanager
def fixed_ogr_date() -> Iterator[None]:
    """GeoPackages stamp ``last_change`` from the clock unless given a date: fix it for identical reruns.

    pyogrio has its own GDAL, whose config options are process-wide: the previous value is put back.
    """
    import pyogrio

    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_DATE})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


def item_path_for(out: Path) -> Path:
    """Where the item of a vector file goes: beside it, ``<stem>.json``."""
    return out.with_suffix(".json")


def check_item_path(out: Path, product: str, overwrite: bool = False) -> None:
    """Refuse, before any work, to replace a file that is not an earlier output of ``product`` at ``out``.

    ``--out`` replaces ``out`` and its item ``<stem>.json``: an existing ``out`` is replaced only when its
    item says it is a ``product`` (``patches``, ``design``: a rerun), or with ``overwrite``; a
    ``<stem>.json`` only when it is the item of ``out`` (``--out run/item.gpkg`` would replace the run's own
    ``item.json``, and ``v.gpkg`` then ``v.parquet`` would share ``v.json``), whatever ``overwrite`` says.

    Raises:
        InputError: ``out`` is a folder; ``<stem>.json`` exists and none of its assets is ``out``; ``out``
            exists and is no ``product`` of ours (a labelled validation sample for ``patches``, say).
    """
    if out.is_dir():
        raise InputError(f"--out {out} is a folder: give the vector file (.gpkg, .fgb or .parquet)")
    check_file_writable(out, f"--out {out}")
    item = item_path_for(out)
    properties: dict[str, Any] = {}
    if item.exists():
        try:
            document = json.loads(item.read_text())
            assets = document.get("assets", {})
            hrefs = [str(a.get("href", "")) for a in assets.values() if isinstance(a, dict)]
            properties = dict(document.get("properties") or {})
        except (ValueError, AttributeError, OSError, TypeError):
            hrefs = []
        if not any(Path(h).name == out.name for h in hrefs):
            raise InputError(
                f"{item} exists and is not the item of {out.name} (the item is written beside the file as "
                f"<name>.json): choose another --out name"
            )
    if out.exists() and not overwrite and properties.get("lulc:product") != product:
        raise InputError(
            f"--out {out} exists and holds no {product} of lulc-stac (a labelled sample, say): choose "
            "another file, or pass --overwrite to replace it"
        )


def vectorize_run(
    run_path: str | Path,
    out_path: str | Path,
    *,
    connectivity: Connectivity = 4,
    block_size: int = 512,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> VectorizeResult:
    """One polygon per patch of a run's map to ``out_path`` (.gpkg, .fgb, .parquet), its STAC item beside it.

    Fields: ``patch_id``, ``value``, ``class`` (name), ``pixels``, ``area_ha`` (true ground area) and,
    when the run has ``confidence.tif``, ``confidence`` (mean top-class probability in percent, null if
    unknown).

    Raises:
        InputError: unreadable run, unknown output format, an option out of range, or an ``out_path`` that
            is not an earlier output of this kind (unless ``overwrite``).
    """
    out = Path(out_path)
    if out.suffix.lower() not in FORMATS:
        raise InputError(f"--out {out}: the format comes from the suffix, one of {', '.join(FORMATS)}")
    checked_connectivity(connectivity)
    if block_size < 16:
        raise InputError(f"--block-size must be at least 16 pixels, got {block_size}")
    driver, media_type = FORMATS[out.suffix.lower()]
    check_item_path(out, "patches", overwrite)
    run = open_run(run_path)
    with ExitStack() as in_place:  # the earlier item out, the patches and their item in: one step (review)
        with atomic_path(out, suffix=out.suffix) as tmp, fixed_ogr_date():
            tmp.unlink()
            writer = _FeatureWriter(tmp, driver, run, run.confidence_path is not None)
            try:
                for patch in iter_patches(
                    run, connectivity=connectivity, block_size=block_size, progress=progress
                ):
                    writer.add(patch)
            finally:
                writer.close()
            in_place.enter_context(held())
            item_path_for(out).unlink(missing_ok=True)  # not left beside the new file (review)
        item = _vector_item(run, out, media_type, writer, connectivity)
        item_path = write_text_atomic(item_path_for(out), dump_json(item))
    return VectorizeResult(out, item_path, writer.written, dict(sorted(writer.pixels_by_value.items())), item)


def _vector_item(
    run: RunFolder, out: Path, media_type: str, writer: _FeatureWriter, connectivity: int
) -> dict[str, Any]:
    source_id = str(run.item.get("id", run.path.name))
    classes = stac_classes(run.classes)
    return product_item(
        product="patches",
        item_id=f"{source_id}-patches{connectivity}",
        source=run,
        title=f"Land cover patches ({connectivity}-connected) of {source_id}",
        lineage=(
            f"Item {source_id} polygonised by lulc-stac: one feature per {connectivity}-connected patch, "
            "with its class, pixels, true area in hectares and mean confidence"
        ),
        properties={"classification:classes": classes, "lulc:patches": writer.written},
        assets={
            "patches": {
                "href": f"./{out.name}",
                "type": media_type,
                "title": "One polygon per patch: class, area (ha), mean confidence",
                "roles": ["data"],
                "classification:classes": classes,
                **file_fields(out),
            }
        },
        links=[derived_link(run, out.parent, f"source map {source_id}")],
        extensions=[CLASSIFICATION],
    )
