"""STAC imagery: items found through ``lulc.sources``, stacked with stackstac, masked, composited."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import transform_bounds
from shapely.geometry import box, mapping
from shapely.geometry.base import BaseGeometry

from lulc.contract import Radiometry
from lulc.errors import SourceError
from lulc.gdal_env import gdal_options
from lulc.sentinel2 import NormalizedItem
from training.config import TrainingConfig
from training.errors import ImageryError
from training.imagery import Block, Grid, Status
from training.points import read_vector
from training.settings import TrainingSettings


def read_aoi(aoi: str | list[float]) -> BaseGeometry:
    """The AOI in EPSG:4326: a ``[w, s, e, n]`` bbox or the union of a vector file's features."""
    if isinstance(aoi, list):
        return box(*aoi)
    path = Path(aoi)
    frame = read_vector(path, "AOI file", ImageryError)
    if len(frame) == 0:
        raise ImageryError(f"AOI file {path} holds no features")
    if frame.crs is None:
        raise ImageryError(f"AOI file {path} declares no CRS")
    geom = frame.to_crs("EPSG:4326").geometry.union_all()
    if geom.is_empty:
        raise ImageryError(f"AOI file {path} has an empty geometry")
    return geom


def _iso(item: NormalizedItem) -> str:
    return item.datetime.isoformat().replace("+00:00", "Z")


def _stackstac_item(item: NormalizedItem, assets: Sequence[str]) -> dict[str, Any]:
    """A minimal STAC item for stackstac: canonical asset keys, ``proj:epsg`` (all stackstac 0.5 reads)."""
    out_assets = {}
    for name in assets:
        band = item.scl if name == "scl" else item.bands[name]
        if band is None:
            continue
        asset: dict[str, Any] = {"href": band.href, "type": "image/tiff; application=geotiff"}
        if band.shape is not None and band.transform is not None:
            asset["proj:shape"] = list(band.shape)
            asset["proj:transform"] = list(band.transform)
        out_assets[name] = asset
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": item.id,
        "bbox": list(item.bbox) if item.bbox else None,
        "geometry": item.geometry,
        "properties": {"datetime": _iso(item), "proj:epsg": item.epsg},
        "assets": out_assets,
        "links": [],
    }


@dataclass
class StacImagery:
    """A per-pixel composite of cloud-masked Sentinel-2 items on the model's grid, computed block by block."""

    grid: Grid
    bands: list[str]
    radiometry: Radiometry
    items: list[NormalizedItem]
    stack: Any
    scales: npt.NDArray[np.float32]
    offsets: npt.NDArray[np.float32]
    nodata: npt.NDArray[np.float64]
    mask_scl: list[int]
    has_scl: bool
    composite: str
    source: str
    notes: list[str] = field(default_factory=list)

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

    def read_blocks(
        self, blocks: Sequence[Block]
    ) -> Iterator[tuple[Block, npt.NDArray[np.float32], npt.NDArray[np.uint8]]]:
        """Each block's composite reflectance ``(bands, h, w)`` and status codes."""
        for block in blocks:
            win = self.grid.window(*block)
            r0, c0 = int(win.row_off), int(win.col_off)
            cube = self.stack[:, :, r0 : r0 + int(win.height), c0 : c0 + int(win.width)]
            try:
                raw = np.asarray(cube.data.compute(scheduler="threads"))
            except Exception as exc:  # rasterio/GDAL errors surface through dask
                raise ImageryError(f"cannot read imagery from {self.source}: {exc}") from exc
            refl, status = self._composite(raw)
            yield block, refl, status

    def _composite(
        self, raw: npt.NDArray[np.uint16]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
        nb = len(self.bands)
        dn = raw[:, :nb].astype(np.float32)
        has_data = np.all(dn != self.nodata[:, :, None, None].astype(np.float32), axis=1)
        clear = has_data.copy()
        if self.has_scl:
            scl = raw[:, nb]
            clear &= ~np.isin(scl, self.mask_scl)
        refl = dn * self.scales[:, :, None, None] + self.offsets[:, :, None, None]
        refl = np.where(clear[:, None], refl, np.float32(np.nan)).astype(np.float32)
        if self.composite == "first-valid":
            first = np.argmax(clear, axis=0)
            out = np.take_along_axis(refl, first[None, None], axis=0)[0]
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=RuntimeWarning)  # all-NaN pixels stay NaN
                out = np.nanmedian(refl, axis=0).astype(np.float32)
        any_clear = clear.any(axis=0)
        status = np.where(any_clear, Status.OK, np.where(has_data.any(axis=0), Status.CLOUD, Status.NODATA))
        return out.astype(np.float32), status.astype(np.uint8)


