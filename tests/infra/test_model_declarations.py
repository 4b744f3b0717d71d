"""infra/models/demo.yaml trains through the retrain workflow's path: stage, `lulc train --config`, gate."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lulc.cli import app
from tests.infra.conftest import INFRA
from tests.infra.scripts import load_script

DEMO = INFRA / "models" / "demo.yaml"


def test_every_declared_model_is_a_valid_training_recipe(tmp_path: Path) -> None:
    from training.config import load_config

    declared = sorted((INFRA / "models").glob("*.yaml"))
    assert DEMO in declared
    for recipe in declared:
        config = load_config(recipe)
        assert config.name == recipe.stem, f"{recipe.name}: `name` must be the file's stem"
        assert config.out is None, f"{recipe.name}: the workflow chooses --out"


def test_staging_copies_the_recipe_next_to_its_data(tmp_path: Path) -> None:
    stage = load_script("stage_config")
    recipe = yaml.safe_load(DEMO.read_text())
    assert stage.needs_demo_world(recipe)
    url_recipe = tmp_path / "alps.yaml"
    url_recipe.write_text(
        yaml.safe_dump(
            {
                **recipe,
                "stac": "https://earth-search.aws.element84.com/v1",
                "points": "s3://b/p.gpkg",
                "aoi": [1, 2, 3, 4],
                "classes": "https://x/classes.yaml",
            }
        )
    )
    staged = stage.stage(url_recipe, tmp_path / "root")
    assert staged == tmp_path / "root" / "alps.yaml"
    assert staged.read_text() == url_recipe.read_text()
    assert not (tmp_path / "root" / stage.DEMO_WORLD).exists(), "no demo world for a recipe of URLs"


@pytest.mark.slow
def test_demo_model_trains_through_the_workflow_path_and_the_gate_guards_it(tmp_path: Path) -> None:
    from demo.world import MIN_SIZE

    stage = load_script("stage_config")
    pointer = load_script("model_pointer")
    staged = stage.stage(DEMO, tmp_path / "data", demo_size=MIN_SIZE)
    assert (tmp_path / "data" / stage.DEMO_WORLD / "catalog.json").is_file()

    runner = CliRunner()
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", "--config", str(staged), "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    for name in ("model.onnx", "model.json", "metrics.json", "report.md", "confusion_matrix.png"):
        assert (out / name).is_file(), name
    version = pointer.model_version(out / "model.json")
    assert version in json.loads((out / "model.json").read_text())["id"]

    # The promotion gate, as the workflow runs it: a deployed model clearly better than this one blocks
    # the release and nothing is written.
    metrics = json.loads((out / "metrics.json").read_text())
    better = copy.deepcopy(metrics)
    better["holdout"]["overall_accuracy"] = float(metrics["holdout"]["overall_accuracy"]) + 0.2
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(better))
    blocked = tmp_path / "blocked"
    result = runner.invoke(
        app, ["train", "--config", str(staged), "--out", str(blocked), "--baseline", str(baseline)]
    )
    assert result.exit_code != 0
    assert "accuracy" in (result.output + str(result.exception)).lower()
    assert not blocked.exists() or not any(blocked.iterdir())


def _sibling_recipe(folder: Path, **paths: object) -> Path:
    recipe = {
        **yaml.safe_load(DEMO.read_text()),
        "name": "alps",
        "stac": "https://earth-search.aws.element84.com/v1",
        "aoi": "alps/aoi.geojson",
        "points": "alps/train.gpkg",
        "classes": "./alps/classes.yaml",
        **paths,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "alps.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_staging_copies_the_files_a_recipe_names_beside_it(tmp_path: Path) -> None:
    """Paths are relative to the recipe: the staged recipe must find the same files next to it."""
    from training.config import load_config

    stage = load_script("stage_config")
    models = tmp_path / "models"
    (models / "alps").mkdir(parents=True)
    for name, text in {
        "aoi.geojson": '{"type": "Polygon"}',
        "train.gpkg": "gpkg",
        "classes.yaml": "x",
    }.items():
        (models / "alps" / name).write_text(text)
    (models / "alps" / "unrelated.txt").write_text("not named by the recipe")
    staged = stage.stage(_sibling_recipe(models), tmp_path / "root")
    config = load_config(staged)
    for key, name in {"aoi": "aoi.geojson", "points": "train.gpkg", "classes": "classes.yaml"}.items():
        resolved = Path(str(getattr(config, key)))
        assert resolved == (tmp_path / "root" / "alps" / name).resolve(), key
        assert resolved.read_text() == (models / "alps" / name).read_text(), key
    assert not (tmp_path / "root" / "alps" / "unrelated.txt").exists()
    assert not (tmp_path / "root" / stage.DEMO_WORLD).exists()


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        ({"aoi": "../outside.geojson"}, "leaves the recipe's folder"),
        ({"points": "alps/missing.gpkg"}, "not a file"),
        ({"stac": "alps/catalog.json"}, "local catalog"),
    ],
)
def test_staging_refuses_files_it_cannot_stage(tmp_path: Path, paths: dict[str, str], message: str) -> None:
    stage = load_script("stage_config")
    models = tmp_path / "models"
    (models / "alps").mkdir(parents=True)
    for name in ("aoi.geojson", "train.gpkg", "classes.yaml", "catalog.json"):
        (models / "alps" / name).write_text("{}")
    (tmp_path / "outside.geojson").write_text("{}")
    with pytest.raises(SystemExit, match=message):
        stage.stage(_sibling_recipe(models, **paths), tmp_path / "root")
    assert not (tmp_path / "root").exists(), "nothing staged from a refused recipe"
