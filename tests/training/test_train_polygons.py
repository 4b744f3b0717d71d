"""`lulc train` from polygons end to end on the tutorial scene: CRS, edges, empty polygons, grouping."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import box

from training.api import TrainingRun, train

from .conftest import squares, write_polygons

pytestmark = pytest.mark.slow


def corner(lulc_py: Path) -> object:
    """A square over the image's top-left corner: 10 x 10 pixel centres on the image, 20 of them nodata."""
    with rasterio.open(lulc_py / "s2image.tif") as src:
        t = src.transform
        assert int((src.read(1)[:10, :10] > 1e30).sum()) == 20  # the sliver: columns 0-1
    return box(*(t @ (-10, 10)), *(t @ (10, -10)))


@pytest.fixture(scope="module")
def polygons(lulc_py: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """3 x 3 pixel squares around the 121 points, one polygon half off the bottom edge, one on nodata only.

    Written in EPSG:4326 while the image is in EPSG:3395. Returns the file, the row of the edge polygon and
    the row of the nodata polygon.
    """
    with rasterio.open(lulc_py / "s2image.tif") as src:
        t, height = src.transform, src.height
        nodata = src.read(1) > 1e30
    points = gpd.read_file(lulc_py / "samples.shp")
    rows = squares(lulc_py)
    # half off the bottom edge: rows height-3 .. height+2, 4 columns of valid pixels
    col = next(c for c in range(100, 700) if not nodata[height - 3 :, c : c + 4].any())
    rows.append((box(*(t @ (col + 0.1, height + 2.9)), *(t @ (col + 3.9, height - 2.9))), 2))
    # the top-left corner's nodata sliver: columns 0-1, rows 0-3
    assert nodata[:4, :2].all()
    rows.append((box(*(t @ (0.1, 3.9)), *(t @ (1.9, 0.1))), 4))
    frame = gpd.GeoDataFrame(
        {"labels": [label for _, label in rows]}, geometry=[g for g, _ in rows], crs=points.crs
    ).to_crs("EPSG:4326")
    path = tmp_path_factory.mktemp("polygons") / "polygons.gpkg"
    frame.to_file(path)
    return path, len(rows) - 2, len(rows) - 1


@pytest.fixture(scope="module")
def trained_run(
    lulc_py: Path, polygons: tuple[Path, int, int], tmp_path_factory: pytest.TempPathFactory
) -> TrainingRun:
    return train(
        image=lulc_py / "s2image.tif",
        bands=["blue", "green", "red", "nir"],
        points=polygons[0],
        label_field="labels",
        models=["rf"],
        max_pixels_per_polygon=20,
        cv={"folds": 3, "repeats": 2},
        class_weight="balanced",
        seed=0,
        out=tmp_path_factory.mktemp("model") / "m",
    )


@pytest.fixture(scope="module")
def trained(trained_run: TrainingRun) -> Path:
    return trained_run.out


def test_polygons_give_their_pixels_and_empty_ones_are_reported(
    trained: Path, polygons: tuple[Path, int, int]
) -> None:
    metrics = json.loads((trained / "metrics.json").read_text())
    by_class = metrics["polygons"]["by_class"]
    assert sum(v["features"] for v in by_class.values()) == 121 + 1  # the nodata polygon gave nothing
    # 121 squares of 3 x 3 pixels, the edge polygon's 3 rows x 4 columns inside the image
    assert sum(v["pixels"] for v in by_class.values()) == 121 * 9 + 12
    assert metrics["polygons"]["features_without_valid_pixels"] == [polygons[2]]
    assert {d["reason"] for d in metrics["samples"]["dropped"]} == {"nodata"}
    assert len(metrics["samples"]["dropped"]) == 8


def test_dropped_pixels_name_their_feature_and_features_are_counted(
    trained_run: TrainingRun, polygons: tuple[Path, int, int]
) -> None:
    """A polygon's dropped pixels name its row in the file; the report counts features, then pixels.

    Review: they were named by their place in the expanded pixel list ("dropped point 3650"), and the
    report said "3660 points read" of a file of 122 polygons.
    """
    nodata_row = polygons[2]
    samples = trained_run.metrics["samples"]
    assert {d["index"] for d in samples["dropped"]} == {nodata_row}  # the row of the nodata polygon
    assert (samples["features"], samples["points"], samples["pixels"]) == (123, 0, 121 * 9 + 12 + 8)
    notes = "\n".join(trained_run.notes)
    assert "8 of 1109 samples dropped: 8 nodata" in notes
    assert f"  dropped sample of feature {nodata_row} (label 4) at (" in notes
    assert "dropped point" not in notes
    report = (trained_run.out / "report.md").read_text()
    assert "123 features read (1109 pixels of polygons sampled), 1101 used (" in report
    rows = [line for line in report.splitlines() if line.endswith("| nodata |")]
    assert len(rows) == 8
    assert all(row.startswith(f"| {nodata_row} | 4 |") for row in rows)


def test_accuracy_is_grouped_by_polygon_and_the_optimism_reported(trained: Path) -> None:
    metrics = json.loads((trained / "metrics.json").read_text())
    assert "grouped by polygon" in metrics["cv"]["scheme"]
    optimism = metrics["polygons"]["optimism"]
    assert optimism["grouped_cv_accuracy"] == metrics["cv"]["overall_accuracy"]["mean"]
    assert optimism["accuracy_difference"] == pytest.approx(
        optimism["pixel_split_cv_accuracy"] - optimism["grouped_cv_accuracy"], abs=1e-6
    )
    # the same model on both sides, the recipe's class weighting included: only the split differs
    kept = next(e for e in metrics["leaderboard"] if e["model"] == "rf")
    assert optimism["params"] == kept["params"]
    assert optimism["params"]["class_weight"] == "balanced"
    report = (trained / "report.md").read_text()
    assert "## Polygons" in report
    assert "Optimism of splitting pixels at random" in report


def test_a_polygon_touching_nodata_gives_the_cap_from_its_valid_pixels(lulc_py: Path, tmp_path: Path) -> None:
    """Polygons draw their capped samples from their valid pixels.

    Review: the seeded subset was drawn from all 100 pixel centres of the corner polygon and its nodata
    dropped afterwards: 23 samples at a cap of 30, although 80 of its pixels are valid.
    """
    path = write_polygons(tmp_path / "corner.gpkg", [*squares(lulc_py), (corner(lulc_py), 3)], lulc_py)
    run = train(
        image=lulc_py / "s2image.tif",
        bands=["blue", "green", "red", "nir"],
        points=path,
        label_field="labels",
        models=["dt"],
        max_pixels_per_polygon=30,
        cv={"folds": 3, "repeats": 1},
        trust=False,
        seed=0,
        out=tmp_path / "m",
    )
    samples = run.metrics["samples"]
    assert samples["dropped"] == []
    assert samples["used"] == 121 * 9 + 30
    veg_squares = sum(v == 3 for _, v in squares(lulc_py))
    assert run.metrics["polygons"]["by_class"]["3"]["pixels"] == 30 + 9 * veg_squares


def test_valid_pixels_are_drawn_first_and_a_wholly_valid_polygon_keeps_its_subset(
    lulc_py: Path, tmp_path: Path
) -> None:
    """Valid pixels first, seeded; a wholly valid polygon keeps the subset drawn before validity counted.

    That subset is the grid's alone (``with_polygon_pixels``), so expected metrics stay. With fewer valid
    pixels than the cap a polygon gives them all, and the rest of the cap is dropped (and said).
    """
    from training.imagery import open_local_imagery
    from training.points import read_points
    from training.sampling import sample_polygons

    imagery = open_local_imagery(lulc_py / "s2image.tif", ["blue", "green", "red", "nir"], None, None, None)
    with rasterio.open(lulc_py / "s2image.tif") as src:
        t = src.transform
    inland = box(*(t @ (300, 220)), *(t @ (320, 200)))  # 20 x 20 valid pixels
    path = write_polygons(tmp_path / "two.gpkg", [(inland, 2), (corner(lulc_py), 3)], lulc_py)
    points = read_points(path, "labels")
    grid_only, _ = points.with_polygon_pixels(imagery.grid, 30, seed=5)
    drawn, samples, notes = sample_polygons(imagery, points, 30, 5)
    again, _, _ = sample_polygons(imagery, points, 30, 5)
    assert drawn.groups is not None
    assert grid_only.groups is not None
    inland_drawn, inland_grid = drawn.groups == 0, grid_only.groups == 0
    assert np.array_equal(drawn.x[inland_drawn], grid_only.x[inland_grid])
    assert np.array_equal(drawn.y[inland_drawn], grid_only.y[inland_grid])
    assert np.array_equal(drawn.x, again.x)
    assert np.array_equal(drawn.y, again.y)
    assert np.bincount(samples.labels).tolist() == [0, 0, 30, 30]
    assert samples.dropped == []
    assert "2 polygon(s) hold more than 30 pixels" in notes[-1]
    _, short, _ = sample_polygons(imagery, points, 90, 5)
    assert np.count_nonzero(short.labels == 3) == 80  # every valid pixel of the corner
    assert [d.reason for d in short.dropped] == ["nodata"] * 10  # and 10 of its nodata pixels, said


def test_polygons_sampled_in_parts_give_the_samples_of_all_at_once(lulc_py: Path, tmp_path: Path) -> None:
    """Memory review: every polygon pixel's reflectance was held at once (1.2 GiB for 10 M pixels).

    In parts (``LabelledPoints.polygon_batches``) each polygon is still drawn from all its own pixels, so the
    samples, their order, the drops and the notes are those of one part; points stay first.
    """
    from training.imagery import open_local_imagery
    from training.points import read_points
    from training.sampling import sample_polygons

    imagery = open_local_imagery(lulc_py / "s2image.tif", ["blue", "green", "red", "nir"], None, None, None)
    with rasterio.open(lulc_py / "s2image.tif") as src:
        t = src.transform
    big = [(box(*(t @ (40 * i + 5, 230)), *(t @ (40 * i + 35, 200))), 1 + i % 4) for i in range(6)]
    tutorial = gpd.read_file(lulc_py / "samples.shp")
    dots = [(g, int(v)) for g, v in zip(tutorial.geometry[:5], tutorial["labels"][:5], strict=True)]
    rows = [*dots, (corner(lulc_py), 3), *squares(lulc_py)[:5], *big]
    points = read_points(write_polygons(tmp_path / "mixed.gpkg", rows, lulc_py), "labels")
    whole, whole_samples, whole_notes = sample_polygons(imagery, points, 90, 7)

    class Stages:
        def __init__(self) -> None:
            self.stages: list[str] = []

        def start(self, description: str, total: int) -> None:
            self.stages.append(description)

        def advance(self, steps: int = 1) -> None:
            pass

        def note(self, message: str) -> None:
            pass

    kept = Stages()
    parts, part_samples, part_notes = sample_polygons(imagery, points, 90, 7, kept, batch_pixels=1000)
    stages = kept.stages
    assert len(stages) > 3, stages
    assert stages[0] == f"sampling, part 1 of {len(stages)}"
    assert part_samples.blocks_read > whole_samples.blocks_read  # a block shared by parts is read again
    for field in ("x", "y", "labels", "groups"):
        assert np.array_equal(getattr(parts, field), getattr(whole, field)), field
    assert parts.pixels == whole.pixels
    assert parts.crs == whole.crs
    for field in ("reflectance", "labels", "index", "x", "y"):
        assert np.array_equal(getattr(part_samples, field), getattr(whole_samples, field)), field
    assert part_samples.dropped == whole_samples.dropped
    assert [d.reason for d in whole_samples.dropped] == ["nodata"] * 10  # the corner's, drawn to reach 90
    assert part_notes == whole_notes
    assert "7 polygon(s) hold more than 90 pixels" in whole_notes[-1]
    # parts of 500 centres: each 900-pixel polygon (and the corner) larger than a part is sampled strip by
    # strip, its validity first, then its drawn pixels' reflectance alone (memory review): the same samples
    strips = Stages()
    streamed, streamed_samples, streamed_notes = sample_polygons(
        imagery, points, 90, 7, strips, batch_pixels=500
    )
    assert streamed_samples.blocks_read > part_samples.blocks_read  # read twice: validity, then the drawn
    for field in ("x", "y", "labels", "groups"):
        assert np.array_equal(getattr(streamed, field), getattr(whole, field)), field
    assert streamed.pixels == whole.pixels
    for field in ("reflectance", "labels", "index", "x", "y"):
        assert np.array_equal(getattr(streamed_samples, field), getattr(whole_samples, field)), field
    assert streamed_samples.dropped == whole_samples.dropped
    assert streamed_notes == whole_notes
