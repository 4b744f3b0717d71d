"""STAC imagery: items found through ``lulc.sources``, read, masked and composited by ``lulc.pixels``.

The grid is ``lulc.grid.grid_for_aoi``'s, in the items' most common CRS, over the AOI's lon/lat bounding
box, its north-west corner snapped to the items' own tiling (so a block reads whole COG tiles); the pixels
come from the reader the classifier uses, with the SCL classes the model will record in its contract.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry import box, mapping
from shapely.geometry.base import BaseGeometry

from lulc.allowlist import AllowList
from lulc.aoi import geojson_aoi, parse_aoi
from lulc.contract import Radiometry
from lulc.errors import ReadError, SourceError
from lulc.grid import Block, OutputGrid, grid_for_aoi, utm_crs
from lulc.pixels import BlockPixels, StacBlockReader, StackedBlockReader, item_assets
from lulc.pixels.windows import RetryPolicy
from lulc.sas import signer_for
from lulc.seasons import season_year
from lulc.sentinel2 import NormalizedItem, least_cloudy
from training.config import TrainingConfig
from training.errors import ImageryError
from training.imagery import AOI_EXTENT, Extent, read_blocks
from training.settings import TrainingSettings


def read_aoi(aoi: str | list[float] | dict[str, Any]) -> BaseGeometry:
    """The AOI in EPSG:4326: a ``[w, s, e, n]`` bbox, GeoJSON, or ``--aoi`` as ``lulc classify`` reads it."""
    return parse_aoi(geojson_aoi(aoi))


def _iso(item: NormalizedItem) -> str:
    return item.datetime.isoformat().replace("+00:00", "Z")


@dataclass
class StacImagery:
    """A per-pixel composite of cloud-masked Sentinel-2 items on the model's grid, computed block by block."""

    grid: OutputGrid
    bands: list[str]
    radiometry: Radiometry
    items: list[NormalizedItem]
    reader: StacBlockReader | StackedBlockReader
    mask_scl: list[int]
    source: str
    notes: list[str] = field(default_factory=list)
    composites: int = 1
    """Composites stacked band-wise (one per season of a seasonal recipe)."""

    @property
    def description(self) -> str:
        """The source and the items."""
        return f"{self.source}: {len(self.items)} item(s) {', '.join(i.id for i in self.items)}"

    @property
    def identity(self) -> str:
        """The collection and item ids (the same whether read from an API or a static catalog)."""
        collection = self.items[0].collection or "items"
        return f"{collection} {', '.join(i.id for i in self.items)}"

    @property
    def time_window(self) -> str | None:
        """First and last acquisition."""
        return f"{_iso(self.items[0])}/{_iso(self.items[-1])}"

    @property
    def extent(self) -> Extent:
        """The AOI's bounding box: the grid the items are read on."""
        return AOI_EXTENT

    def read_blocks(self, blocks: Sequence[Block]) -> Iterator[tuple[Block, BlockPixels]]:
        """Each block's composite reflectance and status codes, through the classifier's reader."""
        try:
            yield from read_blocks(self.reader, blocks)
        except ReadError as exc:  # a COG that cannot be read, even after retries
            raise ImageryError(f"cannot read imagery from {self.source}: {exc}") from exc


def _search(
    config: TrainingConfig, geom: BaseGeometry, datetime: str | None
) -> tuple[list[NormalizedItem], str]:
    from lulc.sources import open_source

    try:
        source = open_source(str(config.stac), [config.collection])
        items = source.search(
            intersects=mapping(geom), datetime=datetime, max_cloud_cover=config.max_cloud_cover
        )
    except SourceError as exc:
        raise ImageryError(f"cannot search {config.stac}: {exc}") from exc
    if not items:
        w, s, e, n = (round(v, 5) for v in geom.bounds)
        raise ImageryError(
            f"no {config.collection} items in {source.describe()} intersect the AOI "
            f"[{w}, {s}, {e}, {n}] (datetime {datetime or 'any'}, "
            f"max cloud cover {config.max_cloud_cover if config.max_cloud_cover is not None else 'any'})"
        )
    return least_cloudy(items, config.max_items), source.describe()


def _block_anchor(
    items: Sequence[NormalizedItem], bands: Sequence[str], epsg: int, res: float, chunk: int
) -> tuple[tuple[float, float], float]:
    """Origin and step the grid's north-west corner snaps to.

    Where the items' native grid has the model's resolution, blocks are aligned with the COGs' internal
    tiles (origin of that grid, ``chunk`` px steps at that resolution), so sampling a block reads whole
    tiles once instead of the corners of four. Otherwise the corner snaps to multiples of the resolution.
    """
    for item in items:
        if item.epsg != epsg:
            continue
        for band in bands:
            asset = item.bands[band]
            if asset.transform is not None and abs(asset.transform[0] - res) < 1e-9:
                return (asset.transform[2], asset.transform[5]), chunk * res
    return (0.0, 0.0), res


def open_stac_imagery(config: TrainingConfig, settings: TrainingSettings) -> StacImagery:
    """Find the recipe's items and open the reader of their composite on the model's grid."""
    if config.aoi is None:
        raise ImageryError("STAC imagery needs an AOI")
    geom = read_aoi(config.aoi)
    if config.seasons:
        year = season_year(config.datetime)
        windows: list[str | None] = [season.window(year) for season in config.seasons]
    else:
        windows = [config.datetime]
    found = [_search(config, geom, window) for window in windows]
    items, source = found[0]
    if config.seasons:  # every season's items once, in date order
        by_id = {item.id: item for items_of_window, _ in found for item in items_of_window}
        items = sorted(by_id.values(), key=lambda i: (i.datetime, i.id))
    for item in items:
        missing = item.missing_bands(config.bands)
        if missing:
            raise ImageryError(
                f"item {item.id} in {source} has no band(s) {missing}; its bands are {sorted(item.bands)}"
            )
    # the AOI's UTM zone, as classification picks it (``StacReaderFactory.prepare_grid``): where the items
    # came from two zones, their most frequent one put training on another lattice than every map
    epsg = int(utm_crs(geom).split(":")[1])
    res = float(config.resolution or 10.0)
    anchor, step = _block_anchor(items, config.bands, epsg, res, settings.chunk_size)
    # The AOI's lon/lat bounding box: training points anywhere in it are sampled, as they always were.
    grid = grid_for_aoi(box(*geom.bounds), res, f"EPSG:{epsg}", settings.chunk_size, anchor, step)
    mask = sorted({c for i in items for c in i.mask_classes})
    # the Planetary Computer's imagery is read with its SAS tokens (``lulc.sas``), as classification reads it
    retry = RetryPolicy(
        signer=signer_for(str(config.stac), AllowList.anything(), settings.sas_token_url, settings.sas_hosts)
    )
    readers = [
        StacBlockReader(
            grid,
            tuple(item_assets(i, config.bands, grid, mask) for i in window_items),
            config.composite,
            retry,
        )
        for window_items, _ in found
    ]
    if not config.seasons:
        return StacImagery(grid, list(config.bands), Radiometry(), items, readers[0], mask, source)
    reader = StackedBlockReader(tuple(readers))
    notes = [
        f"season {season.name}: {len(window_items)} item(s) {', '.join(i.id for i in window_items)}"
        for season, (window_items, _) in zip(config.seasons, found, strict=True)
    ]
    return StacImagery(
        grid, list(config.bands), Radiometry(), items, reader, mask, source, notes, len(readers)
    )
