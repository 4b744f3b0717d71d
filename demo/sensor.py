"""The demo world's Sentinel-2 L2A acquisitions: spectra, phenology, clouds, shadows, SCL and DN encoding.

Soils grow lighter from west to east (``SOIL_GRADIENT``), as across a real tile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from demo.landscape import (
    BARE,
    BUILT_UP,
    CROPLAND,
    FOREST,
    GRASSLAND,
    WATER,
    Landscape,
    smooth_field,
)

_T = TypeVar("_T", bound=np.generic)

BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "swir16", "swir22")
"""Reflectance bands simulated, in wavelength order (Earth Search v1 asset keys)."""
BANDS_10M: tuple[str, ...] = ("blue", "green", "red", "nir")
BANDS_20M: tuple[str, ...] = ("swir16", "swir22")


def band_resolution(band: str) -> int:
    """Pixel size in metres of a band's COG: 10 for blue, green, red, nir; 20 otherwise."""
    return 10 if band in BANDS_10M else 20


# Sentinel-2 scene classification (SCL) values written by the simulation.
SCL_NODATA, SCL_SHADOW, SCL_VEGETATION, SCL_NOT_VEGETATED, SCL_WATER = 0, 3, 4, 5, 6
SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS = 8, 9, 10

WEDGE_EDGE = 1.2
"""Where the swath edge of a ``nodata_wedge`` acquisition cuts the grid: ``col + row / 2 = 1.2`` widths."""

BOA_ADD_OFFSET = 1000
"""DN added to every reflectance from processing baseline 04.00 on (``BOA_ADD_OFFSET = -1000``)."""


@dataclass(frozen=True)
class Acquisition:
    """One simulated overpass over the demo tile."""

    platform: str
    when: datetime
    baseline: str
    cloud_target: float
    """Fraction of the grid covered by clouds (before the every-pixel-clear-once guarantee)."""
    cirrus: bool
    nodata_wedge: bool
    """Whether the swath edge cuts off a corner of the grid (no data there)."""

    def data_footprint(self) -> tuple[tuple[float, float], ...]:
        """Corners of the area with data, as fractions (column, row) of the grid, clockwise from top left."""
        if not self.nodata_wedge:
            return ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
        # The swath edge is the line col + row / 2 = WEDGE_EDGE (in grid widths).
        return ((0.0, 0.0), (1.0, 0.0), (1.0, (WEDGE_EDGE - 1.0) * 2.0), (WEDGE_EDGE - 0.5, 1.0), (0.0, 1.0))

    @property
    def offset_dn(self) -> int:
        """DN offset of this item's reflectance bands (1000 from baseline 04.00 on)."""
        return BOA_ADD_OFFSET if self.baseline >= "04.00" else 0

    @property
    def doy(self) -> int:
        """Day of year, for phenology."""
        return self.when.timetuple().tm_yday


ACQUISITIONS: tuple[Acquisition, ...] = (
    Acquisition("sentinel-2b", datetime(2021, 7, 18, 1, 37, 42, tzinfo=UTC), "03.01", 0.30, False, False),
    Acquisition("sentinel-2a", datetime(2021, 9, 6, 1, 37, 51, tzinfo=UTC), "03.01", 0.01, False, False),
    Acquisition("sentinel-2b", datetime(2023, 6, 12, 1, 37, 29, tzinfo=UTC), "05.09", 0.45, True, True),
    Acquisition("sentinel-2a", datetime(2024, 8, 10, 1, 37, 36, tzinfo=UTC), "05.10", 0.15, True, False),
)
"""The demo's overpasses: two before and two after the 04.00 processing baseline."""

SEASONAL_YEAR = 2025
SEASONAL_ACQUISITIONS: tuple[Acquisition, ...] = (
    Acquisition("sentinel-2a", datetime(2025, 4, 12, 1, 37, 40, tzinfo=UTC), "05.11", 0.0, False, False),
    Acquisition("sentinel-2b", datetime(2025, 7, 16, 1, 37, 33, tzinfo=UTC), "05.11", 0.0, False, False),
    Acquisition("sentinel-2a", datetime(2025, 10, 20, 1, 37, 45, tzinfo=UTC), "05.11", 0.0, False, False),
)
"""Spring, summer and autumn of one year (``generate(..., seasons=True)``), for seasonal models. Each is
cloud-free: with one overpass per season, a cloud would leave its pixels without that season."""
SEASONS: tuple[tuple[str, str, str], ...] = (
    ("spring", "03-20", "05-10"),
    ("summer", "06-20", "08-20"),
    ("autumn", "09-25", "11-15"),
)
"""The seasonal recipe's windows (name, first and last month-day): one seasonal overpass in each."""

