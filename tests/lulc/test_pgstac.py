"""The same search through a real stac-fastapi-pgstac and through the static demo catalog.

Expected results come from an independent oracle: the demo catalog's item JSON filtered here with
shapely and plain datetime comparisons, not with ``lulc.sources``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely.geometry
import shapely.ops
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from lulc.errors import NoItemsError
from lulc.gdal_env import gdal_env
from lulc.sentinel2 import NormalizedItem
from lulc.sources import (
    ItemSource,
    SearchParams,
    StacApiSource,
    StaticCatalogSource,
    open_source,
    require_items,
)
from tests.support.pgstac import PgstacUnavailableError, find_postgres

COLLECTION = "sentinel-2-l2a"


@dataclasses.dataclass(frozen=True)
class RawItem:
    id: str
    datetime: dt.datetime
    cloud_cover: float
    geometry: BaseGeometry


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def raw_items(demo_world) -> list[RawItem]:
    """Every item of the demo catalog, read as plain JSON."""
    items = []
    for item_id in demo_world.item_ids:
        data = json.loads((demo_world.root / COLLECTION / item_id / f"{item_id}.json").read_text())
        items.append(
            RawItem(
                id=data["id"],
                datetime=parse_time(data["properties"]["datetime"]),
                cloud_cover=float(data["properties"]["eo:cloud_cover"]),
                geometry=shapely.geometry.shape(data["geometry"]),
            )
        )
    return items


def oracle(
    items: list[RawItem],
    *,
    geometry: BaseGeometry | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    max_cloud_cover: float | None = None,
) -> list[str]:
    """Ids of the items matching, in (datetime, id) order."""
    found = [
        i
        for i in items
        if (geometry is None or i.geometry.intersects(geometry))
        and (start is None or i.datetime >= start)
        and (end is None or i.datetime <= end)
        and (max_cloud_cover is None or i.cloud_cover <= max_cloud_cover)
    ]
    return [i.id for i in sorted(found, key=lambda i: (i.datetime, i.id))]


@pytest.fixture(scope="module")
def api(pgstac_api: str) -> StacApiSource:
    source = open_source(pgstac_api, [COLLECTION])
    assert isinstance(source, StacApiSource)
    return source


@pytest.fixture(scope="module")
def static(http_catalog: Path) -> StaticCatalogSource:
    return StaticCatalogSource(http_catalog, [COLLECTION])


@pytest.fixture(scope="module")
def local(demo_world) -> StaticCatalogSource:
    return StaticCatalogSource(demo_world.catalog, [COLLECTION])


def ids(items: list[NormalizedItem]) -> list[str]:
    return [i.id for i in items]


def assert_same_items(api_items: list[NormalizedItem], static_items: list[NormalizedItem]) -> None:
    """Same ids in the same order, and the same normalisation (bands, scale, offset, SCL, CRS, ...)."""
    assert ids(api_items) == ids(static_items)
    for a, s in zip(api_items, static_items, strict=True):
        assert a.bands == s.bands, a.id
        assert {k: (b.scale, b.offset) for k, b in a.bands.items()} == {
            k: (b.scale, b.offset) for k, b in s.bands.items()
        }
        assert a.scl == s.scl, a.id
        assert (a.epsg, a.mask_classes, a.cloud_cover, a.datetime, a.provider, a.processing_baseline) == (
            s.epsg,
            s.mask_classes,
            s.cloud_cover,
            s.datetime,
            s.provider,
            s.processing_baseline,
        )
        assert shapely.geometry.shape(a.geometry).equals_exact(shapely.geometry.shape(s.geometry), 1e-9)


def test_everything_is_found_in_both_in_datetime_order(
    api: StacApiSource, static: StaticCatalogSource, raw_items: list[RawItem]
) -> None:
    api_items, static_items = api.search(), static.search()
    assert ids(static_items) == oracle(raw_items)
    assert_same_items(api_items, static_items)
    # Different processing baselines give different offsets: the comparison above is not trivial.
    assert len({item.band("red").offset for item in static_items}) == 2


def test_bbox_datetime_and_cloud_cover_search_agree_and_the_cloud_limit_excludes_a_cloudy_item(
    api: StacApiSource, static: StaticCatalogSource, local: StaticCatalogSource, raw_items: list[RawItem]
) -> None:
    by_time = sorted(raw_items, key=lambda i: i.datetime)
    start = by_time[1].datetime.replace(hour=0, minute=0, second=0)  # drops the earliest item
    end = by_time[-1].datetime
    window = f"{start.isoformat().replace('+00:00', 'Z')}/{end.isoformat().replace('+00:00', 'Z')}"
    in_window = [i for i in raw_items if start <= i.datetime <= end]
    covers = sorted({i.cloud_cover for i in in_window})
    assert len(covers) >= 2, "the demo world has dates with different cloud cover"
    limit = (covers[-1] + covers[-2]) / 2
    cloudiest = max(in_window, key=lambda i: i.cloud_cover).id
    centre = shapely.geometry.shape(raw_items[0].geometry).centroid
    bbox = (centre.x - 0.005, centre.y - 0.005, centre.x + 0.005, centre.y + 0.005)
    params: dict[str, Any] = {"bbox": bbox, "datetime": window, "max_cloud_cover": limit}

    api_items, static_items = api.search(**params), static.search(**params)

    expected = oracle(
        raw_items, geometry=shapely.geometry.box(*bbox), start=start, end=end, max_cloud_cover=limit
    )
    assert ids(static_items) == expected
    assert_same_items(api_items, static_items)
    assert ids(local.search(**params)) == expected
    assert expected, "something is left"
    assert by_time[0].id not in expected
    assert cloudiest not in expected
    # Without the cloud limit the cloudy item is there, through both sources.
    unlimited = {"bbox": bbox, "datetime": window}
    assert cloudiest in ids(api.search(**unlimited))
    assert cloudiest in ids(static.search(**unlimited))


def test_intersects_search_agrees_and_follows_each_items_footprint(
    api: StacApiSource, static: StaticCatalogSource, raw_items: list[RawItem]
) -> None:
    # A spot covered by some items' footprints but not by the smallest (its swath edge is cut).
    smallest = min(raw_items, key=lambda i: i.geometry.area)
    others = shapely.ops.unary_union([i.geometry for i in raw_items if i.id != smallest.id])
    uncovered = others.difference(smallest.geometry)
    assert not uncovered.is_empty, "one demo item has a cut footprint"
    spot = uncovered.representative_point()
    square = shapely.geometry.box(spot.x - 1e-5, spot.y - 1e-5, spot.x + 1e-5, spot.y + 1e-5)
    assert square.within(uncovered)

    for geometry in (square, others):
        api_items = api.search(intersects=shapely.geometry.mapping(geometry))
        static_items = static.search(intersects=shapely.geometry.mapping(geometry))
        assert ids(static_items) == oracle(raw_items, geometry=geometry)
        assert_same_items(api_items, static_items)
    assert smallest.id not in ids(api.search(intersects=shapely.geometry.mapping(square)))
    assert smallest.id in ids(api.search(intersects=shapely.geometry.mapping(others)))


def test_limit_keeps_the_first_items_in_both(api: StacApiSource, static: StaticCatalogSource) -> None:
    assert_same_items(api.search(limit=2), static.search(limit=2))
    assert len(api.search(limit=2)) == 2


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"bbox": (0.0, 0.0, 0.001, 0.001)}, id="bbox-elsewhere"),
        pytest.param({"datetime": "2000-01-01T00:00:00Z/2000-12-31T23:59:59Z"}, id="before-every-date"),
        pytest.param({"max_cloud_cover": 0.0}, id="no-item-below-zero-cloud"),
    ],
)
def test_an_empty_search_is_empty_in_both_and_require_items_names_the_source(
    api: StacApiSource, static: StaticCatalogSource, params: dict[str, Any]
) -> None:
    sources: list[ItemSource] = [api, static]
    for source in sources:
        found = source.search(**params)
        assert found == []
        with pytest.raises(NoItemsError) as error:
            require_items(found, source, SearchParams(**params))
        assert source.describe() in str(error.value)


def test_band_hrefs_from_the_api_read_over_loopback_http(
    api: StacApiSource, demo_world, cog_server: Any
) -> None:
    item = api.search(limit=1)[0]
    red = item.band("red")
    assert red.href.startswith(cog_server.base_url)
    window = Window(0, 0, 256, 256)
    with rasterio.open(demo_world.cogs_dir / item.id / "red.tif") as ds:
        expected = ds.read(1, window=window)
    with gdal_env(), rasterio.open(red.href) as ds:
        np.testing.assert_array_equal(ds.read(1, window=window), expected)


def fake_postgres(root: Path, major: int, postgis: bool) -> None:
    bindir = root / f"usr/lib/postgresql/{major}/bin"
    bindir.mkdir(parents=True)
    for tool in ("initdb", "pg_ctl", "postgres"):
        (bindir / tool).touch()
    if postgis:
        extension = root / f"usr/share/postgresql/{major}/extension"
        extension.mkdir(parents=True)
        (extension / "postgis.control").touch()


def test_postgres_is_found_where_debian_puts_it_and_a_missing_part_is_named(tmp_path: Path) -> None:
    with pytest.raises(PgstacUnavailableError, match=r"PostgreSQL server binaries not found.*'postgresql'"):
        find_postgres(tmp_path)
    fake_postgres(tmp_path, 13, postgis=True)
    fake_postgres(tmp_path, 16, postgis=False)
    assert find_postgres(tmp_path).major == 13, "the newest version WITH PostGIS"
    fake_postgres(tmp_path, 17, postgis=True)
    assert find_postgres(tmp_path).bindir == tmp_path / "usr/lib/postgresql/17/bin"


def test_postgres_without_postgis_is_named_as_the_reason(tmp_path: Path) -> None:
    fake_postgres(tmp_path, 15, postgis=False)
    with pytest.raises(PgstacUnavailableError, match=r"PostGIS is not installed for PostgreSQL 15.*postgis"):
        find_postgres(tmp_path)
