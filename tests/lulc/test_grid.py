"""AOI validation, areas, UTM zones and the output grid's blocks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely
import shapely.geometry

from lulc.aoi import AoiTooComplexError, aoi_area_m2, check_vertex_limit, parse_aoi
from lulc.errors import InputError, LimitError
from lulc.grid import OutputGrid, grid_for_aoi, lonlat_bbox, normalize_crs, utm_crs


def square(west: float, south: float, size: float) -> dict[str, Any]:
    ring = [
        [west, south],
        [west + size, south],
        [west + size, south + size],
        [west, south + size],
        [west, south],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def test_geometry_feature_and_collection_are_accepted() -> None:
    polygon = square(140.0, 36.0, 0.01)
    feature = {"type": "Feature", "properties": {}, "geometry": polygon}
    collection = {"type": "FeatureCollection", "features": [feature]}
    assert parse_aoi(polygon).equals(parse_aoi(feature))
    assert parse_aoi(collection).equals(parse_aoi(polygon))


def test_heights_and_features_without_a_geometry_are_dropped_as_a_files_are() -> None:
    """AOI review: a request refused a GIS export's heights and null features that --aoi FILE took."""
    polygon = square(140.0, 36.0, 0.01)
    raised = {"type": "Polygon", "coordinates": [[[*p, 12.5] for p in polygon["coordinates"][0]]]}
    unlocated = {"type": "Feature", "properties": {"note": "no place"}, "geometry": None}
    collection = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": raised}, unlocated],
    }
    for aoi in (raised, collection):
        shape = parse_aoi(aoi)
        assert not shape.has_z
        assert shape.equals(parse_aoi(polygon))


@pytest.mark.parametrize(
    ("aoi", "message"),
    [
        ("not a dict", "GeoJSON object"),
        ({"type": "Polygon"}, "not valid GeoJSON"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}, "ring of 2 positions"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "not closed"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0, 5, 1], [1, 0, 5, 1], [1, 1, 5, 1], [0, 0, 5, 1]]]},
            "got 4",
        ),
        ({"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": None}]}, "all are null"),
        ({"type": "Feature", "properties": {}, "geometry": None}, "not a GeoJSON geometry"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, "0"], [1, 1], [0, 0]]]}, "finite numbers"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, float("nan")], [1, 1], [0, 0]]]}, "finite numbers"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [True, 0], [1, 1], [0, 0]]]}, "finite numbers"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [10**400, 0], [1, 1], [0, 0]]]}, "finite numbers"),
        ({"type": "Point", "coordinates": [0, 0]}, "Polygon or MultiPolygon"),
        ({"type": "FeatureCollection", "features": []}, "no features"),
        ({"coordinates": []}, "not a GeoJSON geometry"),
        (square(500000.0, 4000000.0, 10.0), "longitude/latitude"),
        # metres 2 km apart: told they are not degrees, not that they cross the antimeridian
        (square(410000.0, 4000000.0, 2000.0), "not longitude/latitude"),
    ],
)
def test_malformed_aois_are_input_errors(aoi: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_aoi(aoi)


def test_an_aoi_crossing_the_antimeridian_is_refused_not_measured_the_long_way() -> None:
    across = {
        "type": "Polygon",
        "coordinates": [[[179.5, 0], [-179.5, 0], [-179.5, 1], [179.5, 1], [179.5, 0]]],
    }
    with pytest.raises(InputError, match="antimeridian"):
        parse_aoi(across)
    # control: the same area split at 180° (RFC 7946) is accepted and measured as about 1° x 1°
    split = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[179.5, 0], [180, 0], [180, 1], [179.5, 1], [179.5, 0]]],
            [[[-180, 0], [-179.5, 0], [-179.5, 1], [-180, 1], [-180, 0]]],
        ],
    }
    assert aoi_area_m2(parse_aoi(split)) / 1e6 == pytest.approx(111.3 * 110.6, rel=0.01)


def test_the_world_box_runs_along_the_antimeridian_not_across_it() -> None:
    """Edges from exactly -180 to 180 span the world's width; measured in pieces, not as the complement."""
    world = {
        "type": "Polygon",
        "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]],
    }
    assert aoi_area_m2(parse_aoi(world)) / 1e12 == pytest.approx(510.0656, rel=1e-4)  # WGS84's surface
    band = {"type": "Polygon", "coordinates": [[[-180, -85], [180, -85], [180, 85], [-180, 85], [-180, -85]]]}
    assert parse_aoi(band).bounds == (-180.0, -85.0, 180.0, 85.0)
    # sin 85° of the surface on a sphere; one ring measured whole gave the complement, 1.96 million km²
    assert aoi_area_m2(parse_aoi(band)) / 1e12 == pytest.approx(510.0656 * 0.99619, rel=2e-3)


