"""Bad input to `lulc train`: a clear message naming the problem, non-zero exit, nothing written in --out.

One case runs the real ``lulc`` program (exit code 2, one ``error:`` line on stderr, even through a pipe with
``COLUMNS=40`` and a long path); the others drive
the same typer app in-process (the same code path up to ``main()``'s error printing), which is faster.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from typer.testing import CliRunner

from lulc.cli import app
from lulc.errors import LulcError

LULC = Path(sys.executable).with_name("lulc")


def run_train(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    out_parent = tmp_path / ("a-long-folder-name-" * 6) / "models"  # longer than any terminal line
    out_parent.mkdir(parents=True)
    out = out_parent / "model"
    env = {**os.environ, "COLUMNS": "40"}  # narrow, and stdout/stderr are pipes, not a terminal
    done = subprocess.run(
        [str(LULC), "train", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    return done, out_parent


def invoke_train(args: list[str], tmp_path: Path) -> tuple[str, Path]:
    """Run ``lulc train`` in-process; return the error message (it must be a LulcError)."""
    out_parent = tmp_path / "models"
    out_parent.mkdir()
    result = CliRunner().invoke(app, ["train", *args, "--out", str(out_parent / "model")])
    assert result.exit_code != 0
    assert isinstance(result.exception, LulcError), result.output
    return " ".join(str(result.exception).split()), out_parent


def assert_message(message: str, out_parent: Path, *needles: str) -> None:
    for needle in needles:
        assert needle in message, (needle, message)
    assert list(out_parent.iterdir()) == []  # not even a partial directory


def assert_refused(done: subprocess.CompletedProcess[str], out_parent: Path, *needles: str) -> None:
    assert done.returncode == 2, done.stderr + done.stdout
    message = " ".join(done.stderr.split())
    assert message.startswith("error:"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # one line a user can grep
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in message, (needle, message)
    assert list(out_parent.iterdir()) == []  # not even a partial directory


def test_label_field_that_does_not_exist_lists_the_fields(world: Path, tmp_path: Path) -> None:
    done, out_parent = run_train(
        ["--config", str(world / "training.yaml"), "--label-field", "klass"], tmp_path
    )
    assert_refused(done, out_parent, "train.gpkg", "no field 'klass'", "label")


def test_class_with_a_single_point(world: Path, tmp_path: Path) -> None:
    frame = gpd.read_file(world / "train.gpkg")
    last = frame[frame["label"] == 6].index[1:]
    thin = tmp_path / "thin.gpkg"
    frame.drop(index=last).to_file(thin)
    message, out_parent = invoke_train(
        ["--config", str(world / "training.yaml"), "--points", str(thin)], tmp_path
    )
    assert_message(message, out_parent, "thin.gpkg", "Bare soil", "fewer than 2")


def test_points_without_a_crs(world: Path, tmp_path: Path) -> None:
    frame = gpd.read_file(world / "train.gpkg").to_crs("EPSG:32654")
    frame = frame.set_crs(None, allow_override=True)
    bare = tmp_path / "bare.shp"
    frame.to_file(bare)
    assert not bare.with_suffix(".prj").exists()
    message, out_parent = invoke_train(
        ["--config", str(world / "training.yaml"), "--points", str(bare)], tmp_path
    )
    assert_message(message, out_parent, "bare.shp", "declares no CRS")


def test_aoi_that_intersects_no_item(world: Path, tmp_path: Path) -> None:
    message, out_parent = invoke_train(
        ["--config", str(world / "training.yaml"), "--aoi", "10.0,10.0,10.1,10.1"], tmp_path
    )
    assert_message(
        message, out_parent, "no sentinel-2-l2a items", "intersect the AOI", "[10.0, 10.0, 10.1, 10.1]"
    )


def test_stac_band_the_items_do_not_have(world: Path, tmp_path: Path) -> None:
    message, out_parent = invoke_train(
        [
            "--config",
            str(world / "training.yaml"),
            "--bands",
            "blue,green,red,nir,rededge1",
            "--indices",
            "ndvi",
        ],
        tmp_path,
    )
    assert_message(message, out_parent, "has no band(s) ['rededge1']", "its bands are")


def test_image_band_that_does_not_exist(world: Path, local_dn_image: Path, tmp_path: Path) -> None:
    message, out_parent = invoke_train(
        [
            "--image",
            str(local_dn_image),
            "--image-bands",
            "blue,green,red,nir",
            "--bands",
            "blue,green,red,swir16",
            "--points",
            str(world / "train.gpkg"),
        ],
        tmp_path,
    )
    assert_message(
        message, out_parent, "scene.tif", "lacks band(s) ['swir16']", "['blue', 'green', 'red', 'nir']"
    )


def test_an_out_folder_holding_other_files_is_refused_and_kept(
    world: Path, local_dn_image: Path, tmp_path: Path
) -> None:
    """Training replaces --out whole: a folder with the user's data (or a file) is refused before any work."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(local_dn_image, data / "scene.tif")
    recipe = ["--image", str(data / "scene.tif"), "--image-bands", "blue,green,red,nir"]
    recipe += ["--bands", "blue,green,red,nir", "--points", str(world / "train.gpkg"), "--models", "dt"]
    for out, needle in (
        (data, "holds files that are not a model's (scene.tif)"),
        (data / "scene.tif", "is a file"),
    ):
        before = {p.name: p.read_bytes() for p in data.iterdir()}
        result = CliRunner().invoke(app, ["train", *recipe, "--out", str(out)])
        assert result.exit_code != 0
        assert isinstance(result.exception, LulcError), result.output
        assert needle in " ".join(str(result.exception).split())
        assert {p.name: p.read_bytes() for p in data.iterdir()} == before  # nothing lost
    # the control: an earlier model folder is replaced, as before
    model = tmp_path / "model"
    assert CliRunner().invoke(app, ["train", *recipe, "--out", str(model)]).exit_code == 0
    assert CliRunner().invoke(app, ["train", *recipe, "--out", str(model)]).exit_code == 0
    assert sorted(p.name for p in model.iterdir()) == sorted(
        ["model.onnx", "model.json", "metrics.json", "report.md", "confusion_matrix.png"]
    )