CHANGE_YEAR = 2026
CHANGE_ACQUISITIONS: tuple[Acquisition, ...] = (
    Acquisition("sentinel-2b", datetime(2026, 7, 14, 1, 37, 38, tzinfo=UTC), "05.12", 0.20, False, False),
    Acquisition("sentinel-2a", datetime(2026, 8, 23, 1, 37, 44, tzinfo=UTC), "05.12", 0.05, False, False),
)
"""Two summer overpasses of the later year (``generate(..., change=True)``), after the land has changed."""

SPRING_SOWN_UNTIL = 130
"""Day of year until which fields are bare soil (ploughed and sown, nothing grown yet)."""
HARVESTED_FROM = 265
"""Day of year from which fields are harvested (stubble on soil)."""
LEAF_OFF = (100, 305)
"""Deciduous forest is leafless before the first and after the second day of year."""
SOIL_GRADIENT = 0.3
"""Soils grow lighter from west to east: the soil spectrum is scaled by ``1 + SOIL_GRADIENT * (east - 0.5)``,
0.85 at the west edge to 1.15 at the east edge. A regional gradient like those across any Sentinel-2 tile
(parent material, moisture): a model trained on one half meets soils on the other it never saw, which is what
the area of applicability must flag (``tests/demo/test_trust.py``)."""

# Surface reflectance spectra (blue, green, red, nir, swir16, swir22).
_SPECTRA: dict[str, tuple[float, ...]] = {
    "water": (0.055, 0.065, 0.045, 0.025, 0.012, 0.008),
    "forest": (0.025, 0.050, 0.028, 0.310, 0.155, 0.070),
    "crop": (0.035, 0.080, 0.040, 0.420, 0.210, 0.100),
    "grass": (0.040, 0.075, 0.055, 0.300, 0.235, 0.130),
    "soil": (0.085, 0.115, 0.150, 0.220, 0.300, 0.255),
    "urban": (0.095, 0.105, 0.115, 0.175, 0.215, 0.190),
    "asphalt": (0.070, 0.078, 0.085, 0.110, 0.140, 0.125),
    "cloud": (0.480, 0.470, 0.460, 0.500, 0.360, 0.240),
}


def _spectrum(name: str) -> npt.NDArray[np.float64]:
    return np.asarray(_SPECTRA[name], dtype=np.float64)


@dataclass(frozen=True)
class Scene:
    """One acquisition rendered: DNs per band (10 m or 20 m grid) and the 20 m SCL."""

    acquisition: Acquisition
    dn: dict[str, npt.NDArray[np.uint16]]
    scl: npt.NDArray[np.uint8]
    reflectance: dict[str, npt.NDArray[np.float32]]
    """Top-of-canopy surface reflectance before clouds (for tests and checks), same grids as ``dn``."""

    def cloud_cover(self) -> float:
        """``eo:cloud_cover``: percentage of valid pixels that are cloud (medium, high) or cirrus."""
        return self._share_of_valid(np.isin(self.scl, (SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS)))

    def percentage(self, value: int) -> float:
        """Percentage of valid SCL pixels with this class."""
        return self._share_of_valid(self.scl == value)

    def _share_of_valid(self, selected: npt.NDArray[np.bool_]) -> float:
        valid = self.scl != SCL_NODATA
        return round(100.0 * float((selected & valid).sum()) / max(int(valid.sum()), 1), 4)

    def nodata_percentage(self) -> float:
        """Percentage of the grid with no data."""
        return round(100.0 * float((self.scl == SCL_NODATA).mean()), 4)


@dataclass(frozen=True)
class _Traits:
    """Per-patch properties, drawn once and kept through every acquisition."""

    cls: npt.NDArray[np.uint8]
    """Class value of each patch."""
    brightness: npt.NDArray[np.float64]
    """Multiplicative offset per patch and band: within-class variation between stands and fields."""
    green: npt.NDArray[np.float64]
    """Vegetation fraction of grassland, built-up (gardens) and bare (weeds) patches."""
    turbidity: npt.NDArray[np.float64]
    peak: npt.NDArray[np.float64]
    """Crop calendar of cropland patches: day of peak greenness, season half-width, peak height."""
    length: npt.NDArray[np.float64]
    height: npt.NDArray[np.float64]
    east: npt.NDArray[np.float64]
    """Column of each patch's centre, from the grid's west edge (0) to its east edge (1)."""


