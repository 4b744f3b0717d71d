"""Regenerates the environment-variable tables in Markdown files from the settings classes."""

from __future__ import annotations

import re
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

SETTINGS_GROUP = "lulc.settings"
"""Entry-point group naming one settings class per deployable, by the name used in the Markdown markers."""

_BLOCK = re.compile(r"(<!-- settings:(\w+) -->\n)(.*?)(<!-- /settings -->)", re.DOTALL)


def deployables() -> list[str]:
    """The names of the deployables that declare a settings class, sorted."""
    return sorted({entry.name for entry in entry_points(group=SETTINGS_GROUP)})


def load_settings_class(name: str) -> type[BaseSettings]:
    """Import the settings class of deployable ``name``."""
    (entry,) = entry_points(group=SETTINGS_GROUP, name=name)
    cls = entry.load()
    if not (isinstance(cls, type) and issubclass(cls, BaseSettings)):
        raise TypeError(f"{entry.value} is not a pydantic-settings class")
    return cls


def env_names(cls: type[BaseSettings]) -> dict[str, str]:
    """Environment variable name of every field of ``cls``, keyed by field name."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {name: f"{prefix}{name}".upper() for name in cls.model_fields}


def _type_name(annotation: Any) -> str:
    """A short readable type: ``str``, ``list[str]``, ``SecretStr | None``, ``Literal['a', 'b']``."""
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    text = str(annotation)
    for prefix in ("typing.", "pydantic.types.", "pathlib.", "typing_extensions."):
        text = text.replace(prefix, "")
    return re.sub(r"Annotated\[(.*?), .*\]$", r"\1", text)


def _default(value: Any) -> str:
    """The default as Markdown code; the working directory shows as ``$PWD`` so tables are portable."""
    if value is None or value == "" or value == [] or value == {}:
        return ""
    return f"`{value}`".replace(str(Path.cwd()), "$PWD")


def settings_table(cls: type[BaseSettings]) -> str:
    """A Markdown table: variable, type, default, description."""
    rows = ["| variable | type | default | description |", "|---|---|---|---|"]
    names = env_names(cls)
    for name, field in cls.model_fields.items():
        type_name = _type_name(field.annotation).replace("|", "\\|")
        default = "" if field.is_required() else _default(field.get_default(call_default_factory=True))
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{names[name]}` | {type_name} | {default} | {description} |")
    return "\n".join(rows) + "\n"


def render(text: str) -> str:
    """``text`` with every ``<!-- settings:NAME -->`` block replaced by the current table."""

    def replace(match: re.Match[str]) -> str:
        return f"{match.group(1)}{settings_table(load_settings_class(match.group(2)))}{match.group(4)}"

    return _BLOCK.sub(replace, text)


def main(paths: list[str]) -> int:
    """Rewrite each file in ``paths`` in place; print which ones changed (``make docs``)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m lulc.settings_doc",
        description="Regenerate the settings tables between the markers of Markdown files, in place.",
    )
    parser.add_argument("files", nargs="+", type=Path, help="Markdown files, e.g. README.md infra/README.md")
    for path in parser.parse_args(paths).files:
        try:
            old = path.read_text()
        except OSError as exc:
            parser.error(f"cannot read {path}: {exc.strerror}")
        new = render(old)
        if new != old:
            path.write_text(new)
            print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
