"""What a classification is asked to do: the AOI, time window, CRS, block size and optional outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_MMU_HA = 1_000_000.0
"""Largest minimum mapping unit the HTTP API and the handler accept (10,000 km²; their AOIs are smaller)."""


@dataclass(frozen=True)
class ClassifyRequest:
    """What to classify.

    Attributes:
        aoi: GeoJSON geometry / Feature / FeatureCollection in EPSG:4326; None = the whole image
            (``--image`` sources only).
        datetime: RFC 3339 instant or interval (STAC sources).
        crs: output CRS; default the AOI's UTM zone (or the image's CRS for an image source).
        block_size: block edge in pixels.
        confidence: also write the top-class probability COG.
        probabilities: also write the per-class probability COG (one band per class, percent).
        aoa: write the area-of-applicability COG when the model carries one (on by default).
        sets: write the conformal class-set COG when the model is calibrated (on by default).
        mmu_ha: also clean the map to this minimum mapping unit (hectares) into ``<out>/clean``; None: no.
        mmu_connectivity: 4 or 8, the patch connectivity of that cleaning.
    """

    aoi: dict[str, Any] | None
    datetime: str | None
    crs: str | None = None
    block_size: int = 512
    confidence: bool = True
    probabilities: bool = False
    aoa: bool = True
    sets: bool = True
    mmu_ha: float | None = None
    mmu_connectivity: int = 4