def test_the_vertex_limit_counts_every_ring_before_any_parsing() -> None:
    aoi = square(140.0, 36.0, 0.01)  # 5 positions
    collection = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": aoi}] * 3}
    assert check_vertex_limit(collection, 15) == 15
    with pytest.raises(AoiTooComplexError, match="more than 14 vertices"):
        check_vertex_limit(collection, 14)
    assert isinstance(AoiTooComplexError("x"), LimitError)
    assert check_vertex_limit("not even GeoJSON", 1) == 0  # malformed input is parse_aoi's to refuse


def test_a_self_intersecting_polygon_says_where() -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    with pytest.raises(InputError, match=r"Self-intersection\[0\.5 0\.5\]"):
        parse_aoi(bowtie)


def test_geodesic_area_of_a_small_square() -> None:
    # 0.01 degree at 36 N: 1109.3 m north-south (meridian degree 110.93 km) by 1113.2 m * cos(36) = 900.6 m
    # east-west: about 100 ha.
    expected = 1109.3 * 1113.2 * np.cos(np.radians(36.005))
    assert aoi_area_m2(square(140.0, 36.0, 0.01)) == pytest.approx(expected, rel=0.01)
    assert aoi_area_m2(square(140.0, 36.0, 0.02)) == pytest.approx(4 * expected, rel=0.01)


@pytest.mark.parametrize(
    ("lon", "lat", "code"),
    [
        (140.2, 36.0, "EPSG:32654"),
        (-3.7, 40.4, "EPSG:32630"),
        (151.2, -33.9, "EPSG:32756"),
        (179.99, 0.1, "EPSG:32660"),
    ],
)
def test_utm_zone_of_the_centroid(lon: float, lat: float, code: str) -> None:
    assert utm_crs(parse_aoi(square(lon - 0.005, lat - 0.005, 0.01))) == code


def test_unknown_crs_is_an_input_error() -> None:
    assert normalize_crs("epsg:32654") == "EPSG:32654"
    with pytest.raises(InputError, match="unknown CRS"):
        normalize_crs("EPSG:999999")


def test_grid_is_snapped_covers_the_aoi_and_cuts_into_blocks() -> None:
    aoi = parse_aoi(square(140.0, 36.0, 0.05))
    grid = grid_for_aoi(aoi, 10.0, "EPSG:32654", block_size=256)
    left, bottom, right, top = grid.bounds
    assert left % 10 == 0
    assert top % 10 == 0
    assert grid.aoi is not None
    gl, gb, gr, gt = grid.aoi.bounds
    assert left <= gl
    assert right >= gr
    assert bottom <= gb
    assert top >= gt
    assert right - gr < 10
    blocks = list(grid.blocks())
    assert len(blocks) == grid.n_blocks
    assert [b.index for b in blocks] == list(range(len(blocks)))
    assert sum(b.width * b.height for b in blocks) == grid.width * grid.height
    assert max(b.width for b in blocks) == 256
    # the AOI mask of a block: inside pixels counted over all blocks ~ AOI area / pixel area
    inside = sum(int(grid.aoi_mask(b).sum()) for b in blocks)
    assert inside * 100.0 == pytest.approx(grid.aoi.area, rel=0.01)


def test_block_size_must_suit_tiles() -> None:
    with pytest.raises(InputError, match="block size"):
        grid_for_aoi(parse_aoi(square(140.0, 36.0, 0.01)), 10.0, "EPSG:32654", block_size=100)


def test_a_grid_at_the_antimeridian_has_a_pixel_area_and_the_utm_zone_of_its_place() -> None:
    """Grids touching 180 degrees: a mean pixel area, and the UTM zone of the place.

    Review: a grid snapped a few metres past 180 degrees had an invalid lon/lat outline (GEOSException after
    the whole classification), and an AOI split at 180 degrees got the UTM zone of longitude 0.
    """
    import shapely.geometry

    from lulc.aoi import aoi_area_m2
    from lulc.grid import WGS84, grid_for_aoi, reproject_geometry, utm_crs

    touching = shapely.geometry.box(179.99, -17.0, 180.0, -16.99)
    grid = grid_for_aoi(touching, 10.0, utm_crs(touching), 512)
    assert grid.crs == "EPSG:32760"
    assert 99.0 < grid.pixel_area_m2() < 100.5  # 10 m UTM pixels near the central meridian's edge
    split = shapely.geometry.MultiPolygon(
        [shapely.geometry.box(179.5, -17.2, 180.0, -16.8), shapely.geometry.box(-180.0, -17.2, -179.6, -16.8)]
    )
    assert utm_crs(split) in ("EPSG:32760", "EPSG:32701")
    assert utm_crs(shapely.geometry.box(12.0, 48.0, 13.0, 49.0)) == "EPSG:32633"  # control
    # away from 180 degrees the mean pixel area is the outline's area over the pixels, as it was
    for box in [(140.0, 36.0, 140.3, 36.2), (-10.0, 60.0, 10.0, 70.0)]:
        aoi = shapely.geometry.box(*box)
        grid = grid_for_aoi(aoi, 10.0, utm_crs(aoi), 512)
        outline = reproject_geometry(shapely.geometry.box(*grid.bounds), grid.crs, WGS84)
        assert grid.pixel_area_m2() == pytest.approx(aoi_area_m2(outline) / grid.n_pixels, rel=2e-5)


