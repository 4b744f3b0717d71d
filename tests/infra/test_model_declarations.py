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
