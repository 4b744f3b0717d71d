"""The one feature function: reflectance bands plus spectral indices, float32, for training and inference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lulc.errors import ContractError

SENTINEL2_BANDS: tuple[str, ...] = (
    "coastal",
    "blue",
    "green",
    "red",
    "rededge1",
    "rededge2",
    "rededge3",
    "nir",
    "nir08",
    "nir09",
    "swir16",
    "swir22",
)
"""Canonical Sentinel-2 band names (Earth Search v1 asset keys), in wavelength order."""


@dataclass(frozen=True)
class NormalizedDifference:
    """A normalised-difference index ``(a - b) / (a + b)``, 0 where ``a + b == 0``."""

    a: str
    b: str
    description: str


INDICES: dict[str, NormalizedDifference] = {
    "ndvi": NormalizedDifference("nir", "red", "vegetation (Rouse et al. 1974)"),
    "ndwi": NormalizedDifference("green", "nir", "open water (McFeeters 1996)"),
    "ndbi": NormalizedDifference("swir16", "nir", "built-up (Zha et al. 2003)"),
    "mndwi": NormalizedDifference("green", "swir16", "open water, modified (Xu 2006)"),
}
"""The spectral indices a contract may ask for, by name."""


def check_features(bands: Sequence[str], indices: Sequence[str]) -> None:
    """Raise ContractError unless every index is known and computable from ``bands``."""
    if len(set(bands)) != len(bands):
        raise ContractError(f"duplicate band names in {list(bands)}")
    for name in indices:
        index = INDICES.get(name)
        if index is None:
            raise ContractError(f"unknown spectral index {name!r}; known: {sorted(INDICES)}")
        missing = [b for b in (index.a, index.b) if b not in bands]
        if missing:
            raise ContractError(f"index {name!r} needs band(s) {missing}, not among {list(bands)}")


def available_indices(bands: Sequence[str]) -> list[str]:
    """The known indices computable from ``bands``, in registry order."""
    return [n for n, i in INDICES.items() if i.a in bands and i.b in bands]


def feature_names(bands: Sequence[str], indices: Sequence[str]) -> list[str]:
    """Names of the feature columns ``compute_features`` returns: bands first, then indices."""
    return [*bands, *indices]


def composite_feature_names(
    bands: Sequence[str], indices: Sequence[str], composites: Sequence[str] | None = None
) -> list[str]:
    """Feature names of ``compute_composite_features``: ``feature_names`` of each named composite, prefixed.

    ``composites`` None (one composite): plain ``feature_names``; else ``spring_red, ..., summer_red, ...``.
    """
    names = feature_names(bands, indices)
    if not composites:
        return names
    return [f"{composite}_{name}" for composite in composites for name in names]


def compute_features(
    reflectance: npt.NDArray[np.floating], bands: Sequence[str], indices: Sequence[str]
) -> npt.NDArray[np.float32]:
    """Features for every pixel of ``reflectance``.

    Args:
        reflectance: surface reflectance, shape ``(n_bands, *spatial)``, bands in ``bands`` order.
        bands: band names of the first axis.
        indices: index names from ``INDICES``.

    Returns:
        float32 array of shape ``(*spatial, n_bands + n_indices)``.
    """
    check_features(bands, indices)
    if reflectance.shape[0] != len(bands):
        raise ContractError(
            f"reflectance has {reflectance.shape[0]} bands but the contract names {len(bands)}"
        )
    refl = np.asarray(reflectance, dtype=np.float32)
    spatial = refl.shape[1:]
    out = np.empty((len(bands) + len(indices), *spatial), dtype=np.float32)
    out[: len(bands)] = refl
    position = {b: i for i, b in enumerate(bands)}
    for k, name in enumerate(indices):
        index = INDICES[name]
        a = refl[position[index.a]]
        b = refl[position[index.b]]
        num = a - b
        den = a + b
        target = out[len(bands) + k]
        target[...] = 0.0
        np.divide(num, den, out=target, where=den != 0)
    return np.moveaxis(out, 0, -1)


def compute_composite_features(
    reflectance: npt.NDArray[np.floating], bands: Sequence[str], indices: Sequence[str], n_composites: int = 1
) -> npt.NDArray[np.float32]:
    """Features of ``n_composites`` composites stacked band-wise (a seasonal model's seasons, in order).

    ``reflectance`` has ``n_composites * len(bands)`` rows: the bands of the first composite, then of the
    second, ...; the features are each composite's ``compute_features`` side by side. With one composite
    this is ``compute_features`` itself.
    """
    if n_composites == 1:
        return compute_features(reflectance, bands, indices)
    n = len(bands)
    if reflectance.shape[0] != n_composites * n:
        raise ContractError(
            f"reflectance has {reflectance.shape[0]} bands but {n_composites} composites of {n} bands need "
            f"{n_composites * n}"
        )
    parts = [compute_features(reflectance[k * n : (k + 1) * n], bands, indices) for k in range(n_composites)]
    return np.concatenate(parts, axis=-1)