def _search(config: TrainingConfig, geom: BaseGeometry) -> tuple[list[NormalizedItem], str]:
    from lulc.sources import open_source

    try:
        source = open_source(str(config.stac), [config.collection])
        items = source.search(
            intersects=mapping(geom), datetime=config.datetime, max_cloud_cover=config.max_cloud_cover
        )
    except SourceError as exc:
        raise ImageryError(f"cannot search {config.stac}: {exc}") from exc
    if not items:
        w, s, e, n = (round(v, 5) for v in geom.bounds)
        raise ImageryError(
            f"no {config.collection} items in {source.describe()} intersect the AOI "
            f"[{w}, {s}, {e}, {n}] (datetime {config.datetime or 'any'}, "
            f"max cloud cover {config.max_cloud_cover if config.max_cloud_cover is not None else 'any'})"
        )
    if config.max_items is not None and len(items) > config.max_items:
        by_cloud = sorted(
            items, key=lambda i: (i.cloud_cover if i.cloud_cover is not None else 101.0, _iso(i))
        )
        keep = {i.id for i in by_cloud[: config.max_items]}
        items = [i for i in items if i.id in keep]
    return items, source.describe()


def _block_anchor(
    items: Sequence[NormalizedItem], bands: Sequence[str], epsg: int, res: float, chunk: int
) -> tuple[float, float, float]:
    """Origin and step the composite's north-west corner snaps to.

    Where the items' native grid has the model's resolution, blocks are aligned with the COGs' internal
    tiles (origin of that grid, 512 px steps at that resolution), so sampling a block reads whole tiles
    once instead of the corners of four. Otherwise the corner snaps to multiples of the resolution.
    """
    for item in items:
        if item.epsg != epsg:
            continue
        for band in bands:
            asset = item.bands[band]
            if asset.transform is not None and abs(asset.transform[0] - res) < 1e-9:
                return asset.transform[2], asset.transform[5], chunk * res
    return 0.0, 0.0, res


def open_stac_imagery(config: TrainingConfig, settings: TrainingSettings) -> StacImagery:
    """Find the recipe's items and prepare the (lazy) stack on the model's grid."""
    import stackstac

    if config.aoi is None:
        raise ImageryError("STAC imagery needs an AOI")
    geom = read_aoi(config.aoi)
    items, source = _search(config, geom)
    for item in items:
        missing = item.missing_bands(config.bands)
        if missing:
            raise ImageryError(
                f"item {item.id} in {source} has no band(s) {missing}; its bands are {sorted(item.bands)}"
            )
    epsg = sorted(Counter(i.epsg for i in items).items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    res = float(config.resolution or 10.0)
    w, s, e, n = transform_bounds("EPSG:4326", f"EPSG:{epsg}", *geom.bounds, densify_pts=21)
    x0, y0, step = _block_anchor(items, config.bands, epsg, res, settings.chunk_size)
    w, n = x0 + np.floor((w - x0) / step) * step, y0 - np.floor((y0 - n) / step) * step
    e, s = np.ceil(e / res) * res, np.floor(s / res) * res
    has_scl = all(i.scl is not None for i in items)
    assets = [*config.bands, *(["scl"] if has_scl else [])]
    stack = stackstac.stack(
        [_stackstac_item(i, assets) for i in items],
        assets=assets,
        epsg=epsg,
        resolution=res,
        bounds=(float(w), float(s), float(e), float(n)),
        snap_bounds=False,
        chunksize=settings.chunk_size,
        dtype=np.dtype("uint16"),
        fill_value=np.uint16(0),  # numpy 2: a scalar of the dtype
        rescale=False,
        sortby_date=False,
        properties=False,
        band_coords=False,
        gdal_env=stackstac.LayeredEnv(always=gdal_options()),
    )
    height, width = int(stack.shape[2]), int(stack.shape[3])
    grid = Grid(
        CRS.from_epsg(epsg),
        Affine(res, 0.0, float(w), 0.0, -res, float(n)),
        width,
        height,
        settings.chunk_size,
        settings.chunk_size,
    )
    scales = np.asarray([[i.bands[b].scale for b in config.bands] for i in items], dtype=np.float32)
    offsets = np.asarray([[i.bands[b].offset for b in config.bands] for i in items], dtype=np.float32)
    nodata = np.asarray(
        [[i.bands[b].nodata if i.bands[b].nodata is not None else 0 for b in config.bands] for i in items],
        dtype=np.float64,
    )
    mask = sorted({c for i in items for c in i.mask_classes})
    return StacImagery(
        grid,
        list(config.bands),
        Radiometry(),
        items,
        stack,
        scales,
        offsets,
        nodata,
        mask,
        has_scl,
        config.composite,
        source,
    )