def test_points_on_one_pixel_stay_on_one_side_of_every_split(lulc_py: Path, tmp_path: Path) -> None:
    """The tutorial's points twice: copies are one group, never trained on and scored (review finding)."""
    import geopandas as gpd
    import pandas as pd

    from training.api import train

    points = gpd.read_file(lulc_py / "samples.shp")
    doubled = gpd.GeoDataFrame(pd.concat([points, points], ignore_index=True), crs=points.crs)
    doubled.to_file(tmp_path / "doubled.gpkg")
    run = train(
        image=lulc_py / "s2image.tif",
        bands=["blue", "green", "red", "nir"],
        points=tmp_path / "doubled.gpkg",
        label_field="labels",
        models=["dt"],
        cv={"folds": 3, "repeats": 2},
        seed=0,
        out=tmp_path / "m",
    )
    train_n = run.metrics["samples"]["train"]
    assert train_n + run.metrics["samples"]["test"] == 2 * len(points)
    assert train_n % 2 == 0  # whole pairs on each side
    # the CV runs on the training part, each pair one group
    assert f"({train_n // 2} groups), of the training part ({train_n} of" in run.metrics["cv"]["scheme"]


def test_an_invalid_recipe_value_is_one_line_without_pydantics_link(world: Path, tmp_path: Path) -> None:
    done, out_parent = run_train(["--points", str(world / "train.gpkg"), "--test-size", "1.5"], tmp_path)
    # a flag's value is named by the flag (README review: "cv.test_size", "class_weight" were the recipe's)
    assert_refused(done, out_parent, "invalid training recipe", "--test-size: Input should be less than 1")
    assert "errors.pydantic.dev" not in done.stderr
    message, out = invoke_train(["--points", str(world / "train.gpkg"), "--cv-scheme", "shufle"], tmp_path)
    assert_message(message, out, "--cv-scheme: Input should be 'kfold' or 'shuffle'")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("class_weight: balance\ncv: {scheme: shufle}\n")
    message = str(CliRunner().invoke(app, ["train", "--config", str(recipe), "--folds", "1"]).exception)
    assert "class_weight: Input should be 'balanced'" in message, message  # the recipe's own keys
    assert "cv.scheme: Input" in message, message
    assert "--folds: Input" in message, message


