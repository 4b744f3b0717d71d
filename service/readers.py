"""Block readers: surface reflectance of one output block from STAC items (COG windows) or a local image."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlparse

import numpy as np
import numpy.typing as npt
import rasterio
import shapely.geometry
from rasterio.enums import Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from lulc.allowlist import AllowList
from lulc.aoi import parse_aoi
from lulc.contract import ModelContract
from lulc.errors import ContractError, InputError, NoItemsError, ReadError
from lulc.gdal_env import gdal_env
from lulc.grid import (
    WGS84,
    Block,
    OutputGrid,
    check_block_size,
    grid_for_aoi,
    normalize_crs,
    reproject_geometry,
    utm_crs,
)
from service.request import ClassifyRequest

if TYPE_CHECKING:
    from lulc.sentinel2 import BandAsset, NormalizedItem
    from lulc.sources import ItemSource

Array = npt.NDArray[np.float32]

# Nearest neighbour for reflectance as well as SCL: the model was trained on unresampled pixel values
# (point samples, stackstac's default resampling), nearest keeps every value a real measurement instead of
# a blend across a field edge (a mixed pixel the classifier never saw), and on our grid, which is snapped
# to Sentinel-2's, 10 m bands are copied exactly. Only the 20 m bands are duplicated 2x2.
REFLECTANCE_RESAMPLING = Resampling.nearest
SCL_RESAMPLING = Resampling.nearest


@dataclass(frozen=True)
class SourceRef:
    """One input of a classification, for provenance (``derived_from`` links, item datetimes)."""

    id: str
    href: str | None
    datetime: datetime | None = None


@runtime_checkable
class BlockReader(Protocol):
    """Reads the surface reflectance of one block of the output grid.

    ``read`` returns float32 ``(n_bands, height, width)`` in the contract's band order, NaN wherever
    a pixel has no valid observation (nodata, masked cloud/shadow, outside every footprint). It must be
    safe to call from several threads and, for Dask, the reader must pickle.
    """

    def read(self, block: Block) -> Array:
        """Reflectance of ``block``."""
        ...

    def sources(self) -> list[SourceRef]:
        """The inputs this reader draws from."""
        ...


class ReaderFactory(Protocol):
    """Builds the output grid and the block reader of one request (a STAC source, a local image)."""

    def prepare_grid(self, request: ClassifyRequest, contract: ModelContract) -> OutputGrid:
        """The output grid of ``request`` (validates the AOI and CRS; no searching, no reading)."""
        ...

    def open(self, request: ClassifyRequest, grid: OutputGrid, contract: ModelContract) -> BlockReader:
        """A reader of ``grid``'s blocks (searches items, checks bands and hosts)."""
        ...


# ---------------------------------------------------------------------------------------------
# Reading one window, with retries


def gdal_path(href: str) -> str:
    """The GDAL path of an href: ``/vsicurl/`` for http(s), ``/vsis3/`` for s3, else the local path."""
    parsed = urlparse(href)
    if parsed.scheme in ("http", "https"):
        return f"/vsicurl/{href}"
    if parsed.scheme == "s3":
        return f"/vsis3/{parsed.netloc}{parsed.path}"
    if parsed.scheme == "file":
        return parsed.path
    return href


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of a window read on I/O errors, on top of GDAL's own HTTP retries."""

    attempts: int = 3
    delay: float = 0.5

    def run_read(
        self, href: str, grid: OutputGrid, block: Block, nodata: float, resampling: Resampling
    ) -> npt.NDArray[np.float64]:
        """``read_window`` with retries; ReadError naming the href when every attempt fails."""
        last: Exception | None = None
        for attempt in range(self.attempts):
            try:
                return read_window(href, grid, block, nodata, resampling)
            except RasterioIOError as exc:  # HTTP failure, dropped connection, truncated body
                last = exc
                time.sleep(self.delay * (2**attempt))
            except RasterioError as exc:  # not a raster, corrupt file: retrying cannot help
                raise ReadError(f"cannot read {href}: {exc}") from exc
        raise ReadError(f"cannot read {href} after {self.attempts} attempts: {last}") from last


