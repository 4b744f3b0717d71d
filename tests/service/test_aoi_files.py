"""``lulc classify --aoi`` takes the AOI files a GIS hands over, as ``lulc train`` does: one reader."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Polygon

from lulc.aoi import aoi_area_m2, parse_aoi, read_aoi_file
from lulc.errors import InputError
from tests.service.test_commands import classify_image, inputs  # noqa: F401  (the module's fixture)
from training.composite import read_aoi

# the inner half of the test image (EPSG:32633, 500,000 / 5,000,000, 300 x 300 px of 10 m), with heights
INNER = Polygon(
    [
        (500_750, 4_998_250, 12.0),
        (502_250, 4_998_250, 12.0),
        (502_250, 4_999_250, 9.5),
        (500_750, 4_999_250, 9.5),
    ]
)


def _gpkg(path: Path) -> Path:
    gpd.GeoDataFrame({"name": ["inner"]}, geometry=[INNER], crs="EPSG:32633").to_file(path)
    return path


def test_a_geopackage_in_utm_with_heights_is_read_in_lon_lat(tmp_path: Path) -> None:
    geometry = parse_aoi(read_aoi_file(_gpkg(tmp_path / "aoi.gpkg")))
    assert geometry.has_z is False
    west, south, east, north = geometry.bounds
    assert 15.0 < west < east < 15.05  # zone 33, near 45 N
    assert 45.1 < south < north < 45.15
    assert aoi_area_m2(geometry) == pytest.approx(1500 * 1000, rel=2e-3)  # UTM area, scale factor aside
    assert read_aoi(str(tmp_path / "aoi.gpkg")).equals(geometry)  # training reads it the same way


def test_the_tutorials_polygonz_shapefile_is_an_aoi(lulc_py: Path) -> None:
    geometry = parse_aoi(read_aoi_file(lulc_py / "aoi_boundary.shp"))
    frame = gpd.read_file(lulc_py / "aoi_boundary.shp")
    assert frame.geometry.iloc[0].has_z  # the file's own polygon has heights, in World Mercator
    in_utm = frame.to_crs(frame.estimate_utm_crs())
    assert aoi_area_m2(geometry) == pytest.approx(float(in_utm.geometry.area.sum()), rel=2e-3)


def test_files_without_a_crs_or_features_are_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame({"name": []}, geometry=[], crs="EPSG:4326").to_file(empty)
    with pytest.raises(InputError, match=r"holds no features"):
        read_aoi_file(empty)
    bare = tmp_path / "bare.shp"
    gpd.GeoDataFrame({"name": ["inner"]}, geometry=[INNER]).to_file(bare)
    with pytest.raises(InputError, match=r"declares no CRS"):
        read_aoi_file(bare)
    garbage = tmp_path / "aoi.shp"
    garbage.write_bytes(b"not a shapefile")
    with pytest.raises(InputError, match=r"is not a vector file GDAL reads") as refused:
        read_aoi_file(garbage)
    assert "\n" not in str(refused.value)


def test_classify_maps_only_inside_a_geopackage_aoi(inputs: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    done = classify_image(inputs, tmp_path / "run", "--aoi", _gpkg(tmp_path / "aoi.gpkg"))
    assert done.returncode == 0, done.stderr
    with rasterio.open(tmp_path / "run" / "classes.tif") as src:
        mapped = src.read(1)
    valid = np.count_nonzero(mapped != 255)
    assert valid == pytest.approx(150 * 100, rel=0.05)  # the inner 1,500 x 1,000 m


def test_a_geojson_file_drops_heights_and_empty_features_and_one_layer_is_wanted(tmp_path: Path) -> None:
    """A GeoJSON file is read as any AOI file; a file of several layers is refused.

    Heights dropped, features without geometry skipped: training took these, and a 3D GeoJSON was refused
    where the same Shapefile was read.
    """
    ring = [[15, 45, 3], [15.1, 45, 3], [15.1, 45.1, 3], [15, 45, 3]]
    path = tmp_path / "aoi.geojson"
    features = [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}},
        {"type": "Feature", "properties": {}, "geometry": None},
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    geometry = parse_aoi(read_aoi_file(path))
    assert geometry.has_z is False
    assert geometry.bounds == pytest.approx((15, 45, 15.1, 45.1))
    layers = tmp_path / "layers.gpkg"
    for layer in ("fields", "aoi"):
        gpd.GeoDataFrame({"name": [layer]}, geometry=[INNER], crs="EPSG:32633").to_file(layers, layer=layer)
    with pytest.raises(InputError, match=r"holds 2 layers \(fields, aoi\): save the AOI's alone"):
        read_aoi_file(layers)


def test_a_geopackage_with_a_style_table_and_an_unclosed_geojson_ring(tmp_path: Path) -> None:
    """A GeoPackage's style table is no second layer; an unclosed GeoJSON ring is refused in plain words.

    QGIS saves layer styles into a GeoPackage as a table without geometry. OGR closed an unclosed ring with a
    warning, or failed in GEOS's words.
    """
    import sqlite3

    styled = _gpkg(tmp_path / "styled.gpkg")
    with sqlite3.connect(styled) as db:
        db.execute("CREATE TABLE layer_styles (id INTEGER PRIMARY KEY, styleName TEXT)")
        db.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier) "
            "VALUES ('layer_styles', 'attributes', 'x')"
        )
    assert parse_aoi(read_aoi_file(styled)).equals(parse_aoi(read_aoi_file(_gpkg(tmp_path / "plain.gpkg"))))
    unclosed = tmp_path / "unclosed.geojson"
    unclosed.write_text(
        json.dumps({"type": "Polygon", "coordinates": [[[15, 45], [15.1, 45], [15.1, 45.1]]]})
    )
    with pytest.raises(InputError, match=r"^the AOI has a ring that is not closed: it starts at \[15, 45\]"):
        read_aoi_file(unclosed)


def test_a_plain_geojson_aoi_is_read_without_ogr(tmp_path: Path) -> None:
    """A lon/lat GeoJSON (no `crs` member) is read as JSON, heights dropped, not through geopandas.

    Its import alone added 0.45 s to every `lulc classify --aoi aoi.geojson` (measured 2026-12-01).
    """
    import subprocess
    import sys

    path = tmp_path / "aoi.geojson"
    ring = [[15, 45, 7], [15.1, 45, 7], [15.1, 45.1, 7], [15, 45, 7]]
    path.write_text(
        json.dumps(
            {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
        )
    )
    code = (
        "import sys; from lulc.aoi import parse_aoi, read_aoi_file; "
        f"g = parse_aoi(read_aoi_file({str(path)!r})); print(g.has_z, g.bounds, 'geopandas' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "(15.0,", "45.0,", "15.1,", "45.1)", "False"]
