"""Reader factories of a classification request: its grid and block reader (STAC items or a local image).

The block readers themselves are ``lulc.pixels``' (the ones training samples through); this module only
decides the grid of a request, searches its items, checks their bands and hosts, and matches image bands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import rasterio
import shapely.geometry
from rasterio import windows
from rasterio.errors import RasterioIOError, WindowError
from rasterio.warp import transform_bounds
from shapely.geometry.base import BaseGeometry

from lulc.allowlist import AllowList
from lulc.aoi import parse_aoi
from lulc.contract import ModelContract
from lulc.errors import InputError, ItemLimitError, NoItemsError
from lulc.gdal_env import gdal_env
from lulc.grid import (
    WGS84,
    OutputGrid,
    check_block_size,
    check_on_earth,
    grid_for_aoi,
    normalize_crs,
    reproject_geometry,
    requested_crs,
    utm_crs,
)
from lulc.pixels import (
    MAX_REFLECTANCE_MEDIAN,
    SCALE_ADVICE,
    BlockReader,
    ImageBlockReader,
    ImageScaling,
    ItemAssets,
    RetryPolicy,
    SourceRef,
    StacBlockReader,
    StackedBlockReader,
    aligned_offset,
    given_scaling,
    image_band_indexes,
    image_scaling,
    item_assets,
    open_image,
    open_image_reader,
    read_aligned,
    read_warped,
)
from lulc.seasons import season_year
from lulc.sentinel2 import least_cloudy
from lulc.urls import missing_file
from service.request import ClassifyRequest

if TYPE_CHECKING:
    from lulc.sentinel2 import NormalizedItem
    from lulc.sources import ItemSource

__all__ = [
    "BlockReader",
    "ImageBlockReader",
    "ImageReaderFactory",
    "ItemAssets",
    "ItemLimitError",
    "ReaderFactory",
    "RetryPolicy",
    "SourceRef",
    "StacBlockReader",
    "StacReaderFactory",
    "aligned_offset",
    "read_aligned",
    "read_warped",
]


class ReaderFactory(Protocol):
    """Builds the output grid and the block reader of one request (a STAC source, a local image)."""

    def prepare_grid(self, request: ClassifyRequest, contract: ModelContract) -> OutputGrid:
        """The output grid of ``request`` (validates the AOI and CRS; no searching, no reading)."""
        ...

    def open(self, request: ClassifyRequest, grid: OutputGrid, contract: ModelContract) -> BlockReader:
        """A reader of ``grid``'s blocks (searches items, checks bands and hosts)."""
        ...


def _stac_aoi(request: ClassifyRequest) -> BaseGeometry:
    """The request's AOI, required for a STAC source, validated (lon/lat)."""
    if request.aoi is None:
        raise InputError("a STAC source needs an AOI (GeoJSON polygon)")
    return parse_aoi(request.aoi)


def _pixels_under(
    shape: BaseGeometry, transform: rasterio.Affine, width: int, height: int
) -> tuple[int, int, int, int]:
    """Column, row, width and height of the image pixels ``shape``'s bounds touch, cut to the image.

    Both edges are rounded outwards from the bounds themselves: an offset floored and a length ceiled
    apart lost the last column or row wherever their fractions added up to more than one (review).
    """
    west, south, east, north = shape.bounds
    cols, rows = ~transform @ (np.array([west, east, west, east]), np.array([south, south, north, north]))
    col0, col1 = max(0, math.floor(cols.min())), min(width, math.ceil(cols.max()))
    row0, row1 = max(0, math.floor(rows.min())), min(height, math.ceil(rows.max()))
    return col0, row0, col1 - col0, row1 - row0