def test_train_prints_its_result_on_stdout_and_its_progress_on_stderr(
    world: Path, local_dn_image: Path, tmp_path: Path
) -> None:
    """As classify does: stdout holds what a script may read (the two summary lines), stderr the stages."""
    recipe = [
        "--image",
        str(local_dn_image),
        "--image-bands",
        "blue,green,red,nir",
        "--bands",
        "blue,green,red,nir",
    ]
    recipe += ["--points", str(world / "train.gpkg"), "--models", "dt", "--repeats", "1"]
    done, out_parent = run_train(recipe, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout
    assert lines[0].startswith("kept dt ")
    assert lines[1].startswith(f"wrote {out_parent / 'model'}/")
    assert done.stderr.strip(), "the stages are reported on stderr"


def test_a_model_name_the_mlm_item_cannot_carry_is_refused_before_any_work(tmp_path: Path) -> None:
    """Review: 'rf' or '2024-landcover' trained, and the model item written failed MLM's mlm:name pattern."""
    from training.config import make_config
    from training.errors import ConfigError

    for bad in ("rf", "2024-landcover", "forêt", "model_", "kasumigaura/rf"):
        with pytest.raises(ConfigError, match=rf"name: .*'{bad}' cannot name a model"):
            make_config({}, {"name": bad})
    assert make_config({}, {"name": "Kasumigaura RF 2"}).name == "Kasumigaura RF 2"
    with pytest.raises(ConfigError, match="scale"):  # refused up front, not when the contract is written
        make_config({}, {"scale": float("nan")})


def test_a_band_name_typo_is_refused_with_the_band_meant(world: Path, tmp_path: Path) -> None:
    """Trained on an unnamed image, a model of band 'nri' could not classify STAC imagery anywhere."""
    message, out_parent = invoke_train(
        ["--config", str(world / "training.yaml"), "--bands", "blue,green,red,nri", "--indices", ""],
        tmp_path,
    )
    assert_message(message, out_parent, "unknown band(s) ['nri']", "did you mean 'nir'?")
    # the flag is named as a possible culprit, and pydantic's own words ("value: Value error,") are gone
    assert message.startswith("invalid training recipe (")
    assert "with the command's options): unknown" in message


def test_a_float_image_of_digital_numbers_is_refused_unless_a_scale_is_given(
    tutorial: Path, tmp_path: Path
) -> None:
    """Review: the scene x 10,000 in float trained as "reflectance"; real reflectance then mapped as Water."""
    import rasterio

    scene = tmp_path / "dn_float.tif"
    with rasterio.open(tutorial / "s2image.tif") as src:
        profile, data = src.profile, src.read()
    with rasterio.open(scene, "w", **profile) as dst:
        dst.write(data * 10000)
    args = ["--image", str(scene), "--bands", "blue,green,red,nir", "--points", str(tutorial / "samples.shp")]
    args += ["--label-field", "labels", "--models", "dt", "--repeats", "1"]
    message, out_parent = invoke_train(args, tmp_path)
    assert_message(message, out_parent, "dn_float.tif", "median of", "--scale 0.0001", "--scale 1")
    # the user's word: the same image with its scale trains (and the control: the check is what refused it)
    result = CliRunner().invoke(app, ["train", *args, "--scale", "0.0001", "--out", str(tmp_path / "scaled")])
    assert result.exit_code == 0, result.output


def test_an_image_whose_crs_puts_it_off_the_earth_is_refused(tutorial: Path, tmp_path: Path) -> None:
    """CLI review: World Mercator metres labelled EPSG:4326 classified into NaN hectares, exit 0."""
    import rasterio

    scene = tmp_path / "wrong_crs.tif"
    with rasterio.open(tutorial / "s2image.tif") as src:
        profile, data = src.profile, src.read()
    with rasterio.open(scene, "w", **{**profile, "crs": "EPSG:4326"}) as dst:
        dst.write(data)
    args = tutorial_args(tutorial)
    args[1] = str(scene)
    message, out_parent = invoke_train(args, tmp_path)
    assert_message(message, out_parent, "wrong_crs.tif's bounds (x 1.56022e+07", "are no place on Earth")
    assert "in its CRS EPSG:4326: the CRS is wrong" in message


def tutorial_args(tutorial: Path, points: Path | None = None, *more: str) -> list[str]:
    """`lulc train` arguments: the tutorial's scene and points (or ``points``), a decision tree, ``more``."""
    image = ["--image", str(tutorial / "s2image.tif"), "--bands", "blue,green,red,nir"]
    labels = ["--points", str(points or tutorial / "samples.shp"), "--label-field", "labels"]
    return [*image, *labels, "--models", "dt", *more]


def _first_per_class(tutorial: Path, n: int, tmp_path: Path) -> Path:
    frame = gpd.read_file(tutorial / "samples.shp")
    path = tmp_path / f"first-{n}.gpkg"
    frame.groupby("labels").head(n).to_file(path)
    return path


@pytest.mark.parametrize(
    ("case", "needles"),
    [
        ("2 per class", ["8 labelled samples cannot calibrate class sets at 90% coverage (at least 9)"]),
        ("3 per class", ["12 labelled samples leave 8 to calibrate the class sets on", "fewer than 9"]),
        ("3 per class, spatial", ["12 labelled samples leave 8 to calibrate"]),
        ("test size 0.97", ["--test-size 0.97 holds out 118 of 121 samples, leaving 3 to train 4 classes"]),
    ],
)
def test_too_few_samples_for_a_step_are_refused_before_it_not_as_an_unexpected_error(
    tutorial: Path, tmp_path: Path, case: str, needles: list[str]
) -> None:
    """Review: these passed the class counts and ended as `error: unexpected ValueError` (exit 1)."""
    points = tutorial / "samples.shp"
    if "per class" in case:
        points = _first_per_class(tutorial, int(case[0]), tmp_path)
    args = tutorial_args(tutorial, points)
    args += ["--spatial-block", "100"] if "spatial" in case else []
    args += ["--test-size", "0.97"] if "test size" in case else []
    message, out_parent = invoke_train(args, tmp_path)
    assert_message(message, out_parent, *needles)


def test_folds_lowered_for_the_smallest_class_are_said(tutorial: Path, tmp_path: Path) -> None:
    """Review: --folds 50 ran 16 folds without a word; with --spatial-block: an unexpected ValueError."""
    args = tutorial_args(
        tutorial, None, "--folds", "50", "--spatial-block", "100", "--out", str(tmp_path / "m")
    )
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    lowered = re.search(r"--folds 50 lowered to (\d+)", output)
    assert lowered is not None, output
    assert 2 <= int(lowered[1]) < 50
    assert f"spatial CV: {lowered[1]}-fold spatial block CV, not 50" in output


@pytest.mark.parametrize("blank", [None, "", "  "])
def test_an_empty_label_is_named_by_its_row(
    tutorial: Path, tutorial_classes: Path, tmp_path: Path, blank: object
) -> None:
    """Review: one blank text label made every code an unknown class name (`labels ['', '1', ...]`)."""
    frame = gpd.read_file(tutorial / "samples.shp")
    frame["labels"] = frame["labels"].astype(str).astype(object)
    frame.loc[5, "labels"] = blank
    points = tmp_path / "blank.gpkg"
    frame.to_file(points)
    args = tutorial_args(tutorial, points, "--classes", str(tutorial_classes))
    message, out_parent = invoke_train(args, tmp_path)
    assert_message(message, out_parent, "blank.gpkg has 1 of 121 'labels' labels empty (rows [5])")


def test_an_empty_file_and_a_file_of_no_labels_are_said_to_be_so(tutorial: Path, tmp_path: Path) -> None:
    """CLI review: an empty GeoJSON "has no field 'labels'"; an unlabelled sample named ten rows empty.

    The sample: one `lulc design` drew, before its labels were collected.
    """
    from training.errors import PointsError
    from training.points import read_points

    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(PointsError, match=r"^points file .*empty.geojson holds no features$"):
        read_points(empty, "labels")
    frame = gpd.read_file(tutorial / "samples.shp")
    frame["labels"] = None
    unlabelled = tmp_path / "sample.gpkg"
    frame.to_file(unlabelled)
    with pytest.raises(PointsError, match=r"none of its 121 features has a 'labels' label: fill that field"):
        read_points(unlabelled, "labels")


def test_a_class_seen_once_in_training_is_a_note_not_a_library_warning(
    tutorial: Path, tmp_path: Path
) -> None:
    """Review: scikit-learn's `UserWarning: The least populated class` reached stderr twice, with source."""
    frame = gpd.read_file(tutorial / "samples.shp")
    water = frame.index[frame["labels"] == 1]
    points = tmp_path / "water2.gpkg"
    frame.drop(index=water[2:]).to_file(points)  # two water points: one held out, one to train on
    done, _ = run_train(tutorial_args(tutorial, points), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    assert "class value(s) 1 have one sample in the training part" in " ".join(done.stderr.split())


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        (
            {"rf": {"n_estimator": 10}},
            "model_params.rf: unknown parameter(s) ['n_estimator'] of RandomForest",
        ),
        (
            {"rf": {"n_estimators": -5}},
            "model_params.rf: The 'n_estimators' parameter of RandomForestClassifier",
        ),
        ({"svm": {"C": "abc"}}, "model_params.svm: The 'C' parameter of SVC must be a float"),
        ({"xgb": {"n_estimators": 5}}, "model_params for unknown model(s) ['xgb']"),
    ],
)
def test_model_params_are_checked_with_the_recipe(params: dict[str, Any], needle: str) -> None:
    """Training-inputs review: a typo failed at the first fit, after the sampling, as an unexpected error."""
    from training.config import make_config
    from training.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        make_config({"models": ["rf", "svm"], "model_params": params})
    assert needle in str(caught.value)
    assert make_config({"models": ["rf"], "model_params": {"rf": {"n_estimators": 25}, "svm": {"C": 2}}})


