"""Small pieces: the recipe, points and labels, spatial block CV, every estimator's ONNX export."""

from __future__ import annotations

import contextlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point

from lulc.classes import load_class_table
from training.config import CvOptions, load_config, make_config
from training.errors import ConfigError, ParityError, PointsError
from training.evaluate import repeated_splits, spatial_splits
from training.export import check_parity, to_onnx
from training.models import classes_of, make_estimator, quiet_estimators
from training.points import read_points

from .conftest import write_yaml


def test_recipe_paths_are_relative_to_the_yaml_and_flags_win(world: Path) -> None:
    config = load_config(world / "training.yaml", {"seed": 7, "cv": {"folds": 3}, "models": None})
    assert config.points == str((world / "train.gpkg").resolve())
    assert config.stac == str((world / "catalog.json").resolve())
    assert config.seed == 7
    assert config.cv.folds == 3
    assert config.cv.repeats == CvOptions().repeats  # cv keys merge
    assert config.models == ["rf", "svm", "dt"]  # None means "not given"


def test_recipe_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown model"):
        make_config({"models": ["xgb"]})
    with pytest.raises(ConfigError, match="index 'ndbi' needs band"):
        make_config({"bands": ["red", "nir"], "indices": ["ndbi"]})
    with pytest.raises(ConfigError, match="Extra inputs are not permitted"):
        load_config(write_yaml(tmp_path / "t.yaml", {"pionts": "x.gpkg"}))
    with pytest.raises(ConfigError, match="exactly one imagery source"):
        make_config({"points": "p.gpkg", "out": "m"}).require_complete()


def _points(path: Path, labels: list[object], crs: str | None = "EPSG:4326") -> Path:
    geoms = [Point(140.0 + i * 0.001, 36.0) for i in range(len(labels))]
    gpd.GeoDataFrame({"klass": labels}, geometry=geoms, crs=crs).to_file(path)
    return path


def test_text_labels_match_class_names(world: Path, tmp_path: Path) -> None:
    path = _points(tmp_path / "t.gpkg", ["Water", "forest", "Built-up", "Water"])
    points = read_points(path, "klass", load_class_table(world / "classes.yaml"))
    assert points.labels.tolist() == [1, 2, 5, 1]  # names match, case-insensitively


def test_labels_without_a_class_table(tmp_path: Path) -> None:
    text = read_points(_points(tmp_path / "t.gpkg", ["veg", "water", "urban", "veg"]), "klass")
    assert text.classes.names == ["urban", "veg", "water"]
    assert text.labels.tolist() == [2, 3, 1, 2]
    numbers = read_points(_points(tmp_path / "n.gpkg", [4.0, 2.0, 4.0]), "klass")
    assert numbers.classes.values == [2, 4]
    assert numbers.labels.tolist() == [4, 2, 4]


def test_unknown_labels_are_named(world: Path, tmp_path: Path) -> None:
    path = _points(tmp_path / "t.gpkg", ["Water", "Swamp"])
    with pytest.raises(PointsError, match=r"\['Swamp'\].*not class names"):
        read_points(path, "klass", load_class_table(world / "classes.yaml"))


def test_points_are_reprojected(world: Path) -> None:
    points = read_points(world / "train.gpkg", "label")
    x, y = points.xy_in("EPSG:32654")
    assert 400_000 < float(x.min()) < float(x.max()) < 600_000
    assert 3_900_000 < float(y.min()) < 4_100_000


def test_spatial_blocks_never_share_a_block_between_train_and_test() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 5000, 300), rng.uniform(0, 5000, 300)
    labels = rng.integers(1, 4, 300)
    splits, name, n_blocks = spatial_splits(x, y, labels, 1000.0, 5, seed=0)
    assert n_blocks == 25
    assert "1000 m blocks" in name
    block = np.floor(x / 1000) * 100 + np.floor(y / 1000)
    for train, test in splits:
        assert set(block[train]).isdisjoint(block[test])
    assert sorted(np.concatenate([t for _, t in splits]).tolist()) == list(range(300))