def _traits(rng: np.random.Generator, landscape: Landscape) -> _Traits:
    n = landscape.n_patches
    cls = np.zeros(n, dtype=np.uint8)
    cls[landscape.patches.ravel()] = landscape.classes.ravel()
    brightness = rng.normal(1.0, 0.07, (n, len(BANDS))) * rng.normal(1.0, 0.06, (n, 1))
    green = np.select(
        [cls == GRASSLAND, cls == BUILT_UP, cls == BARE],
        [rng.uniform(0.55, 0.95, n), rng.uniform(0.0, 0.35, n), rng.uniform(0.0, 0.12, n)],
        0.0,
    )
    return _Traits(
        cls=cls,
        brightness=brightness,
        green=green,
        turbidity=rng.uniform(0.0, 1.0, n),
        peak=rng.choice([165.0, 200.0, 225.0], size=n, p=[0.3, 0.45, 0.25]) + rng.normal(0, 10, n),
        length=rng.uniform(60, 95, n),
        height=rng.uniform(0.75, 1.0, n),
        east=_east(landscape),
    )


def _east(landscape: Landscape) -> npt.NDArray[np.float64]:
    """Each patch's mean column over the grid's width, 0 (west edge) to 1 (east edge); no random draw."""
    ids = landscape.patches.ravel()
    width = landscape.patches.shape[1]
    cols = np.broadcast_to(np.arange(width, dtype=np.float64), landscape.patches.shape).ravel()
    sums = np.bincount(ids, weights=cols, minlength=landscape.n_patches)
    counts = np.bincount(ids, minlength=landscape.n_patches)
    return np.asarray(sums / np.maximum(counts, 1) / max(width - 1, 1), dtype=np.float64)


def _patch_spectra(traits: _Traits, doy: float) -> npt.NDArray[np.float64]:
    """Reflectance ``(patch, band)`` of every patch on this day of year (phenology included)."""
    season = float(np.exp(-(((doy - 200.0) / 90.0) ** 2)))
    crop_green = 0.3 + 0.7 * traits.height * np.exp(-(((doy - traits.peak) / traits.length) ** 2))
    soil = _spectrum("soil")[None] * (1.0 + SOIL_GRADIENT * (traits.east[:, None] - 0.5))
    # Outside the growing season (never on the summer dates of ACQUISITIONS): fields bare in spring and
    # harvested in autumn, deciduous forest leafless in winter. Grassland stays green from spring to autumn.
    if doy < SPRING_SOWN_UNTIL:
        crop_green = np.full(traits.cls.shape, 0.08)
    elif doy >= HARVESTED_FROM:
        crop_green = np.full(traits.cls.shape, 0.12)
    leafy = LEAF_OFF[0] <= doy <= LEAF_OFF[1]
    forest_green = np.full(traits.cls.shape, (0.85 + 0.15 * season) if leafy else 0.45)
    murky = _spectrum("water")[None] + traits.turbidity[:, None] * np.array([[0.01, 0.02, 0.025, 0.01, 0, 0]])
    by_class = {
        WATER: murky,
        FOREST: _mix(forest_green, "forest", soil),
        CROPLAND: _mix(crop_green, "crop", soil),
        GRASSLAND: _mix(traits.green * (0.85 + 0.15 * season), "grass", soil),
        BUILT_UP: _mix(traits.green, "grass", "urban"),
        BARE: _mix(traits.green, "grass", soil),
    }
    spectra = np.zeros(traits.brightness.shape)
    for value, rows in by_class.items():
        mask = traits.cls == value
        spectra[mask] = rows[mask]
    return spectra * traits.brightness


@dataclass(frozen=True)
class Surface:
    """What every acquisition of one landscape shares: each patch's traits and the fine texture."""

    traits: _Traits
    texture: list[npt.NDArray[np.float64]]


def draw_surface(rng: np.random.Generator, landscape: Landscape) -> Surface:
    """Draw the patches' traits and the texture (the first draws of the sensor from ``rng``)."""
    traits = _traits(rng, landscape)
    texture = [smooth_field(rng, landscape.patches.shape, sigma=2.0) for _ in BANDS]
    return Surface(traits, texture)


def extend_surface(rng: np.random.Generator, surface: Surface, later: Landscape) -> Surface:
    """The surface of a developed landscape: old patches keep their traits, new patches draw theirs."""
    drawn = _traits(rng, later)
    n = surface.traits.cls.size

    def keep(old: npt.NDArray[_T], new: npt.NDArray[_T]) -> npt.NDArray[_T]:
        return np.concatenate([old, new[n:]])

    old = surface.traits
    traits = _Traits(
        cls=keep(old.cls, drawn.cls),
        brightness=keep(old.brightness, drawn.brightness),
        green=keep(old.green, drawn.green),
        turbidity=keep(old.turbidity, drawn.turbidity),
        peak=keep(old.peak, drawn.peak),
        length=keep(old.length, drawn.length),
        height=keep(old.height, drawn.height),
        east=keep(old.east, drawn.east),
    )
    return Surface(traits, surface.texture)