@dataclass(frozen=True)
class StacReaderFactory:
    """A STAC source (API URL, static catalog path/URL, or any ``ItemSource``) as a reader factory.

    Args:
        source: the item source, or a URL/path given to ``lulc.sources.open_source``.
        collections: collections to search (URL/path sources only).
        max_cloud_cover: ``eo:cloud_cover`` upper limit of the search.
        allow: the hosts (and whether local files) the reader may fetch from; None = anything.
        retry: retries of a window read on I/O errors.
        max_items: the most items one composite may hold (every block reads every item); more is refused
            (``ItemLimitError``, 413) before any pixel is read. None: no limit (the command line).
    """

    source: ItemSource | str
    collections: tuple[str, ...] | None = None
    max_cloud_cover: float | None = None
    allow: AllowList | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_items: int | None = None

    def prepare_grid(self, request: ClassifyRequest, contract: ModelContract) -> OutputGrid:
        """The model's resolution in the AOI's UTM zone (or ``request.crs``), covering the AOI."""
        aoi = _stac_aoi(request)
        crs = requested_crs(request.crs) if request.crs else utm_crs(aoi)
        return grid_for_aoi(aoi, contract.inputs.resolution, crs, request.block_size)

    def item_source(self) -> ItemSource:
        """The ``ItemSource``, opened from the URL/path if need be.

        The allow-list checks the location and, through the source, every link and item read from it.
        """
        if not isinstance(self.source, str):
            return self.source
        from lulc.sources import open_source

        allow = AllowList.like(self.allow) if self.allow is not None else None
        return open_source(self.source, list(self.collections) if self.collections else None, allow=allow)

    def open(
        self, request: ClassifyRequest, grid: OutputGrid, contract: ModelContract
    ) -> StacBlockReader | StackedBlockReader:
        """Search the items over the AOI and time window; check their bands and hosts.

        A seasonal model gets one composite per season of the request's year, stacked in season order.
        """
        source = self.item_source()
        aoi = shapely.geometry.mapping(_stac_aoi(request))  # parsed once, not once per season (review)
        if not contract.inputs.seasons:
            return self._composite(source, aoi, request.datetime, grid, contract)
        year = season_year(request.datetime)
        return StackedBlockReader(
            tuple(
                self._composite(source, aoi, season.window(year), grid, contract)
                for season in contract.inputs.seasons
            )
        )

    def _composite(
        self,
        source: ItemSource,
        aoi: dict[str, Any],
        datetime: str | None,
        grid: OutputGrid,
        contract: ModelContract,
    ) -> StacBlockReader:
        """The reader of one composite: the items over ``aoi`` (GeoJSON, lon/lat) in ``datetime``."""
        # the items the model was trained on were chosen so: the same limit and the same least cloudy N
        limit = self.max_cloud_cover if self.max_cloud_cover is not None else contract.inputs.max_cloud_cover
        # every candidate of the least-cloudy pick, up to the source's max_search_items (else ItemLimitError)
        found = source.search(
            intersects=aoi,
            datetime=datetime,
            max_cloud_cover=limit,
        )
        if not found:
            window = f" in {datetime}" if datetime else ""
            cloud = f" with eo:cloud_cover <= {limit:g}" if limit is not None else ""
            raise NoItemsError(f"no items of {source.describe()} cover the AOI{window}{cloud}")
        found = least_cloudy(found, contract.inputs.max_items)
        if self.max_items is not None and len(found) > self.max_items:
            window = f" in {datetime}" if datetime else " (no time window)"
            raise ItemLimitError(
                f"{len(found):,} items of {source.describe()} cover the AOI{window}, more than this "
                f"service's limit of {self.max_items:,} per composite; narrow the datetime window"
            )
        usable = [it for it in found if it.has_bands(contract.inputs.bands)]
        if not usable:
            contract.require_bands(set(found[0].bands), f"item {found[0].id!r}")
        items = tuple(self._assets(it, grid, contract) for it in usable)
        return StacBlockReader(grid, items, contract.inputs.composite, self.retry)

    def _assets(self, item: NormalizedItem, grid: OutputGrid, contract: ModelContract) -> ItemAssets:
        assets = item_assets(item, contract.inputs.bands, grid, contract.inputs.mask_scl)
        for asset in (*assets.bands, *([assets.scl] if assets.scl else [])):
            if self.allow is not None:
                self.allow.check(asset.href, f"asset {asset.key!r} of item {item.id!r} at")
        return assets