def test_a_cv_that_is_no_mapping_is_a_recipe_error_and_the_origin_names_only_flags_given(
    tmp_path: Path,
) -> None:
    """Training-inputs review: ``cv: 5`` with ``--folds`` was an unexpected TypeError.

    Without any flag the message still said "with the command's options" (the flags' ``cv`` of Nones
    counted as one).
    """
    from training.config import load_config
    from training.errors import ConfigError

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("cv: 5\n")
    no_flags = {"cv": {"folds": None, "repeats": None}, "models": None}
    with pytest.raises(ConfigError, match=r"recipe.yaml\): cv: Input should be a valid dictionary"):
        load_config(recipe, no_flags)
    with pytest.raises(ConfigError, match=r"with the command's options\): cv must be a mapping"):
        load_config(recipe, {"cv": {"folds": 3}})


def test_a_resolution_no_map_could_use_is_refused_with_the_recipe() -> None:
    """Training-inputs review: ``--resolution 0.001`` trained a model whose map needed 313 GB per block."""
    from training.config import make_config
    from training.errors import ConfigError

    for bad in (0.001, 0.5, 100_000):
        with pytest.raises(ConfigError, match="resolution: Input should be"):
            make_config({}, {"resolution": bad})
    assert make_config({}, {"resolution": 20}).resolution == 20


