"""Text, JSON and YAML files on this machine, read with one wording for each way they fail.

A file named on the command line or in a request is missing (``lulc.urls.missing_file``: a URL given for it
says so), not a regular file (a FIFO never ends), not UTF-8 text, not JSON or YAML, or unreadable: each
reads the same wherever lulc opens such a file (the CLI review found "not UTF-8" worded three ways and two
of them Python's own codec message).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from lulc.errors import InputError, LulcError
from lulc.urls import missing_file


def not_utf8(subject: str, exc: UnicodeDecodeError) -> str:
    """The message of a file that is not UTF-8 text; ``subject`` names it (``"AOI file a.json"``)."""
    return f"{subject} is not UTF-8 text (byte {exc.start})"


def read_text(path: Path, what: str, error: type[LulcError] = InputError) -> str:
    """The UTF-8 text of ``path``; ``error`` naming ``what`` and the file if it cannot be read as such."""
    try:
        if path.exists() and not path.is_file() and not path.is_dir():  # a FIFO or device: never ends
            raise error(f"{what} {path} is not a regular file")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise error(missing_file(what, path)) from exc
    except UnicodeDecodeError as exc:
        raise error(not_utf8(f"{what} {path}", exc)) from exc
    except IsADirectoryError as exc:
        raise error(f"{what} {path} is a folder, not a file") from exc
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror or exc}") from exc


def read_json(path: Path, what: str, error: type[LulcError] = InputError) -> Any:
    """The parsed JSON of ``path`` (``read_text``'s errors, and one for text that is not JSON)."""
    text = read_text(path, what, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{what} {path} is not valid JSON: {exc}") from exc


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping.

    YAML 1.2 forbids it; PyYAML keeps the last silently: a recipe's second ``models:`` or ``cv:`` replaced
    the first, exit 0 (products review).
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                line = key_node.start_mark.line + 1  # not the mark: it names "<unicode string>"
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice (line {line})"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path, what: str, error: type[LulcError] = InputError) -> Any:
    """The parsed YAML of ``path`` (``read_text``'s errors, and one for text that is not YAML).

    A date that does not exist (PyYAML's ``ValueError`` for ``2024-02-30``) was an "unexpected" error
    naming no file (CLI review). A key given twice in one mapping is refused (``_UniqueKeyLoader``).
    """
    text = read_text(path, what, error)
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from exc
    except ValueError as exc:  # a scalar PyYAML reads as a date, which does not exist: quote it
        raise error(f"{what} {path} is not valid YAML: {exc} (a date that does not exist?)") from exc
