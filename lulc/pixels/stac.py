"""Blocks of Sentinel-2 items (normalised by ``lulc.sentinel2``): windows, scaling, SCL masking, composites.

A date counts at a pixel when every band has data there and its SCL class is not masked ("clear"); the
composite is the per-band median over the clear dates (or the first clear date), so all bands of a pixel
come from the same dates.
"""

from __future__ import annotations

import datetime as dt
import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import shapely
import shapely.geometry
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from lulc.errors import SourceError
from lulc.grid import WGS84, Block, OutputGrid, reproject_geometry
from lulc.pixels.types import (
    REFLECTANCE_RESAMPLING,
    SCL_RESAMPLING,
    Array,
    BlockPixels,
    SourceRef,
    Status,
    to_reflectance,
)
from lulc.pixels.windows import RetryPolicy

if TYPE_CHECKING:
    from lulc.sentinel2 import BandAsset, NormalizedItem

COMPOSITES = ("median", "first-valid")


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


def item_assets(
    item: NormalizedItem, bands: Sequence[str], grid: OutputGrid, mask_scl: Sequence[int] | None = None
) -> ItemAssets:
    """The assets of ``bands`` (in that order) and SCL of an item, its footprint in ``grid``'s CRS.

    ``mask_scl`` are the SCL classes masked (default: the item's own ``mask_classes``).

    Raises:
        SourceError: an asset is JPEG 2000 (Copernicus' own archive): rasters are opened as GeoTIFF only
            (``lulc.gdal_env.REMOTE_RASTER_DRIVER``), so say so now rather than fail at every block.
    """
    for asset in (*(item.bands[b] for b in bands), *([item.scl] if item.scl is not None else [])):
        if urlsplit(asset.href).path.lower().endswith((".jp2", ".j2k")):
            raise SourceError(
                f"asset {asset.key!r} of item {item.id!r} is JPEG 2000 ({asset.href}): lulc-stac reads "
                "Cloud-Optimised GeoTIFFs; use a catalog of COGs (Earth Search, Planetary Computer)"
            )
    if item.geometry is not None:
        footprint = reproject_geometry(shapely.geometry.shape(item.geometry), WGS84, grid.crs)
    else:
        footprint = shapely.geometry.box(*grid.bounds)
    return ItemAssets(
        id=item.id,
        href=item.self_href,
        datetime=item.datetime,
        footprint=footprint,
        bands=tuple(item.bands[b] for b in bands),
        scl=item.scl,
        mask_classes=tuple(mask_scl) if mask_scl is not None else item.mask_classes,  # [] masks nothing
    )


@dataclass(frozen=True)
class _Date:
    """One acquisition read on a block: reflectance of every band, and where it is clear."""

    reflectance: Array
    clear: npt.NDArray[np.bool_]

    def filled_from(self, other: _Date) -> _Date:
        """This date with ``other``'s clear pixels where this one has none (``self`` first)."""
        take = other.clear & ~self.clear
        reflectance = self.reflectance.copy()
        np.copyto(reflectance, other.reflectance, where=take)
        return _Date(reflectance, self.clear | take)


def _acquisition(item: ItemAssets, longitude: float) -> dt.date:
    """Which acquisition an item belongs to: its day in local solar time at ``longitude`` (the block's).

    Adjacent MGRS tiles of one pass are items of their own (seconds apart) that overlap by kilometres;
    counted apart, the overlap would vote twice in a median (and show a seam). One satellite passes a
    place at most once a day (twice only near the poles, minutes apart and alike). The day is local: a
    Sentinel-2 pass is at about 10:30 local solar time everywhere, far from midnight, while its UTC time
    crosses midnight near 157 E (eastern Australia), where one pass's tiles fell on two UTC days.
    """
    return (item.datetime.astimezone(UTC) + dt.timedelta(hours=longitude / 15.0)).date()


@functools.lru_cache(maxsize=16)
def _to_lonlat(crs: str) -> Transformer:
    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


