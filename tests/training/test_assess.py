"""`lulc assess`: a map with known errors against the demo world's validation sample and its true areas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from typer.testing import CliRunner

from lulc.cli import app
from lulc.grid import pixel_areas_m2
from training.assess import assess_map


def _map_with_errors(world: Path, path: Path) -> tuple[np.ndarray, float]:
    """Truth with a systematic error: Forest (2) mapped as Cropland (3) in the northern half."""
    with rasterio.open(world / "truth.tif") as src:
        truth = src.read(1)
        profile = src.profile
        # the true (geodesic) pixel area, not the CRS's nominal 100 m2 (UTM's scale factor: 0.06 % here)
        centre = pixel_areas_m2(src.crs.to_string(), src.transform, [src.height // 2], [src.width // 2])
        pixel_ha = float(centre[0]) / 10_000
    mapped = truth.copy()
    north = mapped[: mapped.shape[0] // 2]
    north[north == 2] = 3
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mapped, 1)
    return truth, pixel_ha


def test_area_estimates_cover_the_true_areas(world: Path, tmp_path: Path) -> None:
    truth, pixel_ha = _map_with_errors(world, tmp_path / "map.tif")
    out = tmp_path / "assessment.json"
    result = CliRunner().invoke(
        app,
        [
            "assess",
            str(tmp_path / "map.tif"),
            "--points",
            str(world / "validation.gpkg"),
            "--label-field",
            "label",
            "--classes",
            str(world / "classes.yaml"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "overall accuracy" in result.output
    data = json.loads(out.read_text())
    by_value = {c["value"]: c for c in data["classes"]}
    for value, row in by_value.items():
        true_ha = float(np.count_nonzero(truth == value)) * pixel_ha
        # the stratified estimate corrects the map's bias: the truth lies within the 95 % interval
        assert abs(row["area_ha"] - true_ha) <= row["area_ci95_ha"] + 1e-5 * true_ha, (value, row, true_ha)
    forest, crop = by_value[2], by_value[3]
    assert forest["map_area_ha"] < forest["area_ha"]  # the map under-states forest ...
    assert crop["map_area_ha"] > crop["area_ha"]  # ... and over-states cropland
    assert crop["users_accuracy"] < 0.9
    assert forest["producers_accuracy"] < 0.9
    assert forest["users_accuracy"] == 1.0
    assert data["overall_accuracy"] < 1.0
    assert data["overall_accuracy_se"] > 0
    assert abs(np.sum(data["error_matrix"]["area_proportions"]) - 1.0) < 1e-4


def test_perfect_map_has_no_error(world: Path) -> None:
    data = assess_map(world / "truth.tif", world / "validation.gpkg", "label", world / "classes.yaml")
    assert data["overall_accuracy"] == 1.0
    assert data["dropped"] == []
    for row in data["classes"]:
        assert row["area_ha"] == row["map_area_ha"]
        assert row["area_ci95_ha"] == 0.0


def test_text_labels_are_names_of_the_maps_own_classes(world: Path, tmp_path: Path) -> None:
    """Without --classes, the map's CLASS_<value> tags say which value each class name is (review finding).

    The labels' alphabetical order is not the map's value order: numbering the names 1, 2, ... in that order
    scored this perfect map at a fraction of its accuracy.
    """
    import geopandas as gpd

    from lulc.classes import load_class_table

    table = load_class_table(world / "classes.yaml")
    names = {c.value: c.name for c in table.classes}
    assert sorted(names.values()) != [names[v] for v in sorted(names)]  # the orders differ
    tagged = tmp_path / "truth.tif"
    tagged.write_bytes((world / "truth.tif").read_bytes())
    with rasterio.open(tagged, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as dst:
        dst.update_tags(1, **{f"CLASS_{v}": n for v, n in names.items()})
    points = gpd.read_file(world / "validation.gpkg")
    points["label"] = points["label"].map(names)
    points.to_file(tmp_path / "named.gpkg")
    data = assess_map(tagged, tmp_path / "named.gpkg", "label", None)
    assert data["overall_accuracy"] == 1.0


def test_a_class_on_one_pixel_is_assessed_and_an_unmapped_class_has_no_users_accuracy(
    world: Path, tmp_path: Path
) -> None:
    """One sampled pixel of a class is its whole stratum; an unmapped class has no user's accuracy.

    Review: the first refused the map ("fewer than 2 points"); the second showed "0.0 +- 0.0", a measured 0 %.
    """
    import geopandas as gpd

    from training.assess import render_assessment

    with rasterio.open(world / "truth.tif") as src:
        truth, profile = src.read(1), src.profile
        points = gpd.read_file(world / "validation.gpkg").to_crs(src.crs)
        rows, cols = rasterio.transform.rowcol(src.transform, points.geometry.x, points.geometry.y)
    at = truth[np.asarray(rows), np.asarray(cols)]
    values, counts = np.unique(at, return_counts=True)
    rare, common = int(values[np.argmin(counts)]), int(values[np.argmax(counts)])
    first = int(np.flatnonzero(at == rare)[0])
    mapped = truth.copy()
    mapped[mapped == rare] = common
    gone = tmp_path / "gone.tif"
    with rasterio.open(gone, "w", **profile) as dst:
        dst.write(mapped, 1)
    mapped[rows[first], cols[first]] = rare
    one = tmp_path / "one.tif"
    with rasterio.open(one, "w", **profile) as dst:
        dst.write(mapped, 1)

    single = assess_map(one, world / "validation.gpkg", "label", world / "classes.yaml")
    row = next(c for c in single["classes"] if c["value"] == rare)
    assert row["sample_points"] == 1
    assert row["users_accuracy"] == 1.0
    assert row["users_accuracy_se"] == 0.0
    assert row["area_ha"] > row["map_area_ha"]  # the rest of the class hides in the common class's stratum

    absent = assess_map(gone, world / "validation.gpkg", "label", world / "classes.yaml")
    row = next(c for c in absent["classes"] if c["value"] == rare)
    assert row["users_accuracy"] is None
    assert row["users_accuracy_se"] is None
    assert row["producers_accuracy"] == 0.0  # defined: the class is there, the map never says so
    line = next(x for x in render_assessment(absent).splitlines() if x.startswith(f"{rare:>3} "))
    assert "n/a" in line
    json.dumps(absent, allow_nan=False)  # valid JSON: no NaN