def read_window(
    href: str, grid: OutputGrid, block: Block, nodata: float, resampling: Resampling
) -> npt.NDArray[np.float64]:
    """Band 1 of ``href`` on ``block`` of ``grid`` (only the source tiles it needs are read).

    Pixels outside the source or equal to its nodata come back as ``nodata``. A source on the grid's own
    pixel lattice (same CRS and resolution, whole-pixel offset: a 10 m band on our snapped grid) is read
    with a plain window, which gives the same pixels as warping with nearest at a fraction of the cost;
    any other source is warped.
    """
    with gdal_env(), rasterio.open(gdal_path(href)) as src:
        offset = aligned_offset(src, grid)
        if offset is not None:
            return read_aligned(src, block, offset, nodata)
        return read_warped(src, grid, block, nodata, resampling)


def read_warped(
    src: rasterio.io.DatasetReader, grid: OutputGrid, block: Block, nodata: float, resampling: Resampling
) -> npt.NDArray[np.float64]:
    """Band 1 of ``src`` warped onto ``block`` of ``grid``; ``nodata`` outside the source."""
    with WarpedVRT(
        src,
        crs=grid.rasterio_crs,
        transform=grid.block_transform(block),
        width=block.width,
        height=block.height,
        resampling=resampling,
        src_nodata=nodata,
        nodata=nodata,
    ) as vrt:
        return np.asarray(vrt.read(1), dtype=np.float64)


def read_aligned(
    src: rasterio.io.DatasetReader, block: Block, offset: tuple[int, int], nodata: float
) -> npt.NDArray[np.float64]:
    """Band 1 of ``src`` under ``block`` (at pixel ``offset`` of the grid in ``src``), ``nodata`` outside."""
    out = np.full((block.height, block.width), nodata, dtype=np.float64)
    col0, row0 = block.col + offset[0], block.row + offset[1]
    left, top = max(col0, 0), max(row0, 0)
    right, bottom = min(col0 + block.width, src.width), min(row0 + block.height, src.height)
    if right > left and bottom > top:
        data = src.read(1, window=Window(left, top, right - left, bottom - top))
        out[top - row0 : bottom - row0, left - col0 : right - col0] = data
    return out


@functools.lru_cache(maxsize=64)
def _same_crs(source: str, grid: str) -> bool:
    try:
        return normalize_crs(source) == normalize_crs(grid)
    except InputError:
        return False


def aligned_offset(src: rasterio.io.DatasetReader, grid: OutputGrid) -> tuple[int, int] | None:
    """Pixel offset ``(col, row)`` of the grid in ``src`` when both share CRS and pixel lattice, else None."""
    if src.crs is None or not _same_crs(src.crs.to_string(), grid.crs):
        return None
    t, g = src.transform, grid.transform
    if not (
        np.isclose(t.a, g.a) and np.isclose(t.e, g.e) and t.b == 0 and t.d == 0 and g.b == 0 and g.d == 0
    ):
        return None
    col = (g.c - t.c) / t.a
    row = (g.f - t.f) / t.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(col), round(row)


# ---------------------------------------------------------------------------------------------
# STAC items


@dataclass(frozen=True)
class ItemAssets:
    """What a block reader needs of one item: footprint on the grid, band and SCL assets (picklable)."""

    id: str
    href: str | None
    datetime: datetime
    footprint: BaseGeometry
    bands: tuple[BandAsset, ...]
    scl: BandAsset | None
    mask_classes: tuple[int, ...]


