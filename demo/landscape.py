"""The demo world's ground truth: a land-cover map with lakes, a river, forests, fields, towns and roads.

``develop`` gives the same land some years later: towns grown into their surroundings (new built-up) and
forest stands felled (cleared to bare soil).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rasterio.features import rasterize
from rasterio.transform import Affine
from scipy import ndimage
from shapely.geometry import LineString

from lulc.classes import ClassTable, LandCoverClass

WATER, FOREST, CROPLAND, GRASSLAND, BUILT_UP, BARE = 1, 2, 3, 4, 5, 6

CLASS_TABLE = ClassTable(
    classes=[
        LandCoverClass(value=WATER, name="Water", color="#1f78b4", description="Lakes, rivers and ponds."),
        LandCoverClass(
            value=FOREST, name="Forest", color="#1b7837", description="Closed broadleaf and mixed forest."
        ),
        LandCoverClass(
            value=CROPLAND,
            name="Cropland",
            color="#f2c84b",
            description="Annual crops in rectangular parcels, each with its own crop calendar.",
        ),
        LandCoverClass(
            value=GRASSLAND,
            name="Grassland",
            color="#a6d96a",
            description="Meadows, pastures and parks: green all season, lower NIR than crops.",
        ),
        LandCoverClass(
            value=BUILT_UP, name="Built-up", color="#e31a1c", description="Towns, villages and roads."
        ),
        LandCoverClass(
            value=BARE,
            name="Bare soil",
            color="#b08c5a",
            description="Fallow parcels, quarries and river sand bars.",
        ),
    ]
)
"""The demo world's class table."""

_IDENTITY = Affine.identity()


