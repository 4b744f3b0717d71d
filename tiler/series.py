"""Class areas over time: ``POST /statistics/series`` counts a polygon's classes in every map of a series.

A series is the STAC collection ``lulc classify --every`` writes: one ``item`` link per period (with its
``lulc:period`` label), each item a run whose ``classes`` asset is the period's map. Every location met (the
items, the maps) passes the allow-list as a ``url`` parameter would.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from pydantic import BaseModel, Field

from lulc.classes import ClassTable
from lulc.errors import LimitError, LulcError
from tiler.allowlist import AllowList
from tiler.areas import AreaStatistics, class_areas, item_aoa_layer, mapped_area
from tiler.colormaps import MAX_JSON_BYTES, classes_from_item, is_remote, read_required_json
from tiler.errors import BadParameterError, NotFoundError


class PeriodAreas(BaseModel):
    """The class areas inside the polygon in one period's map."""

    period: str = Field(description="The period's label, e.g. `2021` or `2021-07`.")
    item: str = Field(description="The period's STAC item.")
    datetime: str | None = Field(description="The acquisition time(s) of the period's imagery.")
    statistics: AreaStatistics


class SeriesStatistics(BaseModel):
    """The answer of ``POST /statistics/series``: the class-area series of a polygon."""

    url: str
    every: str | None = Field(description="The series' step (`year`, `month`).")
    periods: list[PeriodAreas]


def _join(base: str, href: str) -> str:
    """``href`` from a document at ``base``: beside it; from a remote one by URL rules (``/x``: same host)."""
    if is_remote(href):
        return href
    if is_remote(base):
        return urljoin(base, href)
    if href.startswith("/"):
        return href
    return str(Path(base).parent / href)


def _when(item: Mapping[str, Any]) -> str | None:
    props = item.get("properties")
    if not isinstance(props, dict):
        return None
    start, end = props.get("start_datetime"), props.get("end_datetime")
    value = f"{start}/{end}" if start and end else props.get("datetime")
    return str(value) if value else None


def series_areas(
    location: str,
    geometry: Mapping[str, Any],
    allow: AllowList,
    max_pixels: int,
    max_bytes: int = MAX_JSON_BYTES,
    *,
    max_periods: int,
    gdal_overrides: Mapping[str, str | int] | None = None,
) -> SeriesStatistics:
    """Class areas inside ``geometry`` in every period's map of the collection at ``location``.

    A nodata pixel counts only inside the series' mapped area (``mapped_area``: the union of its items'
    geometries and ``lulc:unmapped`` parts): a gap in the map, not ground outside the runs' AOI.

    Raises:
        NotFoundError: no collection there, or an item or map it links is missing.
        BadParameterError: a collection without item links, an item without a class map.
        NotAllowedError: an item or map outside the allow-list.
        LimitError: more than ``max_periods`` item links (413), before any is read.
    """
    collection = read_required_json(location, "STAC collection", max_bytes=max_bytes)
    if collection is None or collection.get("type") != "Collection":
        raise NotFoundError(f"no STAC collection (JSON object of type Collection) at {location}")
    listed = collection.get("links")
    links = [
        link
        for link in (listed if isinstance(listed, list) else [])
        if isinstance(link, dict) and link.get("rel") == "item" and isinstance(link.get("href"), str)
    ]
    if not links:
        raise BadParameterError(f"collection {location} links no items: it is not a series of maps")
    if len(links) > max_periods:
        raise LimitError(
            f"collection {location} links {len(links):,} items, more periods than this server's limit of "
            f"{max_periods:,}; count a shorter series"
        )
    found: list[tuple[str, str, dict[str, Any], str, ClassTable]] = []
    # a remote document's hrefs name no local file, allowed folder or not (HTTP review), as in the service
    links_allow = allow.without_local() if is_remote(location) else allow
    for link in links:
        item_location = links_allow.check(_join(location, str(link["href"])), "series item")
        item = read_required_json(item_location, "series item", max_bytes=max_bytes)
        if item is None:
            raise NotFoundError(f"series item {item_location} is missing or not JSON")
        assets = item.get("assets")
        asset = assets.get("classes") if isinstance(assets, dict) else None
        if not isinstance(asset, dict) or not isinstance(asset.get("href"), str):
            raise BadParameterError(f"series item {item_location} has no classes asset")
        try:
            table = classes_from_item(item, str(asset["href"]).rsplit("/", 1)[-1])
        except LulcError as exc:
            raise BadParameterError(f"series item {item_location}: {exc}") from None
        if table is None:
            raise BadParameterError(f"series item {item_location} has no classification:classes")
        map_location = (allow.without_local() if is_remote(item_location) else allow).gdal_path(
            _join(item_location, str(asset["href"]).removeprefix("./")), "series map"
        )
        label = str(link.get("lulc:period") or link.get("title") or item.get("id"))
        found.append((label, item_location, item, map_location, table))
    mapped = mapped_area([item for _, _, item, _, _ in found])
    periods = [
        PeriodAreas(
            period=label,
            item=item_location,
            datetime=_when(item),
            statistics=class_areas(
                map_location,
                geometry,
                table,
                max_pixels,
                item_aoa_layer(item, item_location, allow.gdal_path),
                mapped=mapped,
                gdal_overrides=gdal_overrides,
            ),
        )
        for label, item_location, item, map_location, table in found
    ]
    summaries = collection.get("summaries")
    every = summaries.get("lulc:every") if isinstance(summaries, dict) else None
    return SeriesStatistics(
        url=location,
        every=str(every[0]) if isinstance(every, list) and every else None,
        periods=periods,
    )
