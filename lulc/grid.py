"""The one grid type: CRS and pixel grid of a map or of training imagery, and its cut into blocks.

Classification maps and training samples both live on an ``OutputGrid`` built by ``grid_for_aoi`` (or on a
local image's own grid), and are read block by block through ``lulc.pixels``. AOIs: ``lulc.aoi``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import antimeridian
import numpy as np
import numpy.typing as npt
import pyproj
import shapely
import shapely.geometry
import shapely.ops
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.transform import Affine, array_bounds
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from lulc.errors import InputError
from lulc.gdal_env import gdal_env

WGS84 = "EPSG:4326"


UNMAPPED = "lulc:unmapped"
"""Item property of a run: the part of its AOI without imagery (``OutputGrid.unmapped_wgs84``, lon/lat), or
null: with the item's geometry, where the imagery was, the ground the run was asked for."""


@dataclass(frozen=True)
class Block:
    """One rectangle of the output grid, in pixel offsets; ``index`` is its position in row-major order."""

    index: int
    row: int
    col: int
    height: int
    width: int

    @property
    def window(self) -> Window:
        """The block as a rasterio window of the output grid."""
        return Window(self.col, self.row, self.width, self.height)


@dataclass(frozen=True)
class OutputGrid:
    """The pixel grid of the output map, with the AOI (in the grid's CRS) that masks it.

    Pixels outside ``aoi`` are written as nodata; ``aoi`` None means the whole grid is wanted.
    """

    crs: str
    transform: Affine
    width: int
    height: int
    block_size: int = 512
    aoi: BaseGeometry | None = field(default=None, compare=False)
    aoi_pixels_beyond: int = 0
    """Pixels of the AOI past the grid's edge, estimated from area: a grid cut to an image (``--image``)
    leaves out the AOI's parts beyond it, which a run counts as unmapped all the same."""

    @property
    def rasterio_crs(self) -> CRS:
        """The CRS as a rasterio object."""
        return CRS.from_user_input(self.crs)

    @property
    def epsg(self) -> int | None:
        """The CRS's EPSG code, if it has one."""
        code = self.rasterio_crs.to_epsg()
        return int(code) if code is not None else None

    @property
    def resolution(self) -> tuple[float, float]:
        """Pixel size ``(x, y)`` in CRS units (both positive)."""
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in the grid's CRS."""
        west, south, east, north = array_bounds(self.height, self.width, self.transform)
        return float(west), float(south), float(east), float(north)

    @property
    def n_pixels(self) -> int:
        """Number of pixels of the grid."""
        return self.width * self.height

    @property
    def n_blocks(self) -> int:
        """Number of blocks the grid is cut into."""
        return math.ceil(self.height / self.block_size) * math.ceil(self.width / self.block_size)

    @property
    def block_rows(self) -> int:
        """Number of rows of blocks."""
        return math.ceil(self.height / self.block_size)

    @property
    def block_cols(self) -> int:
        """Number of columns of blocks."""
        return math.ceil(self.width / self.block_size)

    def block_at(self, block_row: int, block_col: int) -> Block:
        """The block at (``block_row``, ``block_col``) of the grid of blocks (edge blocks cut to the grid)."""
        size = self.block_size
        row, col = block_row * size, block_col * size
        if not (0 <= row < self.height and 0 <= col < self.width):
            raise IndexError(
                f"no block ({block_row}, {block_col}) in a {self.block_rows} x {self.block_cols} grid"
            )
        index = block_row * self.block_cols + block_col
        return Block(index, row, col, min(size, self.height - row), min(size, self.width - col))

    def pixel_index(
        self, x: npt.ArrayLike, y: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Row and column of the pixel holding each coordinate in the grid's CRS (may be outside the grid).

        A coordinate no projection could give (inf, NaN: a point of another CRS) is at row and column -1,
        outside, as are all far beyond the grid (cut to 2**40 px: no integer overflow, no NumPy warning).
        """
        t = self.transform  # north-up: no rotation terms
        cols = (np.asarray(x, dtype=np.float64) - t.c) / t.a
        rows = (np.asarray(y, dtype=np.float64) - t.f) / t.e
        far = float(2**40)
        cols, rows = (
            np.clip(np.nan_to_num(v, nan=-1.0, posinf=-1.0, neginf=-1.0), -1.0, far) for v in (cols, rows)
        )
        return np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)

    def blocks(self) -> Iterator[Block]:
        """The blocks, row by row; edge blocks are cut to the grid."""
        size = self.block_size
        index = 0
        for row in range(0, self.height, size):
            for col in range(0, self.width, size):
                yield Block(index, row, col, min(size, self.height - row), min(size, self.width - col))
                index += 1

    def at_resolution(self, resolution: float) -> OutputGrid:
        """The same extent in pixels of ``resolution`` (which should divide it), e.g. a band's 20 m grid."""
        t = self.transform
        width = int(self.width * abs(t.a) // resolution)
        height = int(self.height * abs(t.e) // resolution)
        transform = Affine(resolution, 0.0, t.c, 0.0, -resolution, t.f)
        return OutputGrid(self.crs, transform, width, height, self.block_size, self.aoi)

    def block_transform(self, block: Block) -> Affine:
        """The affine transform of a block's top-left pixel."""
        return self.transform @ Affine.translation(block.col, block.row)

    def block_bounds(self, block: Block) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of a block in the grid's CRS."""
        west, south, east, north = array_bounds(block.height, block.width, self.block_transform(block))
        return float(west), float(south), float(east), float(north)

    def aoi_mask(self, block: Block) -> npt.NDArray[np.bool_]:
        """True where a block's pixel centre lies inside the AOI (everywhere when there is no AOI)."""
        shape = (block.height, block.width)
        if self.aoi is None:
            return np.ones(shape, dtype=bool)
        return _inside(self.aoi, self.block_transform(block), 0, 0, block.height, block.width)

    def footprint_wgs84(self, covered: BaseGeometry | None = None) -> BaseGeometry:
        """The grid's extent (or the AOI, if smaller) as a lon/lat polygon, edges densified.

        ``covered`` (in the grid's CRS): where the imagery is, to leave out what no input covers (an item
        must not claim ground its map has no pixel of).
        """
        box = shapely.geometry.box(*self.bounds)
        shape = box if self.aoi is None else self.aoi.intersection(box)
        if covered is not None and not (within := shape.intersection(covered)).is_empty:
            shape = within
        return lonlat_outline(shape, self.crs)

    def unmapped_wgs84(self, covered: BaseGeometry) -> BaseGeometry | None:
        """The part of the AOI that has no imagery on this grid, as lon/lat; None if none.

        ``covered`` (grid CRS): where the imagery is (the items' footprints; an image's grid itself). With
        ``footprint_wgs84(covered)`` it is the ground the run was asked for: a reader of the map counts its
        nodata there as gaps (no imagery), and not off it (a polygon AOI's bounding-box corners). The AOI is
        taken whole: an ``--image`` grid stops at the image, and the AOI past it is unmapped too. Slivers
        under half a pixel (the outlines' rounding) are none.
        """
        box = shapely.geometry.box(*self.bounds)
        shape = box if self.aoi is None else self.aoi
        covered = covered.intersection(box)
        if shape.intersection(covered).is_empty:  # the footprint is the whole AOI then
            return None
        half_pixel = abs(self.transform.a * self.transform.e) / 2
        parts = [
            part
            for part in shapely.get_parts(shape.difference(covered))
            if isinstance(part, shapely.geometry.Polygon) and part.area >= half_pixel
        ]
        if not parts:
            return None
        return lonlat_outline(shapely.MultiPolygon(parts), self.crs)

    def bounds_wgs84(self) -> tuple[float, float, float, float]:
        """The grid's bounds in lon/lat (``rasterio.warp.transform_bounds``, 21 points an edge)."""
        west, south, east, north = transform_bounds(self.rasterio_crs, WGS84, *self.bounds)
        return float(west), float(south), float(east), float(north)

    def pixel_area_m2(self) -> float:
        """The mean true (geodesic) ground area of one pixel, in square metres, whatever the CRS.

        Summed over cells of at least 64 x 64 px (at most 64 cells a side) with ``pixel_areas_m2``, which
        also measures grids across the antimeridian, whose lon/lat outline is no valid polygon.
        """
        cell = max(AREA_CELL, -(-max(self.width, self.height) // 64))
        return (
            float(cell_areas_m2(self.crs, self.transform, self.width, self.height, cell).sum())
            / self.n_pixels
        )


AREA_CELL = 64
"""Pixels a side of the cells a grid's mean pixel area is summed over (pixel areas vary smoothly)."""


def pixel_areas_m2(
    crs: str, transform: Affine, rows: npt.ArrayLike, cols: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """The true (geodesic, WGS84) ground area of the pixel at each ``(row, col)``, in square metres.

    Whatever the CRS: its units (metres, feet, degrees) and its scale (Web Mercator's pixels shrink as
    ``cos² latitude``) are in the pixel's four corners taken to lon/lat.
    """
    r = np.asarray(rows, dtype=np.float64).ravel()
    c = np.asarray(cols, dtype=np.float64).ravel()
    return rectangle_areas_m2(crs, transform, r, c, r + 1, c + 1)


def rectangle_areas_m2(
    crs: str,
    transform: Affine,
    top: npt.ArrayLike,
    left: npt.ArrayLike,
    bottom: npt.ArrayLike,
    right: npt.ArrayLike,
) -> npt.NDArray[np.float64]:
    """The true (geodesic, WGS84) area in m² of each rectangle of pixels ``top:bottom``, ``left:right``.

    Its four corners are taken to lon/lat and joined by geodesics.
    """
    t, lft = np.asarray(top, dtype=np.float64).ravel(), np.asarray(left, dtype=np.float64).ravel()
    b, rgt = np.asarray(bottom, dtype=np.float64).ravel(), np.asarray(right, dtype=np.float64).ravel()
    corner_cols = np.stack([lft, rgt, rgt, lft], axis=1)
    corner_rows = np.stack([t, t, b, b], axis=1)
    x, y = transform @ (corner_cols, corner_rows)
    lon, lat = Transformer.from_crs(crs, WGS84, always_xy=True).transform(x, y)
    lon = np.asarray(lon).reshape(-1, 4)
    lat = np.asarray(lat).reshape(-1, 4)
    geod = pyproj.Geod(ellps="WGS84")
    return np.array(
        [abs(geod.polygon_area_perimeter(lon[i], lat[i])[0]) for i in range(lon.shape[0])], dtype=np.float64
    )


def cell_edges(size: int, cell: int) -> npt.NDArray[np.int64]:
    """Pixel edges of ``cell``-pixel cells along a side of ``size`` pixels: 0, cell, ..., size."""
    return np.append(np.arange(0, size, cell, dtype=np.int64), np.int64(size))


def cell_areas_m2(crs: str, transform: Affine, width: int, height: int, cell: int) -> npt.NDArray[np.float64]:
    """The true area (m²) of each ``cell`` x ``cell`` pixel cell of a grid: ``(cell rows, cell columns)``.

    The last row and column of cells are cut to the grid.
    """
    row_edges, col_edges = cell_edges(height, cell), cell_edges(width, cell)
    t, lft = np.meshgrid(row_edges[:-1], col_edges[:-1], indexing="ij")
    b, rgt = np.meshgrid(row_edges[1:], col_edges[1:], indexing="ij")
    return rectangle_areas_m2(crs, transform, t, lft, b, rgt).reshape(t.shape)


def utm_crs(geometry: BaseGeometry) -> str:
    """The WGS84 / UTM zone CRS (``EPSG:326xx`` or ``EPSG:327xx``) of a lon/lat geometry's centroid.

    A geometry split at the antimeridian (parts near +180 and -180) is taken whole: its western
    longitudes are shifted by 360 degrees first, so Fiji gets zone 60 or 1, not the zone of longitude 0.
    """
    west, _, east, _ = geometry.bounds
    if east - west > 180.0:
        east_of_180 = np.array([360.0, 0.0])
        geometry = shapely.transform(geometry, lambda xy: np.where(xy[:, :1] < 0, xy + east_of_180, xy))
    centroid = geometry.centroid
    lon = (centroid.x + 180.0) % 360.0 - 180.0
    zone = min(60, int((lon + 180.0) // 6.0) + 1)
    return f"EPSG:{(32600 if centroid.y >= 0 else 32700) + zone}"


def normalize_crs(crs: str) -> str:
    """A CRS (``EPSG:nnnn``, or anything pyproj reads, as a dataset's own CRS), checked and canonical.

    Raises:
        InputError: The CRS cannot be understood.
    """
    try:
        with gdal_env():  # GDAL's errors go to the exception, not as "ERROR 1: PROJ: ..." lines on stderr
            parsed = CRS.from_user_input(crs)
    except (CRSError, ValueError) as exc:  # rasterio raises ValueError for 'EPSG:x'
        raise InputError(f"unknown CRS {crs[:100]!r}: {exc}") from exc
    epsg = parsed.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else parsed.to_wkt()


def crs_text(crs: CRS | str) -> str:
    """A CRS in a few words for a message: ``AUTHORITY:CODE``, else its name and PROJ string (not its WKT).

    A CRS without a code (a GeoTIFF's custom projection) printed as WKT made a one-line error 600 characters.
    """
    parsed = crs if isinstance(crs, CRS) else CRS.from_user_input(crs)
    authority = parsed.to_authority()
    if authority is not None:
        return f"{authority[0]}:{authority[1]}"
    proj = parsed.to_proj4() or "a CRS PROJ cannot write"
    name = pyproj.CRS.from_wkt(parsed.to_wkt()).name
    text = proj if name in ("", "unknown", "unnamed") else f"{name} ({proj})"
    return text if len(text) <= 160 else text[:159] + "…"


def check_on_earth(bounds: tuple[float, float, float, float], crs: str, what: str) -> None:
    """Refuse ``bounds`` (in ``crs``) that are no place on Earth: a file whose CRS was set wrongly.

    An image of World Mercator metres labelled EPSG:4326 was classified, exit 0, into areas of NaN
    hectares and a ``stats.json`` no JSON reader takes (CLI review). Longitudes from -360 to 360 pass (some
    grids run 0-360), latitudes within half a degree of the poles.

    Raises:
        InputError: the bounds do not transform to finite longitudes and latitudes within those.
    """
    try:
        with gdal_env():
            lonlat = Transformer.from_crs(crs, WGS84, always_xy=True).transform_bounds(
                *bounds, densify_pts=21
            )
    except pyproj.exceptions.ProjError:
        lonlat = (math.inf, math.inf, math.inf, math.inf)
    west, south, east, north = lonlat
    finite = all(math.isfinite(v) for v in lonlat)
    if finite and max(abs(west), abs(east)) <= 360 and max(abs(south), abs(north)) <= 90.5:
        return
    left, bottom, right, top = bounds
    raise InputError(
        f"{what}'s bounds (x {left:.6g} to {right:.6g}, y {bottom:.6g} to {top:.6g}) are no place on Earth "
        f"in its CRS {crs_text(crs)}: the CRS is wrong; set the right one (gdal_edit.py -a_srs EPSG:CODE)"
    )


AUTHORITY_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}:[A-Za-z0-9._-]{1,32}")
"""A CRS as a request may name it: ``AUTHORITY:CODE`` (``EPSG:32654``, ``ESRI:54009``)."""


def requested_crs(crs: str) -> str:
    """A CRS a request or command line asks for, as ``AUTHORITY:CODE``, checked and canonical.

    Never a PROJ string or WKT: their ``+nadgrids``/``+geoidgrids``/``+init`` parameters make PROJ open files
    by path, outside every allow-list (a FIFO there hangs the process).

    Raises:
        InputError: Not ``AUTHORITY:CODE``, or a code PROJ does not know.
    """
    text = crs.strip()
    if not AUTHORITY_CODE.fullmatch(text):
        raise InputError(
            f"the CRS {crs[:100]!r} is not an authority code: give it as AUTHORITY:CODE, e.g. EPSG:32654 "
            "(PROJ strings and WKT are not accepted)"
        )
    return normalize_crs(text)


def lonlat_outline(shape: BaseGeometry, crs: str) -> BaseGeometry:
    """Polygons in ``crs`` as GeoJSON holds them: lon/lat, edges densified, split at the antimeridian.

    A grid across 180° (UTM zone 1 or 60 near Fiji) taken to lon/lat has edges from +179.9 to -179.9,
    which GeoJSON reads as running the long way round the world: an invalid polygon with a whole-world
    bbox. RFC 7946 (3.1.9) asks for it cut at ±180 into a MultiPolygon; ``antimeridian`` does that (other
    shapes come back as they were). The result is snapped to ``OUTLINE_PRECISION``, as the JSON writes it,
    and made valid there: edges that ran along 180° come back from the grid's CRS a hair to either side, so
    the cut leaves slivers beside its parts, overlapping them: they are merged into them. Exterior rings
    counter-clockwise, holes clockwise (RFC 7946 3.1.6; shapely's intersections give them clockwise).
    """
    lonlat = reproject_geometry(_polygonal(shape), crs, WGS84)
    split = shapely.geometry.shape(antimeridian.fix_shape(lonlat, fix_winding=True))
    merged = shapely.union_all(shapely.get_parts(split))  # the slivers overlap their neighbours
    return shapely.orient_polygons(shapely.set_precision(merged, OUTLINE_PRECISION))


def _polygonal(shape: BaseGeometry) -> BaseGeometry:
    """The polygons of ``shape`` (an intersection touching an AOI part along an edge adds a line or point)."""
    if shape.geom_type in ("Polygon", "MultiPolygon"):
        return shape
    polygons = [
        polygon
        for part in shapely.get_parts(shape)
        for polygon in shapely.get_parts(part)
        if polygon.geom_type == "Polygon" and not polygon.is_empty
    ]
    return shapely.MultiPolygon(polygons)


OUTLINE_PRECISION = 1e-7
"""Degrees of the lon/lat outlines a run writes (about 1 cm): the 7 decimals of their JSON."""


def lonlat_bbox(geometry: BaseGeometry) -> tuple[float, float, float, float]:
    """A lon/lat outline's bbox: across the antimeridian (west above east) where that one is narrower.

    The parts' longitudes taken round the circle: the bbox leaves out the widest gap between them. Where
    that gap is the one across ±180 (most outlines) it is the plain bounds; for parts on both sides of
    180° (an outline cut there, or islands either side of it) it runs east from the end of the gap to its
    start (RFC 7946 5.2). ``antimeridian.bbox`` takes the largest west and smallest east of the parts:
    right for two parts cut at 180°, wrong for a third (an island west of them) or for parts not touching it.
    """
    west, south, east, north = (float(v) for v in geometry.bounds)
    spans = sorted((float(p.bounds[0]), float(p.bounds[2])) for p in shapely.get_parts(geometry))
    merged = [list(spans[0])]
    for start, end in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    wrap = merged[0][0] + 360.0 - merged[-1][1]
    widest, i = max(((merged[k + 1][0] - merged[k][1], k) for k in range(len(merged) - 1)), default=(0.0, -1))
    if widest <= wrap:
        return west, south, east, north
    return merged[i + 1][0], south, merged[i][1], north


def reproject_geometry(geometry: BaseGeometry, src: str, dst: str) -> BaseGeometry:
    """``geometry`` transformed from ``src`` to ``dst`` (edges densified first, so curves follow)."""
    if pyproj.CRS.from_user_input(src) == pyproj.CRS.from_user_input(dst):
        return geometry
    transformer = Transformer.from_crs(src, dst, always_xy=True)
    step = _densify_step(geometry)
    dense = shapely.segmentize(geometry, step) if step > 0 else geometry
    return shapely.transform(dense, transformer.transform, interleaved=False)


def _densify_step(geometry: BaseGeometry) -> float:
    west, south, east, north = geometry.bounds
    extent = max(east - west, north - south)
    return extent / 32.0


def grid_for_aoi(
    aoi: BaseGeometry,
    resolution: float,
    crs: str,
    block_size: int = 512,
    anchor: tuple[float, float] = (0.0, 0.0),
    step: float | None = None,
) -> OutputGrid:
    """A north-up grid of ``resolution`` in ``crs`` covering a lon/lat AOI, snapped to the pixel lattice.

    The north-west corner snaps outwards to ``anchor + k * step`` (default: multiples of the resolution),
    the south-east corner to whole pixels from there. Snapping to resolution multiples aligns the grid with
    Sentinel-2's own tiles (whose origins are multiples of 60 m), so a 10 m band is read without
    resampling; ``anchor`` at a tile's origin with ``step`` a multiple of the tile's internal block size
    makes every block of the grid read whole COG tiles (training does that).
    """
    check_block_size(block_size)
    stride = resolution if step is None else step
    shape = reproject_geometry(aoi, WGS84, crs)
    if shape.is_empty or not shape.is_valid or not all(math.isfinite(v) for v in shape.bounds):
        # the whole world into a UTM zone folded into a 334 km sliver: "narrower than a pixel" (CLI review)
        raise InputError(
            f"the AOI does not project into {crs}: it reaches too far beyond the area that CRS is made "
            "for (a UTM zone spans 6 degrees of longitude); give a smaller AOI, or an output CRS that holds "
            "it (--crs)"
        )
    west, south, east, north = shape.bounds
    x0, y0 = anchor
    left = x0 + math.floor((west - x0) / stride) * stride
    top = y0 - math.floor((y0 - north) / stride) * stride
    width = max(1, math.ceil((east - left) / resolution))
    height = max(1, math.ceil((top - south) / resolution))
    transform = Affine(resolution, 0.0, left, 0.0, -resolution, top)
    return OutputGrid(crs, transform, width, height, block_size, shape)


def check_block_size(block_size: int) -> None:
    """Raise InputError unless the block size is a positive multiple of 16 (a GeoTIFF tile size)."""
    if block_size < 16 or block_size % 16:
        raise InputError(f"block size must be a multiple of 16 and at least 16, got {block_size}")


MASK_CELL = 64
"""Pixels a side of the cells ``_inside`` settles whole (inside or outside) before testing pixel by pixel."""


def _inside(
    aoi: BaseGeometry, transform: Affine, row: int, col: int, height: int, width: int
) -> npt.NDArray[np.bool_]:
    """Whether each pixel centre of the window ``(row, col, height, width)`` of ``transform`` is in ``aoi``.

    A window wholly inside (or outside) the AOI is settled by one test; one the boundary crosses is split
    into cells of ``MASK_CELL`` pixels, and only the cells the boundary crosses are tested pixel by pixel:
    the same answer as testing every pixel centre, at a fraction of the cost along an AOI's edge.
    """
    x0, y0 = transform @ (col, row)
    x1, y1 = transform @ (col + width, row + height)
    box = shapely.geometry.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    if aoi.contains(box):
        return np.ones((height, width), dtype=bool)
    if not aoi.intersects(box):
        return np.zeros((height, width), dtype=bool)
    if height > MASK_CELL or width > MASK_CELL:
        out = np.empty((height, width), dtype=bool)
        for r in range(0, height, MASK_CELL):
            for c in range(0, width, MASK_CELL):
                h, w = min(MASK_CELL, height - r), min(MASK_CELL, width - c)
                out[r : r + h, c : c + w] = _inside(aoi, transform, row + r, col + c, h, w)
        return out
    cols, rows = np.meshgrid(np.arange(col, col + width) + 0.5, np.arange(row, row + height) + 0.5)
    xs = transform.c + cols * transform.a + rows * transform.b
    ys = transform.f + cols * transform.d + rows * transform.e
    return np.asarray(shapely.contains_xy(aoi, xs, ys), dtype=bool)
