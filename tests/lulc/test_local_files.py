"""``lulc.local_files``: one wording for each way a local text, JSON or YAML file fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from lulc.errors import ContractError, InputError
from lulc.local_files import read_json, read_text, read_yaml


def test_each_failure_is_one_lulc_error_naming_the_file(tmp_path: Path) -> None:
    binary = tmp_path / "binary.json"
    binary.write_bytes(b'{"a": "\xff"}')
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    feb30 = tmp_path / "feb30.yaml"
    feb30.write_text("datetime: 2024-02-30\n")
    cases = [
        (read_text, tmp_path / "missing.txt", "does not exist"),
        (read_text, tmp_path, "is a folder, not a file"),
        (read_json, binary, "is not UTF-8 text (byte 7)"),
        (read_json, broken, "is not valid JSON"),
        (read_yaml, feb30, "a date that does not exist?"),
        # review: Path.exists() raises for a name too long (it does not answer False), before any read
        (read_text, tmp_path / ("x" * 300 + ".json"), "cannot be read: File name too long"),
    ]
    for reader, path, words in cases:
        with pytest.raises(InputError, match=r"^thing ") as caught:
            reader(path, "thing")
        assert words in str(caught.value), (path, str(caught.value))
        assert str(path) in str(caught.value)
    with pytest.raises(ContractError, match="is not valid JSON"):
        read_json(broken, "model item", ContractError)


def test_a_key_given_twice_is_refused_at_any_depth(tmp_path: Path) -> None:
    """Products review: a recipe's second `models:` (and a second `cv:`) replaced the first, exit 0."""
    from training.config import load_config
    from training.errors import ConfigError

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("models: [svm]\nseed: 1\nmodels: [dt]\n")
    with pytest.raises(
        ConfigError, match=r"recipe\.yaml is not valid YAML: the key 'models' is given twice \(line 3\)$"
    ):
        load_config(recipe)
    nested = tmp_path / "nested.yaml"
    nested.write_text("cv: {folds: 3, folds: 5}\n")
    with pytest.raises(InputError, match=r"the key 'folds' is given twice \(line 1\)"):
        read_yaml(nested, "recipe")
    same_value_elsewhere = tmp_path / "fine.yaml"
    same_value_elsewhere.write_text("a: {x: 1}\nb: {x: 1}\nc: [{x: 1}, {x: 2}]\n")
    assert read_yaml(same_value_elsewhere, "recipe") == {
        "a": {"x": 1},
        "b": {"x": 1},
        "c": [{"x": 1}, {"x": 2}],
    }