def test_with_spatial_blocks_the_hold_out_takes_whole_blocks() -> None:
    """Notes' defect: with --spatial-block the hold-out was still drawn by polygon (by point here).

    Points beside training points scored the neighbours of what the model had seen; now no block holds
    samples on both sides, and the scheme says so. Without blocks the grouping is the polygons' as before.
    """
    from lulc.classes import ClassTable
    from training.evaluate import grouping, holdout_split
    from training.pipeline import holdout_grouping

    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 5000, 400), rng.uniform(0, 5000, 400)
    labels = rng.integers(1, 4, 400).astype(np.int64)
    classes = ClassTable.from_labels([1, 2, 3])
    by_point = grouping(labels, None, classes)
    same, scheme = holdout_grouping(labels, x, y, "EPSG:32633", None, by_point, classes)
    assert same is by_point
    assert scheme == "stratified random"
    by_block, scheme = holdout_grouping(labels, x, y, "EPSG:32633", 1000.0, by_point, classes)
    assert scheme == "by 1000 m spatial block (25 blocks)"
    train, test = holdout_split(labels, 0.3, 0, by_block)
    block = np.floor(x / 1000) * 100 + np.floor(y / 1000)
    assert set(block[train]).isdisjoint(block[test])
    assert 0.15 < test.size / labels.size < 0.45
    assert set(labels[test]) == {1, 2, 3}
    plain_train, plain_test = holdout_split(labels, 0.3, 0, by_point)
    assert not set(block[plain_train]).isdisjoint(block[plain_test])  # what it was