@dataclass(frozen=True)
class StacBlockReader:
    """Reads blocks from the COGs of Sentinel-2 items: window reads, scaling, SCL masking, compositing."""

    grid: OutputGrid
    items: tuple[ItemAssets, ...]
    composite: str = "median"
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def sources(self) -> list[SourceRef]:
        """The items, in date order."""
        return [SourceRef(it.id, it.href, it.datetime) for it in self.items]

    def read(self, block: Block) -> Array:
        """Composite reflectance of ``block`` over the items whose footprint intersects it."""
        n_bands = len(self.items[0].bands) if self.items else 0
        shape = (block.height, block.width)
        box = shapely.geometry.box(*self.grid.block_bounds(block))
        covering = [it for it in self.items if it.footprint.intersects(box)]
        if not covering:
            return np.full((n_bands, *shape), np.nan, dtype=np.float32)
        masks = [self._valid_mask(it, block) for it in covering]
        out = np.full((n_bands, *shape), np.nan, dtype=np.float32)
        for b in range(n_bands):
            if self.composite == "first-valid":
                out[b] = self._first_valid(covering, masks, b, block)
            else:
                out[b] = self._median(covering, masks, b, block)
        # A pixel is valid only where every band is (dates differ per band only through band nodata).
        invalid = np.isnan(out).any(axis=0)
        out[:, invalid] = np.nan
        return out

    def _valid_mask(self, item: ItemAssets, block: Block) -> npt.NDArray[np.bool_]:
        if item.scl is None:
            return np.ones((block.height, block.width), dtype=bool)
        scl_nodata = item.scl.nodata if item.scl.nodata is not None else 0
        scl = self.retry.run_read(item.scl.href, self.grid, block, scl_nodata, SCL_RESAMPLING)
        return ~np.isin(scl, item.mask_classes) & (scl != scl_nodata)

    def _band(self, item: ItemAssets, mask: npt.NDArray[np.bool_], b: int, block: Block) -> Array:
        asset = item.bands[b]
        nodata = asset.nodata if asset.nodata is not None else 0.0
        dn = self.retry.run_read(asset.href, self.grid, block, nodata, REFLECTANCE_RESAMPLING)
        reflectance = (dn * asset.scale + asset.offset).astype(np.float32)
        reflectance[(dn == nodata) | ~mask] = np.nan
        return reflectance

    def _first_valid(
        self, items: Sequence[ItemAssets], masks: Sequence[npt.NDArray[np.bool_]], b: int, block: Block
    ) -> Array:
        result = np.full((block.height, block.width), np.nan, dtype=np.float32)
        for item, mask in zip(items, masks, strict=True):
            todo = np.isnan(result) & mask
            if not todo.any():
                continue
            values = self._band(item, mask, b, block)
            take = todo & ~np.isnan(values)
            result[take] = values[take]
        return result

    def _median(
        self, items: Sequence[ItemAssets], masks: Sequence[npt.NDArray[np.bool_]], b: int, block: Block
    ) -> Array:
        observed = [(item, mask) for item, mask in zip(items, masks, strict=True) if mask.any()]
        if not observed:
            return np.full((block.height, block.width), np.nan, dtype=np.float32)
        if len(observed) == 1:  # one date: the median is that date's value, no stack needed
            return self._band(*observed[0], b, block)
        stack = np.stack([self._band(item, mask, b, block) for item, mask in observed])
        count = np.count_nonzero(~np.isnan(stack), axis=0)
        # Pixels seen once take that value (fmax skips NaN); nanmedian runs only where dates disagree.
        result = np.fmax.reduce(stack, axis=0)
        several = count > 1
        result[several] = np.nanmedian(stack[:, several], axis=0)
        return result


def _stac_aoi(request: ClassifyRequest) -> BaseGeometry:
    """The request's AOI, required for a STAC source, validated (lon/lat)."""
    if request.aoi is None:
        raise InputError("a STAC source needs an AOI (GeoJSON polygon)")
    return parse_aoi(request.aoi)