# ---------------------------------------------------------------------------------------------
# A local multi-band image


def check_image_path(image: Path) -> None:
    """Refuse an ``--image`` that is no file, before any work (the command line and the Python API alike).

    Raises:
        InputError: a folder, or nothing there.
    """
    if image.is_dir():
        raise InputError(f"image {image} is a folder: give the GeoTIFF's path")
    if not image.is_file():
        raise InputError(missing_file("image", image, ": give the GeoTIFF's path"))


@dataclass(frozen=True)
class ImageReaderFactory:
    """A local multi-band GeoTIFF (``--image``) as a reader factory."""

    path: Path
    image_bands: tuple[str, ...] | None = None
    """Names of all the image's bands, in order (``--image-bands``, as training takes them); else the
    image's band descriptions, else its bands in the model's order when it has exactly as many."""
    scale: float | None = None
    """``--scale``: reflectance = value x scale + offset, the user's word over the image's own scaling."""
    offset: float | None = None
    """``--offset``, see ``scale`` (either given: the other is 1, or 0)."""

    def _open(self) -> rasterio.io.DatasetReader:
        try:
            return open_image(self.path)
        except RasterioIOError as exc:
            raise InputError(f"cannot open image {self.path}: {exc}") from exc

    def prepare_grid(self, request: ClassifyRequest, contract: ModelContract) -> OutputGrid:
        """The image's own grid (cut to the AOI), or the model's resolution in ``request.crs``."""
        check_block_size(request.block_size)
        with gdal_env(), self._open() as src:
            if src.crs is None:
                raise InputError(f"image {self.path} has no CRS")
            image_crs = normalize_crs(src.crs.to_string())
            check_on_earth(tuple(src.bounds), image_crs, f"image {self.path}")
            aoi = parse_aoi(request.aoi) if request.aoi is not None else None
            image_box = shapely.geometry.box(*src.bounds)
            crs = requested_crs(request.crs) if request.crs else image_crs
            if crs != image_crs:
                target = aoi if aoi is not None else reproject_geometry(image_box, image_crs, WGS84)
                return grid_for_aoi(target, contract.inputs.resolution, crs, request.block_size)
            if aoi is None:
                return OutputGrid(crs, src.transform, src.width, src.height, request.block_size, None)
            shape = reproject_geometry(aoi, WGS84, crs)
            col, row, width, height = _pixels_under(shape, src.transform, src.width, src.height)
            if width <= 0 or height <= 0:  # a shared edge only intersects too (review: WindowError, exit 1)
                raise NoItemsError(f"the AOI does not overlap image {self.path}")
            transform = src.transform @ rasterio.Affine.translation(col, row)
            beyond = round(shape.difference(image_box).area / abs(src.transform.determinant))
            return OutputGrid(crs, transform, width, height, request.block_size, shape, beyond)

    def open(self, request: ClassifyRequest, grid: OutputGrid, contract: ModelContract) -> ImageBlockReader:
        """Match the contract's bands to image bands; work out how its values become reflectance.

        Raises:
            InputError: bands missing; a float image of values that are not reflectance (digital numbers)
                under a model of reflectance, without ``scale`` or ``offset`` (the user's word) to read it by.
        """
        with gdal_env(), self._open() as src:
            descriptions, dtype, scales, offsets = src.descriptions, src.dtypes[0], src.scales, src.offsets
            indexes = image_band_indexes(self.path, descriptions, contract.inputs.bands, self.image_bands)
            given = given_scaling(self.scale, self.offset)  # as training takes them
            if given is not None:
                return open_image_reader(self.path, grid, indexes, *given)
            own = image_scaling(self.path, dtype, scales, offsets, indexes)
            median = _median_value(src, indexes, grid) if own.how == "float" else 0.0
        stored = median > MAX_REFLECTANCE_MEDIAN  # a float image of values that are not reflectance
        scale, offset = _image_scale(own, contract, float_not_reflectance=stored)
        if stored and (scale, offset) == (1.0, 0.0):
            # CLI review: a float image of DNs under a model of reflectance was mapped all built-up, exit 0
            raise InputError(
                f"image {self.path}'s values under the AOI have a median of {median:,.6g}, and the model "
                f"reads surface reflectance, 0 to about 1. {SCALE_ADVICE}; to classify the values as they "
                "are, give --scale 1"
            )
        return open_image_reader(self.path, grid, indexes, scale, offset)


