"""Training samples from polygons: pixel centres on the imagery grid, seeded subsets, groups, CSV points."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from rasterio.transform import Affine
from shapely.geometry import MultiPoint, Point, box

from lulc.grid import OutputGrid
from training.errors import PointsError
from training.points import read_points

UTM = "EPSG:32654"
GRID = OutputGrid(UTM, Affine(10.0, 0.0, 400_000.0, 0.0, -10.0, 4_000_000.0), 200, 100, 64)
"""A 2 km x 1 km grid of 10 m pixels."""
TO_LONLAT = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)


def lonlat(geometry: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geometry, lambda xy: np.column_stack(TO_LONLAT.transform(xy[:, 0], xy[:, 1])))


def write_layer(path: Path, rows: list[tuple[shapely.Geometry, str]]) -> Path:
    frame = gpd.GeoDataFrame(
        {"label": [label for _, label in rows]},
        geometry=[lonlat(g) for g, _ in rows],
        crs="EPSG:4326",
    )
    frame.to_file(path)
    return path


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    return write_layer(
        tmp_path / "mixed.gpkg",
        [
            (Point(400_105.0, 3_999_505.0), "Water"),
            (MultiPoint([(400_305.0, 3_999_505.0), (400_315.0, 3_999_495.0)]), "Forest"),
            # 100 m x 50 m inside: 10 x 5 pixel centres
            (box(400_500.0, 3_999_600.0, 400_600.0, 3_999_650.0), "Forest"),
            # crosses the grid's east edge (x = 402,000): only 3 of its 6 columns are on the grid
            (box(401_970.0, 3_999_900.0, 402_030.0, 3_999_940.0), "Water"),
            # entirely east of the grid
            (box(403_000.0, 3_999_500.0, 403_100.0, 3_999_600.0), "Water"),
        ],
    )


def test_polygons_become_the_pixel_centres_inside_them_on_the_grid(mixed: Path) -> None:
    points = read_points(mixed, "label")
    assert len(points.polygons) == 3
    assert len(points) == 3  # the point and the two parts of the MultiPoint
    expanded, notes = points.with_polygon_pixels(GRID, None, seed=0)
    assert expanded.crs.to_epsg() == 32654
    groups = expanded.groups
    assert groups is not None
    counts = {int(g): int(np.count_nonzero(groups == g)) for g in np.unique(groups)}
    assert counts == {0: 1, 1: 2, 2: 50, 3: 12}
    inner = groups == 2
    assert np.all((expanded.x[inner] - 400_505.0) % 10.0 == 0)
    assert expanded.x[inner].min() == 400_505.0
    assert expanded.x[inner].max() == 400_595.0
    assert expanded.y[inner].max() == 3_999_645.0
    edge = groups == 3
    assert expanded.x[edge].max() == 401_995.0  # the last column centre on the grid
    assert notes == ["polygon 4 (Water) lies outside the imagery"]
    forest = points.classes.by_value(int(expanded.labels[inner][0])).name
    assert forest == "Forest"


def test_a_polygon_smaller_than_a_pixel_is_sampled_by_the_pixel_under_it(tmp_path: Path) -> None:
    """Review: a 6 x 6 m plot (no pixel centre inside) was dropped, and its class with it, as if outside."""
    import geopandas as gpd

    plot = box(400_516.0, 3_999_606.0, 400_519.0, 3_999_609.0)  # in the pixel centred at 400515, 3999605
    path = tmp_path / "plot.gpkg"
    gpd.GeoDataFrame({"label": ["Water"]}, geometry=[plot], crs="EPSG:32654").to_file(path)
    expanded, notes = read_points(path, "label").with_polygon_pixels(GRID, None, seed=0)
    assert len(expanded) == 1
    assert (float(expanded.x[0]), float(expanded.y[0])) == (400_515.0, 3_999_605.0)
    assert notes == [
        "polygon 0 (Water) holds no pixel centre (smaller than a pixel, or thin): the pixel under a point "
        "inside it samples it"
    ]


def test_max_pixels_per_polygon_is_a_seeded_subset(mixed: Path) -> None:
    points = read_points(mixed, "label")
    first, _ = points.with_polygon_pixels(GRID, 7, seed=3)
    again, _ = points.with_polygon_pixels(GRID, 7, seed=3)
    other, _ = points.with_polygon_pixels(GRID, 7, seed=4)
    assert first.groups is not None
    assert int(np.count_nonzero(first.groups == 2)) == 7
    assert np.array_equal(first.x, again.x)
    assert not np.array_equal(first.x, other.x)
    full, _ = points.with_polygon_pixels(GRID, None, seed=3)
    assert set(zip(first.x.tolist(), first.y.tolist(), strict=True)) <= set(
        zip(full.x.tolist(), full.y.tolist(), strict=True)
    )


def test_a_polygons_subset_does_not_depend_on_the_other_polygons(tmp_path: Path) -> None:
    """Adding a polygon before another leaves the other's seeded subset as it was.

    One generator shared by all polygons did not: every later polygon drew from where the new one left it.
    """
    big = (box(400_500.0, 3_999_300.0, 400_700.0, 3_999_500.0), "Forest")  # 20 x 20 pixel centres
    small = (box(400_100.0, 3_999_100.0, 400_200.0, 3_999_200.0), "Water")  # 10 x 10
    alone = read_points(write_layer(tmp_path / "one.gpkg", [big]), "label")
    both = read_points(write_layer(tmp_path / "two.gpkg", [small, big]), "label")
    a, _ = alone.with_polygon_pixels(GRID, 15, seed=0)
    b, _ = both.with_polygon_pixels(GRID, 15, seed=0)
    forest = b.labels == a.labels[0]
    assert int(np.count_nonzero(forest)) == 15
    assert np.array_equal(a.x, b.x[forest])
    assert np.array_equal(a.y, b.y[forest])


def test_a_points_only_file_has_no_groups_and_nothing_to_expand(tmp_path: Path) -> None:
    path = write_layer(
        tmp_path / "p.gpkg", [(Point(400_105.0, 3_999_505.0), "A"), (Point(400_205.0, 3_999_505.0), "B")]
    )
    points = read_points(path, "label")
    assert points.groups is None
    assert points.with_polygon_pixels(GRID, None, 0) == (points, [])


def test_lines_are_refused_with_the_kinds_found(tmp_path: Path) -> None:
    path = write_layer(
        tmp_path / "l.gpkg",
        [
            (Point(400_105.0, 3_999_505.0), "A"),
            (shapely.LineString([(400_000, 3_999_000), (400_100, 3_999_100)]), "B"),
        ],
    )
    with pytest.raises(PointsError, match=r"found \['LineString', 'Point'\]"):
        read_points(path, "label")


def test_csv_points_with_lon_lat_columns(tmp_path: Path) -> None:
    lon, lat = TO_LONLAT.transform([400_105.0, 400_205.0], [3_999_505.0, 3_999_505.0])
    path = tmp_path / "p.csv"
    path.write_text(f"Longitude,Latitude,label\n{lon[0]},{lat[0]},A\n{lon[1]},{lat[1]},B\n")
    points = read_points(path, "label")
    assert points.crs.to_epsg() == 4326
    x, y = points.xy_in(GRID.rasterio_crs)
    assert np.allclose(x, [400_105.0, 400_205.0])
    assert np.allclose(y, [3_999_505.0, 3_999_505.0])


def test_csv_without_coordinates_or_crs_says_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("a,b,label\n1,2,A\n")
    with pytest.raises(PointsError, match="no coordinate columns"):
        read_points(path, "label")
    path.write_text("x,y,label\n400105,3999505,A\n")
    with pytest.raises(PointsError, match="declares no CRS"):
        read_points(path, "label")
    assert read_points(path, "label", points_crs=UTM).crs.to_epsg() == 32654


def test_a_recipe_samples_30_pixels_of_a_polygon_unless_it_says_0(tmp_path: Path) -> None:
    """As sits' n_sam_pol: a large field's pixels would swamp the samples; 0 (or null) keeps them all."""
    from training.config import TrainingConfig

    assert TrainingConfig().max_pixels_per_polygon == 30
    big = (box(400_500.0, 3_999_300.0, 400_700.0, 3_999_500.0), "Forest")  # 20 x 20 pixel centres
    small = (box(400_100.0, 3_999_100.0, 400_150.0, 3_999_150.0), "Water")  # 5 x 5
    points = read_points(write_layer(tmp_path / "two.gpkg", [small, big]), "label")
    capped, notes = points.with_polygon_pixels(GRID, TrainingConfig().max_pixels_per_polygon, seed=0)
    assert np.bincount(capped.labels).max() == 30
    assert len(capped) == 30 + 25
    assert any("1 polygon(s) hold more than 30 pixels" in note for note in notes)
    for every in (0, None):
        whole, quiet = points.with_polygon_pixels(GRID, every, seed=0)
        assert len(whole) == 400 + 25
        assert not any("hold more than" in note for note in quiet)


def test_a_wholly_valid_polygons_subset_is_the_one_drawn_before(tmp_path: Path) -> None:
    """The subsets drawn before validity counted (pinned): drawing valid pixels first leaves them so."""
    big = (box(400_500.0, 3_999_300.0, 400_700.0, 3_999_500.0), "Forest")
    small = (box(400_100.0, 3_999_100.0, 400_200.0, 3_999_200.0), "Water")
    points = read_points(write_layer(tmp_path / "two.gpkg", [small, big]), "label")
    drawn, _ = points.with_polygon_pixels(GRID, 5, seed=0)
    assert list(zip(drawn.x.tolist(), drawn.y.tolist(), strict=True)) == [
        (400115.0, 3999175.0),
        (400125.0, 3999175.0),
        (400165.0, 3999175.0),
        (400165.0, 3999155.0),
        (400155.0, 3999135.0),
        (400675.0, 3999485.0),
        (400515.0, 3999475.0),
        (400535.0, 3999415.0),
        (400565.0, 3999415.0),
        (400565.0, 3999315.0),
    ]


def test_a_mixed_file_counts_its_features_points_and_pixels(mixed: Path) -> None:
    """The report counts the features read, then the points and polygon pixels they gave.

    "65 points read" of a file of 5 features was the review's complaint; a file of points still says
    "N points read".
    """
    from training.report import _read

    points = read_points(mixed, "label")
    every, _ = points.with_polygon_pixels(GRID, None, seed=0)
    capped, _ = points.with_polygon_pixels(GRID, 7, seed=0)
    assert (every.features, len(every) - every.pixels, every.pixels) == (5, 3, 50 + 12)
    assert (capped.features, len(capped) - capped.pixels, capped.pixels) == (5, 3, 7 + 7)
    names = [points.classes.by_value(int(v)).name for v in every.file_labels]
    assert names == ["Water", "Forest", "Forest", "Water", "Water"]  # the polygon outside the grid too
    samples = {"features": 5, "points": 3, "pixels": 62}
    assert _read(samples) == "5 features read (3 points and 62 pixels of polygons sampled)"
    assert _read({"features": 121, "points": 121, "pixels": 0}) == "121 points read"
    assert _read({"points": 121}) == "121 points read"  # metrics written before features were counted


def test_pixel_centres_are_found_strip_by_strip_with_the_same_result() -> None:
    """A long diagonal polygon's bounding box was tested at once (33 bytes a box pixel: 0.8 GB for 25 M)."""
    from shapely.geometry import LineString, Polygon

    from training.points import _pixel_centres_inside

    river = LineString([(400_050.0, 3_999_050.0), (401_950.0, 3_999_950.0)]).buffer(35.0)
    ring = Polygon([(400_100, 3_999_100), (400_900, 3_999_100), (400_900, 3_999_900), (400_100, 3_999_900)])
    holed = ring.difference(Polygon([(400_300, 3_999_300), (400_700, 3_999_300), (400_500, 3_999_700)]))
    for shape in (river, holed):
        whole = _pixel_centres_inside(shape, GRID, strip_pixels=10**9)
        assert whole[0].size > 100
        for strip in (1, 7, 200, 1000):
            parts = _pixel_centres_inside(shape, GRID, strip_pixels=strip)
            assert np.array_equal(parts[0], whole[0])
            assert np.array_equal(parts[1], whole[1])