@dataclass(frozen=True)
class Landscape:
    """The truth map plus what the sensor simulation needs to vary spectra realistically."""

    classes: npt.NDArray[np.uint8]
    """Class value per 10 m pixel, shape ``(size, size)``."""
    patches: npt.NDArray[np.int32]
    """Patch id per pixel (0..n_patches-1): a connected stand of one class, or one field parcel."""
    n_patches: int
    road: npt.NDArray[np.bool_]
    """Pixels of roads (a kind of built-up with an asphalt spectrum)."""


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> npt.NDArray[np.float64]:
    """Gaussian-filtered white noise scaled to zero mean and unit standard deviation.

    Wide filters are computed on a coarser grid and interpolated back: same look, a fraction of the time.
    """
    factor = max(int(sigma // 3), 1)
    coarse = (-(-shape[0] // factor) + 2, -(-shape[1] // factor) + 2)
    noise = ndimage.gaussian_filter(rng.standard_normal(coarse), sigma=sigma / factor, mode="wrap")
    if factor > 1:
        noise = ndimage.zoom(noise, factor, order=1, mode="nearest", grid_mode=False)
    noise = noise[: shape[0], : shape[1]]
    std = float(noise.std())
    return np.asarray((noise - noise.mean()) / (std if std > 0 else 1.0))


def _parcels(rng: np.random.Generator, size: int) -> npt.NDArray[np.int32]:
    """Rectangular field parcels: strips of random height cut into fields of random width (ids from 1)."""
    ids = np.zeros((size, size), dtype=np.int32)
    next_id = 1
    top = 0
    while top < size:
        height = int(rng.integers(22, 56))
        left = 0
        while left < size:
            width = int(rng.integers(18, 80))
            ids[top : top + height, left : left + width] = next_id
            next_id += 1
            left += width
        top += height
    return ids


def _burn(shape: tuple[int, int], geometry: object) -> npt.NDArray[np.bool_]:
    """Rasterise a shapely geometry given in pixel coordinates (x = column, y = row)."""
    return rasterize([(geometry, 1)], out_shape=shape, transform=_IDENTITY, fill=0, dtype="uint8").astype(
        bool
    )


def _meander(rng: np.random.Generator, size: int) -> LineString:
    """A river crossing the whole grid from the west edge to the east edge, meandering."""
    xs = np.linspace(-10.0, size + 10.0, 80)
    drift = np.cumsum(rng.normal(0.0, size * 0.012, xs.size))
    drift = ndimage.gaussian_filter1d(drift, 3.0)
    phase = rng.uniform(0, 2 * np.pi)
    ys = size * rng.uniform(0.35, 0.65) + drift + size * 0.06 * np.sin(xs / size * 2 * np.pi * 2.3 + phase)
    return LineString(np.column_stack([xs, np.clip(ys, size * 0.1, size * 0.9)]))


def _road(rng: np.random.Generator, a: tuple[float, float], b: tuple[float, float]) -> LineString:
    """A gently curved road from ``a`` to ``b`` (pixel coordinates)."""
    ax, ay = a
    bx, by = b
    length = float(np.hypot(bx - ax, by - ay))
    t = np.linspace(0.0, 1.0, 24)
    bend = rng.normal(0.0, 0.08) * length * np.sin(np.pi * t)
    nx, ny = (-(by - ay) / length, (bx - ax) / length) if length > 0 else (0.0, 0.0)
    xs = ax + (bx - ax) * t + nx * bend
    ys = ay + (by - ay) * t + ny * bend
    return LineString(np.column_stack([xs, ys]))


def _blob(
    rng: np.random.Generator, shape: tuple[int, int], centre: tuple[float, float], radius: float, rough: float
) -> npt.NDArray[np.bool_]:
    """An irregular blob: a disc whose edge is perturbed by smooth noise (computed in a local window)."""
    half = int(np.ceil(radius * (1 + 3 * rough))) + 2
    r0, c0 = int(centre[0]) - half, int(centre[1]) - half
    window = (2 * half + 1, 2 * half + 1)
    rows, cols = np.mgrid[r0 : r0 + window[0], c0 : c0 + window[1]]
    dist = np.hypot(rows - centre[0], cols - centre[1]) / radius
    edge = smooth_field(rng, window, sigma=max(radius / 3.0, 2.0))
    local = dist + rough * edge < 1.0
    out = np.zeros(shape, dtype=bool)
    rs, cs = (
        slice(max(r0, 0), min(r0 + window[0], shape[0])),
        slice(max(c0, 0), min(c0 + window[1], shape[1])),
    )
    out[rs, cs] = local[rs.start - r0 : rs.stop - r0, cs.start - c0 : cs.stop - c0]
    return out


def _towns(rng: np.random.Generator, size: int, count: int) -> list[tuple[float, float, float]]:
    """Town centres (row, col) and radii, kept apart from each other and from the edges."""
    towns: list[tuple[float, float, float]] = []
    attempts = 0
    while len(towns) < count and attempts < 200:
        attempts += 1
        row, col = rng.uniform(0.15, 0.85, 2) * size
        radius = float(rng.uniform(0.035, 0.06) * size + 12)
        if all(np.hypot(row - r, col - c) > (rad + radius) * 1.8 for r, c, rad in towns):
            towns.append((float(row), float(col), radius))
    return towns


def make_landscape(rng: np.random.Generator, size: int) -> Landscape:
    """Synthesize the truth map for a ``size`` x ``size`` grid of 10 m pixels."""
    shape = (size, size)
    area_km2 = (size * 0.01) ** 2
    classes = np.full(shape, GRASSLAND, dtype=np.uint8)

    # Farmland: a smooth region made of whole rectangular parcels.
    parcels = _parcels(rng, size)
    farm_field = smooth_field(rng, shape, sigma=size / 10)
    n_parcels = int(parcels.max())
    farm_share = ndimage.mean(farm_field > 0.05, labels=parcels, index=np.arange(1, n_parcels + 1))
    parcel_is_farm = np.concatenate([[False], np.asarray(farm_share) > 0.5])
    parcel_use = np.concatenate(
        [[0], rng.choice([CROPLAND, GRASSLAND, BARE, FOREST], n_parcels, p=[0.72, 0.17, 0.07, 0.04])]
    )
    farm = parcel_is_farm[parcels]

    # Forest on the hills outside the farmland, grassland elsewhere.
    hills = smooth_field(rng, shape, sigma=size / 14) + 0.35 * smooth_field(rng, shape, sigma=size / 60)
    classes[~farm & (hills > -0.35)] = FOREST
    classes[farm] = parcel_use[parcels][farm].astype(np.uint8)

    # Quarries: a few bare blobs in the hills.
    for _ in range(max(1, round(area_km2 / 40))):
        centre = (float(rng.uniform(0.1, 0.9) * size), float(rng.uniform(0.1, 0.9) * size))
        classes[_blob(rng, shape, centre, float(rng.uniform(6, 14)), 0.25)] = BARE

    # Lakes in the low ground, and a river crossing the grid with sand bars along it.
    for _ in range(max(1, round(area_km2 / 25))):
        centre = (float(rng.uniform(0.1, 0.9) * size), float(rng.uniform(0.1, 0.9) * size))
        classes[_blob(rng, shape, centre, float(rng.uniform(0.025, 0.05) * size + 6), 0.3)] = WATER
    river = _meander(rng, size)
    width = float(rng.uniform(2.2, 3.2))
    banks = _burn(shape, river.buffer(width + 2.0)) & (smooth_field(rng, shape, sigma=4) > 0.8)
    classes[banks] = BARE
    classes[_burn(shape, river.buffer(width))] = WATER

    # Towns with parks, villages, and roads joining them to each other and to the edges.
    towns = _towns(rng, size, max(1, round(area_km2 / 35)))
    for row, col, radius in towns:
        town = _blob(rng, shape, (row, col), radius, 0.3)
        parks = smooth_field(rng, shape, sigma=3) > 1.6
        town &= classes != WATER
        classes[town & ~parks] = BUILT_UP
        classes[town & parks] = GRASSLAND
    for _ in range(max(2, round(area_km2 / 5))):
        centre = (float(rng.uniform(0.05, 0.95) * size), float(rng.uniform(0.05, 0.95) * size))
        classes[_blob(rng, shape, centre, float(rng.uniform(3, 7)), 0.3)] = BUILT_UP
    road = np.zeros(shape, dtype=bool)
    edges = [(0.0, float(rng.uniform(0.2, 0.8) * size)), (float(size), float(rng.uniform(0.2, 0.8) * size))]
    for i, (row, col, _) in enumerate(towns):
        if i < 2:
            road |= _burn(shape, _road(rng, (col, row), (edges[i][1], edges[i][0])).buffer(1.1))
        if i > 0:
            road |= _burn(shape, _road(rng, (col, row), (towns[i - 1][1], towns[i - 1][0])).buffer(1.1))
    if len(towns) == 1:
        row, col, _ = towns[0]
        road |= _burn(shape, _road(rng, (col, row), (edges[1][1], edges[1][0])).buffer(1.1))
    classes[road] = BUILT_UP

    patches = _patch_ids(classes, parcels * farm)
    return Landscape(classes=classes, patches=patches, n_patches=int(patches.max()) + 1, road=road)


def _patch_ids(classes: npt.NDArray[np.uint8], parcels: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """Compact ids of connected one-class stands, split further along parcel boundaries."""
    components = np.zeros(classes.shape, dtype=np.int64)
    offset = 0
    for value in CLASS_TABLE.values:
        labels, count = ndimage.label(classes == value)
        components[labels > 0] = labels[labels > 0] + offset
        offset += count
    key = components * (int(parcels.max()) + 1) + parcels
    _, inverse = np.unique(key.ravel(), return_inverse=True)
    return inverse.reshape(classes.shape).astype(np.int32)


def develop(rng: np.random.Generator, landscape: Landscape) -> Landscape:
    """The landscape some years later: new built-up at the edges of towns and villages, forest clear-cuts.

    Changed pixels form new patches (ids after the old ones); every other pixel keeps its patch, so a
    sensor can show the unchanged land exactly as before.
    """
    size = landscape.classes.shape[0]
    shape = landscape.classes.shape
    area_km2 = (size * 0.01) ** 2
    before = landscape.classes
    classes = before.copy()
    built = (before == BUILT_UP) & ~landscape.road
    edges = np.argwhere(built & ~ndimage.binary_erosion(built))
    for _ in range(max(2, round(area_km2 / 4))):
        row, col = edges[rng.integers(len(edges))]
        grown = _blob(rng, shape, (float(row), float(col)), float(rng.uniform(9, 18)), 0.35)
        classes[grown & np.isin(before, (CROPLAND, GRASSLAND, FOREST, BARE))] = BUILT_UP
    forest = np.argwhere(before == FOREST)
    for _ in range(max(2, round(area_km2 / 5))):
        row, col = forest[rng.integers(len(forest))]
        felled = _blob(rng, shape, (float(row), float(col)), float(rng.uniform(9, 20)), 0.35)
        classes[felled & (before == FOREST) & (classes == FOREST)] = BARE
    patches = landscape.patches.copy()
    next_id = landscape.n_patches
    changed = classes != before
    for value in (BUILT_UP, BARE):
        labels, count = ndimage.label(changed & (classes == value))
        patches[labels > 0] = labels[labels > 0] - 1 + next_id
        next_id += count
    return Landscape(classes=classes, patches=patches, n_patches=next_id, road=landscape.road)