def test_an_unknown_crs_is_one_error_without_gdals_own_line(capfd: pytest.CaptureFixture[str]) -> None:
    """CLI review: `--crs EPSG:99999` printed GDAL's "ERROR 1: PROJ: ..." line before lulc's error."""
    with pytest.raises(InputError, match="unknown CRS 'EPSG:99999'"):
        normalize_crs("EPSG:99999")
    assert "ERROR 1" not in capfd.readouterr().err


def test_an_aoi_that_does_not_project_into_the_utm_zone_is_refused_as_such() -> None:
    """CLI review: the whole world folded into a 334 km sliver of UTM zone 1: "narrower than a pixel"."""
    import shapely.geometry

    world = shapely.geometry.box(-180, -90, 180, 90)
    with pytest.raises(InputError, match=r"does not project into EPSG:32601: .* \(--crs\)"):
        grid_for_aoi(world, 10.0, utm_crs(world))
    japan = shapely.geometry.box(138, 35, 141, 37)  # control: a large AOI inside its zone's reach
    grid = grid_for_aoi(japan, 100.0, utm_crs(japan))
    assert 2_500 < grid.width < 2_800


def test_a_bbox_across_the_antimeridian_holds_every_part_of_its_outline() -> None:
    """RFC 7946 5.2: west above east, from the end of the widest gap between the parts to its start.

    ``antimeridian.bbox`` (the largest west, the smallest east) would leave out the island at 170°; islands
    either side of 180° not touching it had the whole world's width (review).
    """
    split = [shapely.geometry.box(179.5, 0, 180, 1), shapely.geometry.box(-180, 0, -179.5, 1)]
    island = shapely.geometry.box(170, 0.5, 171, 2)
    assert lonlat_bbox(shapely.MultiPolygon(split)) == (179.5, 0.0, -179.5, 1.0)
    assert lonlat_bbox(shapely.MultiPolygon([*split, island])) == (170.0, 0.0, -179.5, 2.0)
    either_side = shapely.MultiPolygon([island, shapely.geometry.box(-171, 0, -170, 1)])
    assert lonlat_bbox(either_side) == (170.0, 0.0, -170.0, 2.0)
    # outlines whose widest gap is the one across ±180, or that go all the way round: plain bounds
    assert lonlat_bbox(island) == (170.0, 0.5, 171.0, 2.0)
    apart = shapely.MultiPolygon([shapely.geometry.box(-10, 0, -9, 1), shapely.geometry.box(9, 0, 10, 1)])
    assert lonlat_bbox(apart) == (-10.0, 0.0, 10.0, 1.0)
    band = shapely.geometry.box(-180, 0, 180, 1)
    assert lonlat_bbox(band) == (-180.0, 0.0, 180.0, 1.0)


def test_a_footprint_is_the_polygons_where_an_aoi_part_only_touches_the_imagery() -> None:
    """The polygons alone, where an AOI part outside the items shares their edge.

    ``AOI ∩ coverage`` then holds a line too: a GeometryCollection the antimeridian split refused (review),
    and an item geometry of mixed types before it.
    """
    import rasterio

    aoi = shapely.MultiPolygon(
        [
            shapely.geometry.box(501000, 5001000, 505000, 5005000),
            shapely.geometry.box(510000, 5002000, 512000, 5004000),
        ]
    )
    covered = shapely.geometry.box(500000, 5000000, 510000, 5010000)
    assert aoi.intersection(covered).geom_type == "GeometryCollection"
    grid = OutputGrid("EPSG:32633", rasterio.Affine(10, 0, 500000, 0, -10, 5010000), 1300, 1000, 512, aoi)
    footprint = grid.footprint_wgs84(covered)
    assert footprint.geom_type == "Polygon"
    assert footprint.is_valid
    unmapped = grid.unmapped_wgs84(covered)
    assert unmapped is not None
    assert unmapped.geom_type == "Polygon"  # the part past the imagery
