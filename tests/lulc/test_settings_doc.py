"""The README's environment-variable tables are generated from the settings classes, and stay current."""

from __future__ import annotations

from pathlib import Path

import pytest

from lulc.settings_doc import deployables, env_names, load_settings_class, render

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "infra" / "README.md"]


@pytest.mark.parametrize("name", deployables())
def test_every_setting_has_its_prefix_and_a_description(name: str) -> None:
    cls = load_settings_class(name)
    prefix = f"LULC_{name.upper()}_"
    assert cls.model_config.get("env_prefix") == prefix
    for field_name, field in cls.model_fields.items():
        assert field.description, f"{cls.__name__}.{field_name} has no description"
    assert all(v.startswith(prefix) for v in env_names(cls).values())


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_generated_tables_are_current(doc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # defaults that depend on the working directory render as $PWD
    text = doc.read_text()
    assert "<!-- settings:" in text
    assert render(text) == text, f"run `make docs`: the tables in {doc.name} are out of date"


def test_the_command_answers_help_and_a_missing_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """README review: `python -m lulc.settings_doc --help` read "--help" as a file: a traceback."""
    from lulc.settings_doc import main

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "Markdown files" in capsys.readouterr().out
    with pytest.raises(SystemExit) as failed:
        main([str(tmp_path / "missing.md")])
    assert failed.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("missing.md: No such file or directory")