@pytest.mark.parametrize(("label", "shown"), [(-1, "-1"), (300, "300"), (255, "255"), (1.5, "1.5")])
def test_a_label_that_is_no_class_code_is_named_with_its_file_and_field(
    tmp_path: Path, label: float, shown: str
) -> None:
    """Training-inputs review: -1 said "invalid class table in labels: classes.0.value: ..." (no file)."""
    import shapely

    from training.errors import PointsError
    from training.points import read_points

    path = tmp_path / "points.gpkg"
    gpd.GeoDataFrame({"cover": [1, 2, label]}, geometry=[shapely.Point(0, 0)] * 3, crs=4326).to_file(path)
    with pytest.raises(PointsError) as caught:
        read_points(str(path), "cover", None, None)
    assert str(caught.value) == (
        f"points file {path} field 'cover': label(s) {shown} are no class codes: codes are whole numbers 0 "
        "to 254 (255 marks nodata): recode them, or label with class names"
    )


def test_an_identifier_as_label_field_gives_a_short_message_that_says_so() -> None:
    """Training-inputs review: ``--label-field id`` listed 121 classes, geometry 6,556 characters of WKT."""
    from lulc.classes import ClassTable
    from training.errors import PointsError
    from training.evaluate import check_class_counts

    names = [f"POLYGON (({i} 0, {i} 1, {i + 1} 1, {i + 1} 0, {i} 0))" * 3 for i in range(121)]
    table = ClassTable.from_labels(names)
    labels = np.array(table.values, dtype=np.int64)  # one point each
    with pytest.raises(PointsError) as caught:
        check_class_counts(labels, table, "points.gpkg")
    message = str(caught.value)
    assert len(message) < 1000, message
    assert "and 111 more" in message
    assert "is the label field an identifier?" in message