MEDIAN_BLOCKS = 16
"""The most internal blocks of a float image ``_median_value`` reads (spread over the AOI's window)."""
MEDIAN_VALUES_PER_BLOCK = 1 << 16
"""The most values of a block ``_median_value`` keeps (evenly strided): 16 whole 512 px blocks of 4 bands kept
as float64 doubled the peak memory of ``lulc classify`` on ``bench.peers``' 26 Mpx scene (290 -> 581 MiB)."""


def _median_value(src: rasterio.io.DatasetReader, indexes: tuple[int, ...], grid: OutputGrid) -> float:
    """The median valid value of bands ``indexes`` under ``grid``, from ``MEDIAN_BLOCKS`` blocks at most.

    Under the grid (the AOI's window), not the whole image: a part of the image far from the AOI (a fill
    value the image does not declare as nodata) decided how the AOI's pixels were scaled. Exact zeros are
    left out, the commonest such fill: an AOI mostly on the zero edge of a DN image read as reflectance.
    Whole internal blocks, each decoded once: a read of the window at 256 px a side (an image without
    overviews) decoded each tile again for every output row under ``GDAL_CACHEMAX``'s few bytes, 10 of the
    11 s of a 0.6 Mpx run (2026-12-03, ``bench.peers``' float deflate scene).
    """
    bounds = grid.bounds
    if normalize_crs(src.crs.to_string()) != grid.crs:
        bounds = transform_bounds(grid.crs, src.crs, *bounds)
    whole = windows.Window(0, 0, src.width, src.height)
    try:
        window = (
            windows.from_bounds(*bounds, transform=src.transform)
            .round_offsets()
            .round_lengths()
            .intersection(whole)
        )
    except WindowError:  # a grid off the image reads no pixel of it: the image as a whole decides
        window = whole
    parts = []
    for _, block in src.block_windows(indexes[0]):
        try:
            parts.append(block.intersection(window))
        except WindowError:  # a block off the window
            continue
    samples = [np.zeros(0, dtype=np.float64)]
    for part in parts[:: max(1, math.ceil(len(parts) / MEDIAN_BLOCKS))]:
        values = src.read(list(indexes), window=part, masked=True).compressed()
        values = values[np.isfinite(values) & (values != 0)]
        samples.append(values[:: max(1, math.ceil(values.size / MEDIAN_VALUES_PER_BLOCK))].astype(np.float64))
    valid = np.concatenate(samples)
    return float(np.median(valid)) if valid.size else 0.0


def _image_scale(
    own: ImageScaling, contract: ModelContract, *, float_not_reflectance: bool = False
) -> tuple[float, float]:
    """The scale and offset that turn this image's values into reflectance.

    Each image is read by its own kind (``lulc.pixels.image_scaling``, the rule training used on the model's
    image): the contract's scaling was its training image's, and applied to another image it mapped a
    reflectance image wholly as water under a model trained on DNs, and a DN image wholly as built-up under
    one trained on reflectance, exit 0 (training review). Only an integer image without scale metadata,
    whose DN / 10000 is a guess, takes the model's scaling when that was not reflectance as stored: the
    training image was integers too (DN, or a scale its user gave), and this one is taken as alike; so does
    a float image whose values are not reflectance (``float_not_reflectance``: a float image of DNs, which
    training takes with ``--scale`` only).
    """
    trained = contract.inputs.radiometry
    guessed = own.how == "dn" or (own.how == "float" and float_not_reflectance)
    if guessed and (trained.scale, trained.offset) != (1.0, 0.0):
        return trained.scale, trained.offset
    return own.scale, own.offset