@dataclass(frozen=True)
class StacReaderFactory:
    """A STAC source (API URL, static catalog path/URL, or any ``ItemSource``) as a reader factory.

    Args:
        source: the item source, or a URL/path given to ``lulc.sources.open_source``.
        collections: collections to search (URL/path sources only).
        max_cloud_cover: ``eo:cloud_cover`` upper limit of the search.
        allow: the hosts (and whether local files) the reader may fetch from; None = anything.
        retry: retries of a window read on I/O errors.
    """

    source: ItemSource | str
    collections: tuple[str, ...] | None = None
    max_cloud_cover: float | None = None
    allow: AllowList | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def prepare_grid(self, request: ClassifyRequest, contract: ModelContract) -> OutputGrid:
        """The model's resolution in the AOI's UTM zone (or ``request.crs``), covering the AOI."""
        aoi = _stac_aoi(request)
        crs = normalize_crs(request.crs) if request.crs else utm_crs(aoi)
        return grid_for_aoi(aoi, contract.inputs.resolution, crs, request.block_size)

    def item_source(self) -> ItemSource:
        """The ``ItemSource``, opened from the URL/path if need be (checked against the allow-list)."""
        if not isinstance(self.source, str):
            return self.source
        from lulc.sources import open_source

        if self.allow is not None:
            self.allow.check(self.source, "STAC source")
        return open_source(self.source, list(self.collections) if self.collections else None)

    def open(self, request: ClassifyRequest, grid: OutputGrid, contract: ModelContract) -> StacBlockReader:
        """Search the items over the AOI and time window; check their bands and hosts."""
        aoi = _stac_aoi(request)
        source = self.item_source()
        found = source.search(
            intersects=shapely.geometry.mapping(aoi),
            datetime=request.datetime,
            max_cloud_cover=self.max_cloud_cover,
        )
        if not found:
            window = f" in {request.datetime}" if request.datetime else ""
            cloud = (
                f" with eo:cloud_cover < {self.max_cloud_cover:g}" if self.max_cloud_cover is not None else ""
            )
            raise NoItemsError(f"no items of {source.describe()} cover the AOI{window}{cloud}")
        usable = [it for it in found if it.has_bands(contract.inputs.bands)]
        if not usable:
            contract.require_bands(set(found[0].bands), f"item {found[0].id!r}")
        items = tuple(self._assets(it, grid, contract) for it in usable)
        return StacBlockReader(grid, items, contract.inputs.composite, self.retry)

    def _assets(self, item: NormalizedItem, grid: OutputGrid, contract: ModelContract) -> ItemAssets:
        bands = tuple(item.bands[b] for b in contract.inputs.bands)
        for asset in (*bands, *([item.scl] if item.scl else [])):
            if self.allow is not None:
                self.allow.check(asset.href, f"asset {asset.key!r} of item {item.id!r} at")
        if item.geometry is not None:
            footprint = reproject_geometry(shapely.geometry.shape(item.geometry), WGS84, grid.crs)
        else:
            footprint = shapely.geometry.box(*grid.bounds)
        mask = tuple(contract.inputs.mask_scl) if contract.inputs.mask_scl else item.mask_classes
        return ItemAssets(
            id=item.id,
            href=item.self_href,
            datetime=item.datetime,
            footprint=footprint,
            bands=bands,
            scl=item.scl,
            mask_classes=mask,
        )


# ---------------------------------------------------------------------------------------------
# A local multi-band image


