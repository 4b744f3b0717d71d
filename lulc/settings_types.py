"""Types shared by the deployables' settings classes (each deployable keeps its own class)."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic_settings import NoDecode

StrList = Annotated[list[str], NoDecode]
"""A list read from the environment as JSON (``["a","b"]``) or comma-separated text (``a,b``)."""


def split_list(value: object) -> object:
    """A ``StrList`` validator: JSON list text is parsed, other text split on commas; lists pass through."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value