@dataclass(frozen=True)
class StacBlockReader:
    """Reads blocks from the COGs of Sentinel-2 items: window reads, scaling, SCL masking, compositing."""

    grid: OutputGrid
    items: tuple[ItemAssets, ...]
    composite: str = "median"
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def sources(self) -> list[SourceRef]:
        """The items, in the order given (date order from the sources)."""
        return [SourceRef(it.id, it.href, it.datetime) for it in self.items]

    def coverage(self) -> BaseGeometry:
        """Where the items are, in the grid's CRS (the union of their footprints)."""
        return shapely.union_all([item.footprint for item in self.items])

    def read(self, block: Block) -> Array:
        """Composite reflectance of ``block`` over the items whose footprint intersects it."""
        return self.read_pixels(block).reflectance

    def read_pixels(self, block: Block) -> BlockPixels:
        """Composite reflectance of ``block`` and each pixel's status (OK, CLOUD or NODATA)."""
        n_bands = len(self.items[0].bands) if self.items else 0
        shape = (block.height, block.width)
        box = shapely.geometry.box(*self.grid.block_bounds(block))
        longitude = float(_to_lonlat(self.grid.crs).transform(box.centroid.x, box.centroid.y)[0])
        observed = np.zeros(shape, dtype=bool)
        dates: list[_Date] = []
        days: list[dt.date] = []
        for item in self.items:
            if not item.footprint.intersects(box):
                continue
            scl_ok, scl_seen = self._scl(item, block)
            if item.scl is not None:
                observed |= scl_seen
            if not scl_ok.any():  # every pixel clouded or outside: the bands need not be read
                continue
            reflectance, has_data = self._bands(item, block)
            if item.scl is None:
                observed |= has_data
            clear = has_data & scl_ok
            if not clear.any():
                continue
            day = _acquisition(item, longitude)
            if dates and days[-1] == day:  # the same pass, another tile: one date, first valid
                dates[-1] = dates[-1].filled_from(_Date(reflectance, clear))
            else:
                dates.append(_Date(reflectance, clear))
                days.append(day)
        out = self._composite(dates, n_bands, shape)
        clear_any = np.zeros(shape, dtype=bool)
        for date in dates:
            clear_any |= date.clear
        status = np.where(clear_any, Status.OK, np.where(observed, Status.CLOUD, Status.NODATA))
        return BlockPixels(out, status.astype(np.uint8))

    def _scl(self, item: ItemAssets, block: Block) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Where the item's SCL is not masked, and where it has data at all."""
        if item.scl is None:
            everywhere = np.ones((block.height, block.width), dtype=bool)
            return everywhere, everywhere
        nodata = item.scl.nodata if item.scl.nodata is not None else 0
        scl = self.retry.run_read(item.scl.href, self.grid, block, nodata, SCL_RESAMPLING)
        seen = scl != nodata
        return seen & ~np.isin(scl, item.mask_classes), seen

    def _bands(self, item: ItemAssets, block: Block) -> tuple[Array, npt.NDArray[np.bool_]]:
        """Reflectance of every band ``(n_bands, h, w)``, and where all of them have data."""
        out = np.empty((len(item.bands), block.height, block.width), dtype=np.float32)
        has_data = np.ones((block.height, block.width), dtype=bool)
        for b, asset in enumerate(item.bands):
            nodata = asset.nodata if asset.nodata is not None else 0.0
            dn = self.retry.run_read(asset.href, self.grid, block, nodata, REFLECTANCE_RESAMPLING)
            has_data &= ~np.isnan(dn) if np.isnan(nodata) else dn != nodata  # NaN equals nothing
            out[b] = to_reflectance(dn.astype(np.float32), asset.scale, asset.offset)
        return out, has_data

    def _composite(self, dates: Sequence[_Date], n_bands: int, shape: tuple[int, int]) -> Array:
        """Median (or first) of the clear dates, per band; NaN where no date is clear."""
        if len(dates) == 1 and dates[0].clear.all():  # one date clear everywhere: it is the composite
            return dates[0].reflectance
        out = np.full((n_bands, *shape), np.nan, dtype=np.float32)
        if not dates:
            return out
        if self.composite == "first-valid":
            todo = np.ones(shape, dtype=bool)
            for date in dates:
                take = todo & date.clear
                np.copyto(out, date.reflectance, where=take)
                todo &= ~take
            return out
        if len(dates) == 1:  # one date: the median is that date's value, no stack needed
            np.copyto(out, dates[0].reflectance, where=dates[0].clear)
            return out
        stack = np.stack([np.where(d.clear, d.reflectance, np.float32(np.nan)) for d in dates])
        count = np.count_nonzero(np.stack([d.clear for d in dates]), axis=0)
        # Pixels clear once take that value (fmax skips NaN); nanmedian runs only where dates disagree.
        out = np.fmax.reduce(stack, axis=0)
        several = count > 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            out[:, several] = np.nanmedian(stack[:, :, several], axis=0)
        return out
