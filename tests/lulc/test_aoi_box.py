"""``--aoi w,s,e,n``: one parser for lulc train and lulc classify, a box checked as any AOI."""

from __future__ import annotations

from pathlib import Path

import pytest

from lulc.aoi import aoi_argument, bbox_polygon, parse_aoi, parse_bbox
from lulc.errors import InputError
from training.composite import read_aoi


def test_four_numbers_are_a_box_and_anything_else_is_a_file_name() -> None:
    assert parse_bbox("140.1,36.0,140.2,36.1") == [140.1, 36.0, 140.2, 36.1]
    assert parse_bbox("aoi.geojson") is None
    assert parse_bbox("1,2,3") is None
    assert parse_bbox("a,b,c,d") is None
    box = parse_aoi(aoi_argument("140.1,36.0,140.2,36.1"))
    assert box.bounds == pytest.approx((140.1, 36.0, 140.2, 36.1))


@pytest.mark.parametrize("bbox", [[140.2, 36.0, 140.1, 36.1], [140.1, 36.1, 140.2, 36.0], [1, 1, 1, 2]])
def test_a_box_turned_round_is_refused(bbox: list[float]) -> None:
    """Shapely's box(w, s, e, n) took w > e as a box the other way round; a training AOI was that box."""
    with pytest.raises(InputError, match="w < e and s < n"):
        bbox_polygon(bbox)


def test_a_box_across_the_antimeridian_is_its_two_parts() -> None:
    """AOI review: ``--aoi 179.9,-16.1,-179.9,-16.0`` (RFC 7946's bbox across 180) was refused as w > e."""
    shape = parse_aoi(aoi_argument("179.9,-16.1,-179.9,-16.0"))
    assert shape.geom_type == "MultiPolygon"
    east, west = sorted(part.bounds for part in shape.geoms)
    assert east == pytest.approx((-180.0, -16.1, -179.9, -16.0))
    assert west == pytest.approx((179.9, -16.1, 180.0, -16.0))


def test_a_box_outside_lon_lat_is_refused_by_the_aoi_parser() -> None:
    with pytest.raises(InputError):
        parse_aoi(bbox_polygon([500000.0, 4000000.0, 510000.0, 4010000.0]))  # UTM metres, not degrees


@pytest.mark.parametrize("value", ["1,2,3", "140.1,36.0,140.2,36.1,5", "-1.5,2"])
def test_a_box_of_the_wrong_count_is_named_a_box_not_a_missing_file(value: str) -> None:
    """README review: ``--aoi 1,2,3`` said "AOI file 1,2,3 does not exist"."""
    with pytest.raises(InputError, match=r"a box is four numbers w,s,e,n in degrees, got \d"):
        aoi_argument(value)


def test_a_file_named_like_numbers_is_still_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "1,2").write_text('{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}')
    assert aoi_argument("1,2")["type"] in ("Polygon", "FeatureCollection", "MultiPolygon")


def test_lulc_train_names_a_box_of_the_wrong_count_a_box(tmp_path: Path) -> None:
    """``lulc train --aoi 1,2,3`` said "AOI file 1,2,3 does not exist", where classify named the box."""
    with pytest.raises(InputError, match=r"a box is four numbers w,s,e,n in degrees, got 3"):
        read_aoi("1,2,3")


def test_a_recipes_box_string_is_a_box_not_a_file_beside_it(tmp_path: Path) -> None:
    """Diff review: ``aoi: "w,s,e,n"`` in a recipe became a path beside the recipe, then a missing file."""
    from training.config import load_config

    recipe = tmp_path / "training.yaml"
    recipe.write_text('aoi: "140.1,36.0,140.2,36.1"\n')
    assert read_aoi(str(load_config(recipe).aoi)).bounds == pytest.approx((140.1, 36.0, 140.2, 36.1))
    recipe.write_text('aoi: "1,2,3"\n')
    with pytest.raises(InputError, match="a box is four numbers"):
        read_aoi(str(load_config(recipe).aoi))


def test_train_and_classify_take_the_same_aoi_forms(tmp_path: Path) -> None:
    """Notebook review: train took [w, s, e, n] but no geometry, classify a geometry but no [w, s, e, n]."""
    import geopandas as gpd
    import numpy as np
    from shapely.geometry import box

    from lulc.aoi import geojson_aoi
    from lulc.errors import ContractError
    from service.local_run import prepare_run
    from training.api import train
    from training.config import make_config
    from training.errors import PointsError

    bounds = (140.125, 36.0, 140.25, 36.125)  # exact in float32 too
    expected = parse_aoi(bbox_polygon(list(bounds)))
    frame = gpd.GeoDataFrame(geometry=[box(*bounds)], crs="EPSG:4326").to_crs("EPSG:32654")
    numpy_bounds = tuple(np.asarray(bounds, dtype=np.float32))  # as a frame's total_bounds come
    for given in (bounds, list(bounds), numpy_bounds, box(*bounds), frame, "140.125,36,140.25,36.125"):
        assert parse_aoi(geojson_aoi(given)).symmetric_difference(expected).area < 1e-8, given
    recipe = make_config({"stac": "catalog.json", "aoi": geojson_aoi(box(*bounds)), "points": "p.gpkg"})
    assert read_aoi(recipe.aoi).symmetric_difference(expected).area < 1e-12  # a recipe may hold GeoJSON too
    with pytest.raises(InputError, match=r"\"w,s,e,n\" or \[w, s, e, n\] in degrees, got set"):
        geojson_aoi({1, 2})
    # both APIs: past the AOI's own checks (to the missing points, the missing model)
    for aoi in (box(*bounds), frame, bounds):
        with pytest.raises(PointsError, match="does not exist"):
            train(
                stac="catalog.json", aoi=aoi, datetime="2024", points=tmp_path / "no.gpkg", out=tmp_path / "m"
            )
        with pytest.raises(ContractError, match="does not exist"):
            prepare_run(tmp_path / "no-model", out=tmp_path / "r", stac="catalog.json", aoi=aoi, when="2024")