@dataclass(frozen=True)
class ImageBlockReader:
    """Reads blocks of a local multi-band GeoTIFF, scaled with the contract's radiometry, nodata as NaN.

    Bands are matched to the contract by band description when the image names all of them, else by
    position (band 1 = the contract's first band, ...).
    """

    path: Path
    grid: OutputGrid
    indexes: tuple[int, ...]
    scale: float
    offset: float
    aligned: tuple[int, int] | None
    """Pixel offset of the grid in the image when they share CRS and lattice (plain windows), else None."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def sources(self) -> list[SourceRef]:
        """The image."""
        return [SourceRef(self.path.stem, str(self.path.resolve()), None)]

    def read(self, block: Block) -> Array:
        """Reflectance of ``block`` (warped with nearest if the grid is not the image's own)."""
        with gdal_env(), rasterio.open(self.path) as src:
            nodata = src.nodata
            if self.aligned is not None:
                col, row = self.aligned
                window = Window(block.col + col, block.row + row, block.width, block.height)
                fill = nodata if nodata is not None else 0
                raw = src.read(
                    list(self.indexes), window=window, boundless=True, fill_value=fill, masked=True
                )
            else:
                with WarpedVRT(
                    src,
                    crs=self.grid.rasterio_crs,
                    transform=self.grid.block_transform(block),
                    width=block.width,
                    height=block.height,
                    resampling=REFLECTANCE_RESAMPLING,
                ) as vrt:
                    raw = vrt.read(list(self.indexes), masked=True)
        data = np.ma.getdata(raw).astype(np.float64)
        invalid = np.ma.getmaskarray(raw) | ~np.isfinite(data)
        if nodata is not None and np.isfinite(nodata):
            invalid |= data == np.float64(np.float32(nodata))
        reflectance = (data * self.scale + self.offset).astype(np.float32)
        reflectance[:, invalid.any(axis=0)] = np.nan
        return reflectance


@dataclass(frozen=True)
class ImageReaderFactory:
    """A local multi-band GeoTIFF (``--image``) as a reader factory."""

    path: Path
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def _open(self) -> rasterio.io.DatasetReader:
        try:
            return rasterio.open(self.path)
        except RasterioIOError as exc:
            raise InputError(f"cannot open image {self.path}: {exc}") from exc

    def prepare_grid(self, request: ClassifyRequest, contract: ModelContract) -> OutputGrid:
        """The image's own grid (cut to the AOI), or the model's resolution in ``request.crs``."""
        check_block_size(request.block_size)
        with gdal_env(), self._open() as src:
            if src.crs is None:
                raise InputError(f"image {self.path} has no CRS")
            image_crs = normalize_crs(src.crs.to_string())
            aoi = parse_aoi(request.aoi) if request.aoi is not None else None
            image_box = shapely.geometry.box(*src.bounds)
            crs = normalize_crs(request.crs) if request.crs else image_crs
            if crs != image_crs:
                target = aoi if aoi is not None else reproject_geometry(image_box, image_crs, WGS84)
                return grid_for_aoi(target, contract.inputs.resolution, crs, request.block_size)
            if aoi is None:
                return OutputGrid(crs, src.transform, src.width, src.height, request.block_size, None)
            shape = reproject_geometry(aoi, WGS84, crs)
            if not shape.intersects(image_box):
                raise NoItemsError(f"the AOI does not overlap image {self.path}")
            window = (
                rasterio.windows.from_bounds(*shape.bounds, transform=src.transform)
                .round_offsets(op="floor")
                .round_lengths(op="ceil")
                .intersection(Window(0, 0, src.width, src.height))
            )
            col, row = int(window.col_off), int(window.row_off)
            width, height = int(window.width), int(window.height)
            transform = src.transform @ rasterio.Affine.translation(col, row)
            return OutputGrid(crs, transform, width, height, request.block_size, shape)

    def open(self, request: ClassifyRequest, grid: OutputGrid, contract: ModelContract) -> ImageBlockReader:
        """Match the contract's bands to image bands."""
        with gdal_env(), self._open() as src:
            descriptions = [d or "" for d in src.descriptions]
            bands = contract.inputs.bands
            if all(b in descriptions for b in bands):
                indexes = tuple(descriptions.index(b) + 1 for b in bands)
            elif src.count >= len(bands):
                indexes = tuple(range(1, len(bands) + 1))
            else:
                raise ContractError(
                    f"model {contract.name!r} needs {len(bands)} bands {bands} but image {self.path} "
                    f"has {src.count}"
                )
            aligned = aligned_offset(src, grid)
        radiometry = contract.inputs.radiometry
        return ImageBlockReader(
            self.path, grid, indexes, radiometry.scale, radiometry.offset, aligned, self.retry
        )
