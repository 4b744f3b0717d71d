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


def optional_http_url(value: str | None, name: str) -> str | None:
    """A setting's http(s) URL, stripped; blank is unset (None).

    Raises:
        ValueError: not an http(s) URL with a host.
    """
    from urllib.parse import urlsplit

    if value is None or not value.strip():
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an http(s) URL, got {value!r}")
    return value.strip()
