"""``lulc vectorize``: one valid polygon per patch, block-split patches merged, areas sum to stats.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyogrio
import pytest
import shapely
from scipy import ndimage

from lulc.checksum import multihash_sha256
from lulc.errors import InputError
from service.vectorize import vectorize_run
from tests.service.products_support import file_map, read_band, speckled, two_runs
from tests.support.cli import lulc
from tests.support.stac_validation import assert_valid_stac_file


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_runs(tmp_path_factory).first


def whole_raster_patches(
    classes: npt.NDArray[np.uint8], connectivity: int
) -> tuple[npt.NDArray[np.int64], int]:
    """Independent labelling of the whole map: one id per patch (0 on nodata)."""
    structure = ndimage.generate_binary_structure(2, 2 if connectivity == 8 else 1)
    labels = np.zeros(classes.shape, dtype=np.int64)
    total = 0
    for value in (1, 2, 3):
        lab, n = ndimage.label(classes == value, structure=structure)
        labels[lab > 0] = lab[lab > 0] + total
        total += n
    return labels, total


@pytest.mark.parametrize("connectivity", [4, 8])
def test_one_valid_polygon_per_patch_with_true_areas(run: Path, tmp_path: Path, connectivity: int) -> None:
    out = tmp_path / "patches.gpkg"
    result = vectorize_run(run, out, connectivity=connectivity, block_size=128)  # type: ignore[arg-type]
    frame = pyogrio.read_dataframe(out)
    classes = read_band(run / "classes.tif")
    labels, n_patches = whole_raster_patches(classes, connectivity)
    assert len(frame) == result.features == n_patches  # patches cut by the 5 x 5 blocks were merged
    assert frame.geometry.is_valid.all()
    assert (np.abs(frame.geometry.area / 100.0 - frame["pixels"]) < 1e-6).all()  # 10 m pixels
    stats = json.loads((run / "stats.json").read_text())
    for row in stats["classes"]:
        mapped = frame.loc[frame["value"] == row["value"]]
        assert (mapped["class"] == row["name"]).all()
        assert abs(mapped["area_ha"].sum() - row["hectares"]) <= 1e-4 * row["hectares"]
        assert int(mapped["pixels"].sum()) == row["pixels"]
    # Mean confidence of each patch against the whole raster, found through a point inside the polygon.
    confidence = read_band(run / "confidence.tif").astype(np.float64)
    sums = np.bincount(labels.ravel(), weights=confidence.ravel(), minlength=n_patches + 1)
    counts = np.bincount(labels.ravel(), minlength=n_patches + 1)
    points = shapely.point_on_surface(frame.geometry.values)
    cols = np.floor((shapely.get_x(points) - 500000.0) / 10.0).astype(int)
    rows = np.floor((5000000.0 - shapely.get_y(points)) / 10.0).astype(int)
    ids = labels[rows, cols]
    assert np.allclose(frame["confidence"], np.round(sums[ids] / counts[ids], 3))
    assert (classes[rows, cols] == frame["value"]).all()


def test_flatgeobuf_and_its_item(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "patches.fgb"
    result = vectorize_run(run, out, block_size=256)
    item = assert_valid_stac_file(tmp_path / "patches.json")
    asset = item["assets"]["patches"]
    assert asset["type"] == "application/vnd.flatgeobuf"
    assert asset["file:checksum"] == multihash_sha256(out)
    assert item["properties"]["lulc:patches"] == result.features == len(pyogrio.read_dataframe(out))
    assert item["properties"]["lulc:product"] == "patches"
    assert pyogrio.read_info(out)["crs"] == "EPSG:32633"
    assert [c["name"] for c in asset["classification:classes"]] == [
        "open-water",
        "tree-cover",
        "built-up-area",
    ]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_same_patches_whatever_the_block_size(run: Path, tmp_path: Path) -> None:
    small = vectorize_run(run, tmp_path / "a.gpkg", block_size=64)
    large = vectorize_run(run, tmp_path / "b.gpkg", block_size=1024)  # one block: nothing to merge
    a, b = pyogrio.read_dataframe(tmp_path / "a.gpkg"), pyogrio.read_dataframe(tmp_path / "b.gpkg")
    assert small.features == large.features
    key = ["value", "pixels", "area_ha", "confidence"]
    assert (
        a[key].sort_values(key).reset_index(drop=True).equals(b[key].sort_values(key).reset_index(drop=True))
    )


def test_unknown_format_is_an_input_error(run: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"one of \.gpkg, \.fgb, \.parquet"):
        vectorize_run(run, tmp_path / "patches.shp")
    assert not list(tmp_path.iterdir())


def test_cli_vectorize(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "classes.gpkg"
    done = lulc("vectorize", str(run), "--out", str(out), "--block-size", "256")
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout
    assert len(pyogrio.read_dataframe(out)) > 1000


def test_geoparquet_in_row_groups(run: Path, tmp_path: Path) -> None:
    """GeoParquet 1.1 (WKB, PROJJSON CRS) that geopandas reads back; written 5000 features per row group."""
    import geopandas as gpd
    import pyarrow.parquet as pq

    out = tmp_path / "patches.parquet"
    result = vectorize_run(run, out, block_size=256)
    frame = gpd.read_parquet(out)
    assert len(frame) == result.features > 5000
    assert frame.crs.to_epsg() == 32633
    assert frame.geometry.is_valid.all()
    assert set(frame.geometry.geom_type) == {"MultiPolygon"}
    assert pq.ParquetFile(out).metadata.num_row_groups == -(-result.features // 5000)
    stats = json.loads((run / "stats.json").read_text())
    assert int(frame["pixels"].sum()) == stats["valid_pixels"]
    item = assert_valid_stac_file(tmp_path / "patches.json")
    assert item["assets"]["patches"]["type"] == "application/vnd.apache.parquet"


def test_peak_memory_does_not_follow_the_map(tmp_path: Path) -> None:
    """Four times the pixels: the peak grows far less, and stays under an int32 label raster of the map."""
    import tracemalloc

    import rasterio
    from rasterio.transform import from_origin

    from lulc.classes import ClassTable
    from service.run_folder import RunFolder, RunGrid
    from service.vectorize import iter_patches

    rng = np.random.default_rng(3)
    peaks, patches = [], []
    for side in (512, 1024):
        array = speckled(rng, (side, side), 16, 0.05, 4)
        array[array == 255] = 0
        path = file_map(tmp_path / f"map{side}.tif", array)
        grid = RunGrid(rasterio.crs.CRS.from_epsg(32633), from_origin(0, 0, 10, 10), side, side)
        run = RunFolder(
            tmp_path,
            path,
            None,
            {},
            {"pixel_area_m2": 100.0},
            ClassTable.from_labels([0, 1, 2, 3]),
            grid,
            255,
        )
        tracemalloc.start()
        try:
            patches.append(sum(1 for _ in iter_patches(run, block_size=128)))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert patches[1] > 3.5 * patches[0]  # control: four times the work
    assert peaks[1] < 1.5 * peaks[0]
    assert peaks[1] < 1024 * 1024 * 4


def test_reruns_are_byte_identical(run: Path, tmp_path: Path) -> None:
    """GeoPackage's last_change is pinned: a rerun a second later writes the same bytes (FlatGeobuf too)."""
    import time

    for suffix in (".gpkg", ".fgb"):
        first = vectorize_run(run, tmp_path / f"a-{suffix[1:]}{suffix}", block_size=256).path.read_bytes()
        time.sleep(1.1)
        second = vectorize_run(run, tmp_path / f"b-{suffix[1:]}{suffix}", block_size=256).path.read_bytes()
        assert first == second, suffix


def test_the_item_beside_the_file_never_replaces_another_json(run: Path, tmp_path: Path) -> None:
    """``--out run/item.gpkg`` would have replaced the run's item.json with the patches' item (review)."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = (copy / "item.json").read_bytes()
    with pytest.raises(InputError, match=r"is not the item of item\.gpkg"):
        vectorize_run(copy, copy / "item.gpkg", block_size=256)
    assert (copy / "item.json").read_bytes() == before
    assert not (copy / "item.gpkg").exists()
    first = vectorize_run(copy, tmp_path / "v.gpkg", block_size=256)
    again = vectorize_run(copy, tmp_path / "v.gpkg", block_size=256)  # its own item: replaced, as ever
    assert again.item_path == first.item_path
    with pytest.raises(InputError, match="choose another --out name"):
        vectorize_run(copy, tmp_path / "v.parquet", block_size=256)  # v.json is the .gpkg's item
