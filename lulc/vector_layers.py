"""The one layer of a vector file that holds geometries: AOI files, labelled points, validation samples.

A file of several is refused, naming them, rather than read by OGR's default (its first): labels saved from
geopandas into a ``lulc design`` sample under another layer name (``d.to_file("mine.gpkg")`` adds a layer
``mine``) would otherwise leave the unlabelled layer to be read. Tables without geometries (the
``layer_styles`` QGIS saves into a GeoPackage) are no candidates.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lulc.errors import InputError


def geometry_layer(
    path: Path, what: str, alone: str, error: Callable[[str], Exception] = InputError
) -> str | None:
    """The name of ``path``'s one layer with geometries (None where OGR lists none: read the default).

    Raises ``error`` (one line naming ``what`` and the file) when the file cannot be listed or holds several
    such layers, with the advice to save ``alone`` (``the AOI's``, ``the labelled points' layer``) alone.
    """
    import pyogrio

    try:
        layers = [str(name) for name, kind in pyogrio.list_layers(path) if kind is not None]
    except Exception as exc:  # pyogrio raises several types for unreadable data
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"{what} {path} is not a vector file GDAL reads: {first}") from exc
    if len(layers) > 1:
        raise error(f"{what} {path} holds {len(layers)} layers ({', '.join(layers)}): save {alone} alone")
    return layers[0] if layers else None