def surface_reflectance(
    rng: np.random.Generator,
    landscape: Landscape,
    acquisitions: tuple[Acquisition, ...],
    surface: Surface | None = None,
) -> list[npt.NDArray[np.float32]]:
    """Cloud-free surface reflectance ``(band, row, col)`` at 10 m for every acquisition."""
    patches = landscape.patches
    road = landscape.road
    surface = surface or draw_surface(rng, landscape)
    traits, texture = surface.traits, surface.texture
    out = []
    for acq in acquisitions:
        refl = _patch_spectra(traits, float(acq.doy))[patches].transpose(2, 0, 1).copy()
        refl[:, road] = _spectrum("asphalt")[:, None] * traits.brightness[patches[road]].T
        for b in range(len(BANDS)):
            refl[b] *= 1.0 + 0.04 * texture[b]
            refl[b] += rng.normal(0.0, 0.004 + 0.03 * refl[b].mean(), refl[b].shape)
            # The sensor's point spread mixes neighbouring pixels a little.
            refl[b] = ndimage.gaussian_filter(refl[b], sigma=0.6)
        out.append(np.clip(refl, 0.001, 1.0).astype(np.float32))
    return out


def _mix(
    green: npt.NDArray[np.float64], veg: str, other: str | npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Linear mixture per patch: ``green`` of the ``veg`` spectrum, the rest of ``other``.

    ``other`` is a spectrum's name or one spectrum per patch ``(patch, band)``.
    """
    rest = _spectrum(other)[None] if isinstance(other, str) else other
    return green[:, None] * _spectrum(veg)[None] + (1 - green[:, None]) * rest


def _block_mean(array: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """2 x 2 block average: the 10 m field seen by a 20 m detector."""
    rows, cols = array.shape[-2] // 2, array.shape[-1] // 2
    return array.reshape(*array.shape[:-2], rows, 2, cols, 2).mean(axis=(-3, -1)).astype(np.float32)


def _upsample(array: npt.NDArray[_T]) -> npt.NDArray[_T]:
    """Each 20 m pixel as 2 x 2 pixels of 10 m."""
    return np.repeat(np.repeat(array, 2, axis=-2), 2, axis=-1)


@dataclass(frozen=True)
class _Sky:
    """Clouds, cirrus, shadows and no data of one acquisition on the 20 m grid."""

    alpha: npt.NDArray[np.float64]
    """Cloud opacity (0 clear .. 1 opaque)."""
    cirrus: npt.NDArray[np.float64]
    shadow: npt.NDArray[np.bool_]
    nodata: npt.NDArray[np.bool_]

    @property
    def invalid(self) -> npt.NDArray[np.bool_]:
        return np.asarray((self.alpha > 0) | (self.cirrus > 0) | self.shadow | self.nodata)

    def cleared(self, where: npt.NDArray[np.bool_]) -> _Sky:
        """This sky with ``where`` made clear (no cloud, cirrus or shadow; data present)."""
        return _Sky(
            alpha=np.where(where, 0.0, self.alpha),
            cirrus=np.where(where, 0.0, self.cirrus),
            shadow=self.shadow & ~where,
            nodata=self.nodata & ~where,
        )


def _sky(rng: np.random.Generator, acq: Acquisition, size20: int) -> _Sky:
    shape = (size20, size20)
    field = smooth_field(rng, shape, sigma=max(size20 / 40, 3.0)) + 0.25 * smooth_field(rng, shape, sigma=2.0)
    threshold = float(np.quantile(field, 1.0 - acq.cloud_target))
    thickness = np.clip((field - threshold) / max(float(field.max()) - threshold, 1e-6), 0.0, 1.0)
    alpha = np.where(field > threshold, np.clip(0.35 + 2.5 * thickness, 0.0, 0.97), 0.0)
    cirrus = np.zeros(shape)
    if acq.cirrus:
        streaks = ndimage.gaussian_filter(
            rng.standard_normal(shape), sigma=(max(size20 / 200, 1.0), size20 / 20)
        )
        streaks /= max(float(streaks.std()), 1e-12)
        cirrus = np.where((streaks > 1.6) & (alpha == 0), 0.12, 0.0)
    shift = (-max(size20 // 40, 3), -max(size20 // 50, 2))  # sun in the south-east: shadows fall north-west
    cloud = np.asarray(alpha > 0)
    shadow = (
        ndimage.shift(cloud.astype(np.uint8), shift, order=0, mode="constant", cval=0).astype(bool) & ~cloud
    )
    nodata = np.zeros(shape, dtype=bool)
    if acq.nodata_wedge:
        rows, cols = np.mgrid[0:size20, 0:size20]
        nodata = cols + 0.5 + 0.5 * (rows + 0.5) > WEDGE_EDGE * size20
    return _Sky(alpha=alpha, cirrus=cirrus, shadow=shadow & ~nodata, nodata=nodata)


def _skies(rng: np.random.Generator, acquisitions: tuple[Acquisition, ...], size20: int) -> list[_Sky]:
    """Every acquisition's sky, such that every pixel is clear on at least one date."""
    skies = [_sky(rng, acq, size20) for acq in acquisitions]
    clearest = int(np.argmin([acq.cloud_target for acq in acquisitions]))
    never_clear = np.logical_and.reduce([s.invalid for s in skies])
    skies[clearest] = skies[clearest].cleared(never_clear)
    return skies


def _scl(sky: _Sky, refl20: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Scene classification as Sen2Cor would write it (20 m)."""
    green, red, nir = refl20[BANDS.index("green")], refl20[BANDS.index("red")], refl20[BANDS.index("nir")]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    ndwi = (green - nir) / np.maximum(green + nir, 1e-6)
    scl = np.full(sky.alpha.shape, SCL_NOT_VEGETATED, dtype=np.uint8)
    scl[ndvi > 0.4] = SCL_VEGETATION
    scl[ndwi > 0.1] = SCL_WATER
    scl[sky.shadow] = SCL_SHADOW
    scl[sky.cirrus > 0] = SCL_CIRRUS
    scl[sky.alpha > 0] = SCL_CLOUD_MEDIUM
    scl[sky.alpha > 0.7] = SCL_CLOUD_HIGH
    scl[sky.nodata] = SCL_NODATA
    return scl


def _observe(refl: npt.NDArray[np.float32], band: int, sky: _Sky) -> npt.NDArray[np.float64]:
    """Reflectance of one band seen through the sky: clouds brighten, cirrus hazes, shadows darken."""
    cloud = float(_spectrum("cloud")[band])
    out = refl * (1.0 - sky.alpha) + cloud * sky.alpha + sky.cirrus * (0.6 + 0.4 * cloud)
    return np.asarray(np.where(sky.shadow, out * 0.4, out))


def to_dn(
    refl: npt.NDArray[np.float64], offset_dn: int, nodata: npt.NDArray[np.bool_]
) -> npt.NDArray[np.uint16]:
    """Encode reflectance as L2A digital numbers (``DN = refl * 10000 + offset``, 0 = no data)."""
    dn = np.clip(np.rint(refl * 10000.0) + offset_dn, 1, 65535).astype(np.uint16)
    dn[nodata] = 0
    return dn


def render_scenes(
    rng: np.random.Generator,
    landscape: Landscape,
    acquisitions: tuple[Acquisition, ...] = ACQUISITIONS,
    surface: Surface | None = None,
) -> list[Scene]:
    """Render every acquisition of the landscape as DN rasters plus SCL.

    ``surface`` (from ``draw_surface``) lets a second set of acquisitions show the same patches.
    """
    size = landscape.classes.shape[0]
    surfaces = surface_reflectance(rng, landscape, acquisitions, surface)
    skies = _skies(rng, acquisitions, size // 2)
    scenes = []
    for acq, reflectance, sky in zip(acquisitions, surfaces, skies, strict=True):
        refl20 = _block_mean(reflectance)
        sky10 = _Sky(
            alpha=_upsample(sky.alpha),
            cirrus=_upsample(sky.cirrus),
            shadow=_upsample(sky.shadow),
            nodata=_upsample(sky.nodata),
        )
        dn: dict[str, npt.NDArray[np.uint16]] = {}
        truth_refl: dict[str, npt.NDArray[np.float32]] = {}
        for band in BANDS_10M:
            b = BANDS.index(band)
            dn[band] = to_dn(_observe(reflectance[b], b, sky10), acq.offset_dn, sky10.nodata)
            truth_refl[band] = reflectance[b]
        for band in BANDS_20M:
            b = BANDS.index(band)
            dn[band] = to_dn(_observe(refl20[b], b, sky), acq.offset_dn, sky.nodata)
            truth_refl[band] = refl20[b]
        scenes.append(Scene(acquisition=acq, dn=dn, scl=_scl(sky, refl20), reflectance=truth_refl))
    return scenes
