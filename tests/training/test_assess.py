"""`lulc assess`: a map with known errors against the demo world's validation sample and its true areas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from lulc.cli import app
from lulc.grid import pixel_areas_m2
from training.assess import assess_map
from training.errors import AssessError


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
    assert assess_map(tagged, tmp_path / "named.gpkg", "label", world / "classes.yaml") == data  # agreeing
    # products review: a --classes table naming the map's classes otherwise gave 53.7 %, exit 0
    first, second = table.classes[0], table.classes[1]
    swapped = tmp_path / "swapped.yaml"
    swapped.write_text(
        "classes:\n"
        + "".join(
            f"  - {{value: {c.value}, name: {other.name!r}, color: '{c.color}'}}\n"
            for c, other in ((first, second), (second, first), *((c, c) for c in table.classes[2:]))
        )
    )
    with pytest.raises(
        AssessError, match=rf"names class {first.value} '{second.name}', and map .* '{first.name}'"
    ):
        assess_map(tagged, tmp_path / "named.gpkg", "label", swapped)


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


def _cleaned_pair(tmp_path: Path, seed: int = 0) -> tuple[Path, Path, np.ndarray, np.ndarray, np.ndarray]:
    """A source run and a "cleaned" run made from it (their items linked as ``lulc clean`` links them).

    The source maps class 1 over rows 0-59 and class 2 below, truly class 2 in its columns 0-9; its points are
    a stratified sample of it with unequal allocation (30 and 50 points), so weighting by another map's
    classes is not the sample's weighting. Returns both runs' map paths (the cleaned map still the source's),
    the source map, the truth and the points' (row, col) pixels.
    """
    from tests.support.points import write_pixel_points

    source = np.full((100, 100), 2, dtype=np.uint8)
    source[:60] = 1
    truth = source.copy()
    truth[:60, :10] = 2
    rng = np.random.default_rng(seed)
    cells = np.concatenate(
        [rng.choice(np.flatnonzero(source.ravel() == v), n, replace=False) for v, n in ((1, 30), (2, 50))]
    )
    rows, cols = np.unravel_index(cells, source.shape)
    write_pixel_points(tmp_path / "points.gpkg", rows, cols, truth[rows, cols])
    profile = {
        "driver": "GTiff",
        "dtype": "uint8",
        "count": 1,
        "width": 100,
        "height": 100,
        "nodata": 255,
        "crs": "EPSG:32633",
        "transform": rasterio.transform.from_origin(500000, 5000000, 10, 10),
    }
    paths = []
    for name, item in (
        ("source", {"assets": {"classes": {"href": "classes.tif"}}}),
        (
            "clean",
            {
                "properties": {"lulc:product": "clean"},
                "links": [{"rel": "derived_from", "href": "../source/item.json"}],
            },
        ),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "item.json").write_text(json.dumps(item))
        with rasterio.open(tmp_path / name / "classes.tif", "w", **profile) as dst:
            dst.write(source, 1)
        paths.append(tmp_path / name / "classes.tif")
    return paths[0], paths[1], source, truth, np.stack([rows, cols], axis=1)


def _write(path: Path, band: np.ndarray) -> None:
    with rasterio.open(path, "r+") as dst:
        dst.write(band, 1)


def test_cleaning_that_changes_no_point_changes_no_accuracy(tmp_path: Path) -> None:
    """No validation point changed: the change is exactly 0 (± 0), and both maps' accuracies are equal.

    Review: `lulc assess` on a cleaned map said "-0.36 points ± 0.00 (... 0 points became right, 0 wrong)":
    the change was the difference of two estimates each weighted by its own map's class areas, which the
    cleaning had moved, while its standard error, that of the per-point changes, was 0.
    """
    from training.assess import render_assessment

    source, cleaned, before_map, _, at = _cleaned_pair(tmp_path)
    after_map = before_map.copy()
    moved = np.zeros(before_map.shape, dtype=bool)
    moved[:60, 50:] = True  # a third of the map moves from class 1 to class 2 ...
    moved[at[:, 0], at[:, 1]] = False  # ... but at no point
    after_map[moved] = 2
    _write(cleaned, after_map)

    before = assess_map(source, tmp_path / "points.gpkg", "label")
    after = assess_map(cleaned, tmp_path / "points.gpkg", "label")
    assert 0 < before["overall_accuracy"] < 1  # stratum 1 has wrong points, stratum 2 none: weights matter
    change = after["accuracy_change"]
    assert (change["points_changed_to_right"], change["points_changed_to_wrong"]) == (0, 0)
    assert change["points_compared"] == 80
    assert change["overall_accuracy"] == 0.0
    assert change["overall_accuracy_se"] == 0.0
    assert after["overall_accuracy"] == before["overall_accuracy"]
    assert after["source"]["overall_accuracy"] == before["overall_accuracy"]
    assert all(c["users_accuracy"] in (0.0, None) for c in change["classes"])
    line = next(x for x in render_assessment(after).splitlines() if x.startswith("cleaned from"))
    assert "+0.00 points ± 0.00" in line
    assert "cannot measure this change" in render_assessment(after)


def test_accuracy_change_is_the_paired_stratified_estimate_on_the_sources_classes(tmp_path: Path) -> None:
    """Change and standard error are one estimator's; the cleaned map is assessed on the source's strata.

    Each point's change in correctness (+1, 0, -1), its stratum the source map's class, weighted by the source
    map's class areas (Stehman 2014); the cleaned map's overall accuracy on the same strata, so the figures
    shown subtract to the change, and the true class areas estimated from the same labels and strata agree.
    """
    source, cleaned, before_map, truth, at = _cleaned_pair(tmp_path, seed=1)
    rows, cols = at[:, 0], at[:, 1]
    wrong = np.flatnonzero(before_map[rows, cols] != truth[rows, cols])
    right_in_2 = np.flatnonzero((before_map[rows, cols] == 2) & (truth[rows, cols] == 2))
    assert wrong.size >= 2
    after_map = before_map.copy()
    moved = np.zeros(before_map.shape, dtype=bool)
    moved[:60, 60:] = True  # area moves from class 1 to class 2 where no point is ...
    moved[rows, cols] = False
    after_map[moved] = 2
    after_map[rows[wrong[:2]], cols[wrong[:2]]] = 2  # ... two wrong points become right
    after_map[rows[right_in_2[0]], cols[right_in_2[0]]] = 1  # and a right one of stratum 2 wrong
    _write(cleaned, after_map)

    before = assess_map(source, tmp_path / "points.gpkg", "label")
    after = assess_map(cleaned, tmp_path / "points.gpkg", "label")
    change = after["accuracy_change"]
    assert (change["points_changed_to_right"], change["points_changed_to_wrong"]) == (2, 1)
    # independent: the stratified mean of the per-point differences and its standard error
    d = (after_map[rows, cols] == truth[rows, cols]).astype(float) - (
        before_map[rows, cols] == truth[rows, cols]
    )
    stratum = before_map[rows, cols]
    weight = {v: float((before_map == v).mean()) for v in (1, 2)}
    expected = sum(weight[v] * d[stratum == v].mean() for v in (1, 2))
    se = np.sqrt(sum(weight[v] ** 2 * d[stratum == v].var(ddof=1) / (stratum == v).sum() for v in (1, 2)))
    assert expected != 0
    assert change["overall_accuracy"] == pytest.approx(expected, abs=1e-6)
    assert change["overall_accuracy_se"] == pytest.approx(se, abs=1e-6)
    assert change["overall_accuracy"] == pytest.approx(
        after["overall_accuracy"] - before["overall_accuracy"], abs=2e-6
    )
    assert "Stehman" in after["method"]
    for b, a in zip(before["classes"], after["classes"], strict=True):
        assert a["area_ha"] == pytest.approx(b["area_ha"], rel=1e-9)  # one truth, one sample, one estimate
    # no comparison, no source: the cleaned map is assessed as any map, on its own classes
    alone = assess_map(cleaned, tmp_path / "points.gpkg", "label", compare_source=False)
    assert "accuracy_change" not in alone
    assert alone["method"] == "Olofsson et al. 2014, stratified by map class"


def test_a_point_on_the_sources_nodata_has_no_stratum_and_is_dropped_from_the_cleaned_map(
    tmp_path: Path,
) -> None:
    """A point the source map does not cover lies in none of its strata: both maps are assessed without it."""
    source, cleaned, before_map, _, at = _cleaned_pair(tmp_path)
    hole = before_map.copy()
    hole[at[31, 0], at[31, 1]] = 255
    _write(source, hole)
    after = assess_map(cleaned, tmp_path / "points.gpkg", "label")
    assert after["used_points"] == after["accuracy_change"]["points_compared"] == 79
    assert [(d["index"], d["reason"]) for d in after["dropped"]] == [
        (31, "nodata in the source map (no stratum)")
    ]
    assert after["overall_accuracy"] == after["source"]["overall_accuracy"]