def test_a_class_in_one_block_keeps_its_polygons_whole_in_a_spatial_hold_out() -> None:
    """Review: such a class's pixels were split one by one, its polygons on both sides of the hold-out."""
    from lulc.classes import ClassTable
    from training.evaluate import grouping, holdout_split
    from training.pipeline import holdout_grouping

    rng = np.random.default_rng(2)
    labels = np.repeat([1, 2, 3], 60).astype(np.int64)
    polygon = np.arange(180) // 10  # 18 polygons of 10 pixels
    x = (polygon % 6) * 1000.0 + 500 + rng.uniform(-50, 50, 180)
    y = np.where(labels == 3, 500.0, (polygon // 6) * 1000.0 + 1500) + rng.uniform(-50, 50, 180)
    x[labels == 3] = 500 + rng.uniform(-50, 50, 60)  # class 3: six polygons in one block
    classes = ClassTable.from_labels([1, 2, 3])
    by_block, scheme = holdout_grouping(
        labels, x, y, "EPSG:32633", 1000.0, grouping(labels, polygon, classes), classes
    )
    assert scheme.endswith("; 3 in one block: by polygon"), scheme
    train, test = holdout_split(labels, 0.3, 0, by_block)
    assert set(polygon[train]).isdisjoint(polygon[test])
    assert set(labels[test]) == set(labels[train]) == {1, 2, 3}
    _, points = holdout_grouping(labels, x, y, "EPSG:32633", 1000.0, grouping(labels, None), classes)
    assert points.endswith("; 3 in one block: point by point"), points  # review: said "by polygon"


def test_a_spatial_hold_out_that_leaves_a_class_untrained_falls_back_to_polygons() -> None:
    """Review: blocks are coarse; a class in two blocks both held out had no training sample (a crash)."""
    from training.evaluate import grouping
    from training.pipeline import keep_every_class_in_training

    labels = np.repeat([1, 2, 3], 20).astype(np.int64)
    grouped = grouping(labels, None)
    config = make_config({"cv": {"spatial_block": 1000}})
    untrained = (np.flatnonzero(labels != 3), np.flatnonzero(labels == 3))
    (train, _), scheme = keep_every_class_in_training(labels, untrained, config, grouped, "by block")
    assert set(labels[train]) == {1, 2, 3}
    assert scheme == (
        "stratified random: held out by 1000 m spatial block, class value(s) 3 had no training sample left"
    )
    kept = (np.arange(0, 60, 2), np.arange(1, 60, 2))
    assert keep_every_class_in_training(labels, kept, config, grouped, "by block") == (kept, "by block")


def test_repeated_kfold_and_shuffle_splits() -> None:
    labels = np.repeat([1, 2, 3], 20)
    kfold, name = repeated_splits(labels, CvOptions(folds=4, repeats=3), seed=0)
    assert len(kfold) == 12
    assert name == "4-fold stratified CV repeated 3x"
    shuffle, name = repeated_splits(labels, CvOptions(scheme="shuffle", repeats=5, test_size=0.3), 0)
    assert len(shuffle) == 5
    assert all(len(test) == 18 for _, test in shuffle)


@pytest.mark.parametrize("name", ["rf", "svm", "dt", "hgb", "lgbm"])
def test_every_estimator_exports_with_parity(name: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.random((400, 5), dtype=np.float32)
    y = np.digitize(x[:, 0] + 0.3 * x[:, 1], [0.4, 0.8, 1.1]) + 1
    with quiet_estimators():
        model = make_estimator(name, seed=0, params={"n_estimators": 20} if name in ("rf", "lgbm") else None)
        model.fit(x, y)
        onx = to_onnx(model, 5, name)
        data = onx.SerializeToString()
        pixels = rng.random((3000, 5), dtype=np.float32)
        parity = check_parity(data, model, x, pixels, classes_of(model), threads=2, threshold=0.9999)
    assert parity.test_agreement >= 0.9999
    assert parity.pixel_agreement >= 0.9999
    assert [o.name for o in onx.graph.output] == ["label", "probabilities"]


def test_parity_failure_is_reported() -> None:
    rng = np.random.default_rng(2)
    x = rng.random((200, 3), dtype=np.float32)
    y = (x[:, 0] > 0.5).astype(int) + 1
    model = make_estimator("dt", 0).fit(x, y)
    other = make_estimator("dt", 0).fit(x, 3 - y)  # the opposite labels
    data = to_onnx(other, 3, "dt").SerializeToString()
    with pytest.raises(ParityError, match="disagrees with scikit-learn"):
        check_parity(data, model, x, x, classes_of(model), threads=1, threshold=0.9999)


@pytest.mark.slow
def test_local_dn_image_with_spatial_blocks_and_lightgbm(
    world: Path, local_dn_image: Path, tmp_path: Path
) -> None:
    """An integer DN raster (no scale given: DN / 10000), spatial block CV, LightGBM kept by name."""
    import json

    from training.pipeline import train
    from training.report import NOT_SPATIAL

    out = tmp_path / "m-{version}"
    result = train(
        make_config(
            {
                "image": str(local_dn_image),
                "bands": ["blue", "green", "red", "nir"],
                "indices": ["ndvi", "ndwi"],
                "points": str(world / "train.gpkg"),
                "classes": str(world / "classes.yaml"),
                "models": ["dt", "lgbm"],
                "model_params": {"lgbm": {"n_estimators": 30}},
                "select": "lgbm",
                "cv": {"folds": 3, "repeats": 1, "spatial_block": 1000},
                "out": str(out),
            }
        )
    )
    assert result.out.name == f"m-{result.contract.version}"
    assert result.contract.inputs.radiometry.scale == pytest.approx(1e-4)
    assert result.contract.provenance.model_type == "lgbm"
    metrics = json.loads((result.out / "metrics.json").read_text())
    assert "DN / 10000" in metrics["imagery_notes"][0]
    assert metrics["spatial_cv"]["splits"] == 3
    assert "1000 m blocks" in metrics["spatial_cv"]["scheme"]
    assert metrics["holdout"]["scheme"].startswith("by 1000 m spatial block (")  # it was by point
    report = (result.out / "report.md").read_text()
    assert f"Hold-out: {metrics['holdout']['scheme']}." in report
    assert NOT_SPATIAL not in report
    # the AOA's folds are the same blocks (they were random folds, carried-over defect)
    assert "spatial block folds, 1000 m blocks" in metrics["trust"]["area_of_applicability"]["method"]
    assert metrics["holdout"]["overall_accuracy"] > 0.8
    assert "lightgbm" in result.contract.provenance.software
    assert metrics["parity"]["pixel_agreement"] >= 0.9999
    item = json.loads((result.out / "model.json").read_text())["properties"]  # review: said scikit-learn
    assert item["mlm:framework"] == "lightgbm"
    assert item["mlm:framework_version"] == result.contract.provenance.software["lightgbm"]


@pytest.mark.parametrize("name", ["hgb", "lgbm"])
def test_boosted_trees_branch_exactly_as_the_model_on_quantised_reflectance(name: str) -> None:
    """float32 ONNX thresholds must not send a pixel equal to a rounded threshold down the other branch."""
    rng = np.random.default_rng(3)
    x = (rng.integers(1000, 1800, size=(3000, 3)) / 10000).astype(np.float32)  # DN / 10000
    # Neighbouring float32 values (DN * 1e-4 and DN / 10000 differ by one ulp): the split between them
    # is their float64 midpoint, which rounds to one of them in float32.
    upper = np.float32(0.1375)
    lower = np.nextafter(upper, np.float32(0))
    pair = rng.random(3000) < 0.4
    x[pair, 1] = np.where(rng.random(int(pair.sum())) < 0.5, lower, upper)
    y = np.where(x[:, 1] >= upper, 2, 1) + (x[:, 0] > np.float32(0.14))
    onnx_proba, sk_proba = _boosted_probabilities(name, 30, x, y)
    assert float(np.abs(onnx_proba - sk_proba).max()) < 1e-5


def _boosted_probabilities(
    name: str, rounds: int, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ONNX Runtime's and the model's probabilities of ``x``, for a boosted model fitted on ``x``, ``y``."""
    import onnxruntime as ort

    with quiet_estimators():
        params = {"n_estimators": rounds} if name == "lgbm" else {"max_iter": rounds}
        model = make_estimator(name, seed=0, params=params).fit(x, y)
        session = ort.InferenceSession(to_onnx(model, x.shape[1], name).SerializeToString())
        return session.run(["probabilities"], {"features": x})[0], model.predict_proba(x)


@pytest.mark.parametrize("name", ["hgb", "lgbm"])
def test_boosted_trees_branch_exactly_with_thresholds_either_side_of_one_float32(name: str) -> None:
    """Two thresholds ``t1 < v < t2`` that both round to the float32 ``v`` need different ONNX values.

    Matched by value, the export could not tell them apart and left both at ``v``: a pixel equal to ``v``
    went left at ``t1`` (a LightGBM model of the demo world failed its parity gate, 3 of 20,000 pixels:
    ``test_local_dn_image_with_spatial_blocks_and_lightgbm``). Here HistGradientBoosting's midpoints make
    such a pair (it agreed on 68.5 % of the samples); LightGBM's thresholds, a little above the midpoints,
    round to v and the next float32, so its case guards the node-by-node walk, not the pair.
    """
    v = np.float32(0.1364)
    if v.view(np.uint32) % 2:  # midpoints round half to even: to v from both sides when v is even
        v = np.nextafter(v, np.float32(1))
    a, b = np.nextafter(v, np.float32(0)), np.nextafter(v, np.float32(1))
    rng = np.random.default_rng(0)
    column = rng.integers(0, 3, 600)
    x = np.stack([np.array([a, v, b])[column], rng.random(600)], axis=1).astype(np.float32)
    y = np.where(column == 1, 1, 0) + 2 * (x[:, 1] > 0.5)  # v alone is class 1: a split each side of it
    onnx_proba, sk_proba = _boosted_probabilities(name, 20, x, y)
    assert np.array_equal(onnx_proba.argmax(axis=1), sk_proba.argmax(axis=1))
    assert float(np.abs(onnx_proba - sk_proba).max()) < 1e-5


def test_a_tree_deeper_than_pythons_recursion_limit_is_read_for_its_thresholds() -> None:
    """Review: the model's trees were read recursively; a recipe's model_params may grow deep trees."""
    import sys

    from training.export import _flatten

    depth = sys.getrecursionlimit() + 500
    node: dict[str, object] = {"leaf_value": 0.0}
    for level in range(depth):  # a chain: every split's left child is a leaf
        node = {
            "split_feature": level % 3,
            "threshold": 0.001 * level,
            "left_child": {"leaf_value": 1.0},
            "right_child": node,
        }
    tree = _flatten(node)
    splits = [n for n in tree if n is not None]
    assert len(splits) == depth
    assert len(tree) == 2 * depth + 1
    root = tree[0]
    assert root is not None
    assert root.threshold == pytest.approx(0.001 * (depth - 1))
    assert tree[root.left] is None  # the left child is a leaf
    assert tree[root.right] is not None


def test_progress_bar_on_a_terminal() -> None:
    import io

    from rich.console import Console

    from training.commands import RichProgress

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    with RichProgress(console) as progress:
        progress.start("sampling", 4)
        progress.advance(4)
        progress.note("dropped point 3: cloud")
    text = buffer.getvalue()
    assert "sampling" in text
    assert "4/4" in text
    assert "dropped point 3: cloud" in text


def test_documented_recipe_example_is_valid() -> None:
    import yaml

    from training.config import TrainingConfig

    example = (TrainingConfig.__doc__ or "").split("::", 1)[1]
    data = yaml.safe_load("\n".join(line[8:] for line in example.splitlines()))
    config = TrainingConfig.model_validate(data)
    assert config.cv.spatial_block == 1000
    assert config.models == ["rf", "svm", "dt"]


class RecordingImagery:
    """A small real Imagery: a 100 x 100 grid of 16 x 16 blocks whose reflectance is the pixel index."""

    def __init__(self) -> None:
        from rasterio.transform import Affine

        from lulc.contract import Radiometry
        from lulc.grid import OutputGrid

        self.grid = OutputGrid("EPSG:32654", Affine(10, 0, 500000, 0, -10, 4000000), 100, 100, 16)
        self.bands = ["red", "nir"]
        self.radiometry = Radiometry()
        self.calls: list[list[tuple[int, int]]] = []

    description = identity = "recording"
    time_window = None
    composites = 1

    def read_blocks(self, blocks):  # type: ignore[no-untyped-def]
        from lulc.pixels import BlockPixels, Status

        self.calls.append([(b.row // 16, b.col // 16) for b in blocks])
        for block in blocks:
            rows, cols = np.mgrid[block.row : block.row + block.height, block.col : block.col + block.width]
            refl = np.stack([rows * 100 + cols, -(rows * 100 + cols)]).astype(np.float32)
            status = np.where(rows == 5, Status.CLOUD, Status.OK).astype(np.uint8)  # row 5 is clouded
            yield block, BlockPixels(refl, status)


def test_sampling_reads_each_block_holding_points_once() -> None:
    from lulc.classes import ClassTable
    from training.points import LabelledPoints
    from training.sampling import sample_points

    imagery = RecordingImagery()
    # pixel (row, col) centres; three points share block (1, 2), one is clouded, one is off the grid
    pixels = [(17, 35), (18, 40), (30, 45), (55, 55), (5, 3), (150, 3)]
    x = np.asarray([500000 + 10 * c + 5 for _, c in pixels], dtype=np.float64)
    y = np.asarray([4000000 - 10 * r - 5 for r, _ in pixels], dtype=np.float64)
    labels = np.asarray([1, 2, 1, 2, 1, 2], dtype=np.int64)
    crs = imagery.grid.rasterio_crs
    points = LabelledPoints("p", crs, x, y, labels, ClassTable.from_labels([1, 2]), ["label"])
    samples = sample_points(imagery, points)
    assert imagery.calls == [[(0, 0), (1, 2), (3, 3)]]  # one pass, each block once, only blocks with points
    assert samples.blocks_read == 3
    assert samples.index.tolist() == [0, 1, 2, 3]
    assert samples.reflectance[:, 0].tolist() == [r * 100 + c for r, c in pixels[:4]]
    assert [(d.index, d.reason) for d in samples.dropped] == [(4, "cloud"), (5, "outside imagery")]


def test_spatial_blocks_are_metres_also_for_a_lon_lat_image() -> None:
    """Review: spatial_block (metres) was applied to an EPSG:4326 image's degrees: 200 'm' held all points."""
    from training.evaluate import spatial_splits
    from training.pipeline import metric_xy

    rng = np.random.default_rng(0)
    lon = 140.0 + rng.uniform(0, 0.0066, 80)  # about 600 m east-west at 36 N
    lat = 36.0 + rng.uniform(0, 0.0054, 80)  # and 600 m north-south
    labels = np.repeat([1, 2], 40)
    x, y = metric_xy("EPSG:4326", lon, lat)
    assert 500 < x.max() - x.min() < 700
    assert 500 < y.max() - y.min() < 700
    splits, name, _ = spatial_splits(x, y, labels, 200.0, 3, 0)
    assert splits
    assert "200 m blocks" in name
    # metres in a metre CRS are kept as they are
    same_x, same_y = metric_xy("EPSG:32654", x, y)
    assert same_x is x
    assert same_y is y


def test_a_failed_stage_prints_no_count_off_a_terminal() -> None:
    """CLI review: "classifying blocks: 0/1" came before the one-line error when stderr was not a terminal."""
    import io

    from rich.console import Console

    from training.commands import RichProgress

    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=40)
    with RichProgress(console) as progress:
        progress.start("sampling", 3)
        progress.advance(3)
        progress.start("fitting", 2)
    assert out.getvalue().splitlines() == ["sampling: 3/3", "fitting: 0/2"]  # a finished run: every stage
    out.truncate(0)
    out.seek(0)
    with contextlib.suppress(ValueError), RichProgress(console) as progress:
        progress.start("sampling", 3)
        progress.advance(3)
        progress.start("fitting", 2)
        raise ValueError("bad input")
    assert out.getvalue().splitlines() == ["sampling: 3/3"]  # the failed stage's count is not printed


def test_spatial_blocks_measure_ground_metres_in_a_crs_off_scale() -> None:
    """Training review: World Mercator's metres (the tutorial's CRS) were ground metres (500 m: 404 m)."""
    from pyproj import Transformer

    from training.pipeline import metric_xy

    to_mercator = Transformer.from_crs("EPSG:4326", "EPSG:3395", always_xy=True)
    x0, y0 = to_mercator.transform(140.0, 36.0)
    x, y = np.array([x0, x0 + 500.0]), np.array([y0, y0])
    mx, my = metric_xy("EPSG:3395", x, y)
    assert float(np.hypot(mx[1] - mx[0], my[1] - my[0])) == pytest.approx(500 / 1.2346, rel=0.005)
    ux, uy = np.array([400_000.0, 400_500.0]), np.array([3_990_000.0, 3_990_000.0])
    same = metric_xy("EPSG:32654", ux, uy)
    assert same[0] is ux
    assert same[1] is uy