def test_no_usable_point_left_says_so_not_which_classes_to_add() -> None:
    """Every point dropped (nodata, say): the error asked to "add points of the other classes"."""
    from lulc.classes import ClassTable
    from training.errors import PointsError
    from training.evaluate import check_class_counts

    table = ClassTable.from_labels(["water", "forest", "urban"])
    with pytest.raises(PointsError) as caught:
        check_class_counts(np.array([], dtype=np.int64), table, "pts.gpkg (after dropping unusable points)")
    message = str(caught.value)
    assert "has no usable point left" in message
    assert "other classes" not in message
    with pytest.raises(PointsError, match="add points of the other classes"):  # one class left: as before
        check_class_counts(np.array([table.values[0]] * 3, dtype=np.int64), table, "pts.gpkg")


@pytest.mark.parametrize(
    ("recipe", "needle"),
    [
        ({"stac": "c.json", "aoi": [0, 0, 1, 1], "scale": 0.5}, "scale read a local image (--image)"),
        (
            {"stac": "c.json", "aoi": [0, 0, 1, 1], "image_bands": ["a", "b"]},
            "image_bands read a local image",
        ),
        ({"image": "s2.tif", "resolution": 20}, "resolution choose and composite STAC imagery"),
        (
            {"image": "s2.tif", "aoi": [0, 0, 1, 1], "max_items": 3},
            "aoi, max_items choose and composite STAC",
        ),
        ({"image": "s2.tif", "models": ["dt"], "model_params": {"rf": {"max_depht": 3}}}, "max_depht"),
        ({"image": "s2.tif", "seasons": []}, "seasons: [] names no season"),
        ({"image": "s2.tif", "tune_budget": 20}, "tune_budget counts the candidates of a search: give tune"),
    ],
)
def test_recipe_keys_that_would_be_ignored_are_refused(recipe: dict[str, Any], needle: str) -> None:
    """Products review: these keys changed nothing (a byte-identical model), exit 0."""
    from training.config import make_config
    from training.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(needle)):
        make_config({"points": "p.gpkg", "out": "m", **recipe}).require_complete()


def test_a_refused_recipe_does_not_wait_for_scikit_learn(tmp_path: Path) -> None:
    """A recipe with an impossible date took 10.6 s to refuse: scikit-learn was imported before the check."""
    recipe = tmp_path / "feb30.yaml"
    recipe.write_text("datetime: 2024-02-30\n")
    script = (
        "import sys\n"
        "from lulc.cli import main\n"
        "try:\n"
        "    main(['train', '--config', sys.argv[1], '--out', sys.argv[2]])\n"
        "except SystemExit as stop:\n"
        "    print(stop.code, 'sklearn' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(recipe), str(tmp_path / "model")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "day is out of range for month" in done.stderr
    assert done.stdout.split() == ["2", "False"], done.stdout + done.stderr
    assert not (tmp_path / "model").exists()
