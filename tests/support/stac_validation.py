"""Offline STAC validation: a document against the core schema and every extension it declares.

Item geometries are also checked for what the schemas leave out: RFC 7946's ring winding, validity (no
self-intersection: an outline across the antimeridian must be split there) and a bbox that holds them (west
above east for one across the antimeridian).

Core schemas (item, catalog, collection, STAC 1.1.0) ship with pystac; extension schemas come from
``../shared/stac-schemas/extensions.json`` (schema URL -> schema document). All are registered in one
``referencing.Registry`` so that nothing is fetched over the network: a ``$ref`` to a schema that is not
held fails instead. Where ``../shared`` is absent the helpers skip with the reason.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import shapely.geometry
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from pystac.validation.local_validator import get_local_schema_cache
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from shapely.validation import explain_validity

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / ".." / "shared" / "stac-schemas" / "extensions.json"
CORE_VERSION = "1.1.0"
CORE_URLS = {
    kind: f"https://schemas.stacspec.org/v{CORE_VERSION}/{kind}-spec/json-schema/{kind}.json"
    for kind in ("item", "catalog", "collection")
}


class StacInvalidError(AssertionError):
    """A document breaks the core schema or a declared extension's schema."""


@functools.cache
def _schemas() -> dict[str, dict[str, Any]]:
    path = SCHEMAS.resolve()
    if not path.is_file():
        pytest.skip(
            f"STAC extension schemas not found at {path} (../shared/stac-schemas next to the repository)"
        )
    extensions: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return {**get_local_schema_cache(), **extensions}


@functools.cache
def _registry() -> Registry:
    resources = [
        (url, Resource.from_contents(schema, default_specification=DRAFT7))
        for url, schema in _schemas().items()
    ]
    # Extension schemas name themselves with and without a trailing "#"; register both spellings.
    resources += [(url + "#", resource) for url, resource in resources if not url.endswith("#")]
    return Registry().with_resources(resources)


def _kind(document: Mapping[str, Any]) -> str:
    kind = document.get("type")
    if kind == "Feature":
        return "item"
    if kind in ("Catalog", "Collection"):
        return str(kind).lower()
    raise StacInvalidError(f"not a STAC item, catalog or collection: type {kind!r}")


def stac_errors(document: Mapping[str, Any]) -> list[str]:
    """Every schema violation of ``document`` (core + each declared extension), as readable lines."""
    schemas = _schemas()
    kind = _kind(document)
    version = document.get("stac_version")
    problems: list[str] = []
    if version != CORE_VERSION:
        problems.append(f"stac_version {version!r}: only {CORE_VERSION} core schemas are held")
    urls = [CORE_URLS[kind], *(str(u).rstrip("#") for u in document.get("stac_extensions", []))]
    for url in urls:
        schema = schemas.get(url)
        if schema is None:
            problems.append(f"{url}: schema not held offline (declare a version that is)")
            continue
        validator = validator_for(schema)(schema, registry=_registry())
        for error in validator.iter_errors(dict(document)):
            leaf = best_match([error])  # the deepest reason inside oneOf/anyOf/if-then
            where = "/".join(str(p) for p in leaf.absolute_path) or "(root)"
            problems.append(f"{url}: {where}: {leaf.message[:300]}")
    geometry = document.get("geometry")
    return problems + _winding_errors(geometry) + _outline_errors(geometry, document.get("bbox"))


def _outline_errors(geometry: object, bbox: object) -> list[str]:
    """An item's polygon is valid (OGC simple features) and lies in its bbox (RFC 7946 5.2, 3.1.9)."""
    if not isinstance(geometry, Mapping) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        return []
    outline = shapely.geometry.shape(geometry)
    if not outline.is_valid:
        return [f"geometry: invalid ({explain_validity(outline)})"]
    if not isinstance(bbox, list) or len(bbox) != 4:
        return []
    west, south, east, north = (float(v) for v in bbox)
    slack = 1e-6
    problems = []
    for part in getattr(outline, "geoms", [outline]):
        left, bottom, right, top = part.bounds
        along = (
            west - slack <= left and right <= east + slack
            if west <= east  # else the box runs from west to 180 and on from -180 to east
            else (west - slack <= left or right <= east + slack)
        )
        if not (along and south - slack <= bottom and top <= north + slack):
            problems.append(f"geometry: a part {part.bounds} is outside bbox {bbox}")
    return problems


def _winding_errors(geometry: object) -> list[str]:
    """RFC 7946 section 3.1.6: exterior rings counter-clockwise, holes clockwise (no schema checks it)."""
    if not isinstance(geometry, Mapping) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        return []
    polygons = shapely.geometry.shape(geometry)
    problems = []
    for polygon in getattr(polygons, "geoms", [polygons]):
        if not polygon.exterior.is_ccw:
            problems.append("geometry: an exterior ring runs clockwise (RFC 7946: counter-clockwise)")
        if any(ring.is_ccw for ring in polygon.interiors):
            problems.append("geometry: a hole runs counter-clockwise (RFC 7946: clockwise)")
    return problems


def assert_valid_stac(document: Mapping[str, Any], what: str = "document") -> None:
    """Fail naming every problem unless ``document`` validates against core and its extensions."""
    problems = stac_errors(document)
    if problems:
        raise StacInvalidError(f"{what} is not valid STAC:\n  " + "\n  ".join(problems))


def assert_valid_stac_file(path: Path) -> dict[str, Any]:
    """Validate the JSON file at ``path``; returns its document."""
    document: dict[str, Any] = json.loads(Path(path).read_text())
    assert_valid_stac(document, str(path))
    return document
