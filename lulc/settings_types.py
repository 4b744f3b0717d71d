"""Types shared by the deployables' settings classes (each deployable keeps its own class)."""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, NoDecode

from lulc.errors import InputError, validation_problems

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

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


def optional_http_url(value: str | None, example: str) -> str | None:
    """A setting's http(s) URL with a host; blank is unset (None).

    The value is not quoted in the error: an endpoint or token service URL may carry a secret.

    Raises:
        ValueError: not an http(s) URL with a host.
    """
    from urllib.parse import urlsplit

    if value is None or not value.strip():
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL with a host, e.g. {example}")
    return value


BLOB_HOSTS = ("*.blob.core.windows.net",)
"""Hosts whose hrefs are signed by default (``lulc.sas``): Azure Blob Storage accounts."""


def sas_token_url_field() -> Any:
    """The ``sas_token_url`` setting of each deployable that reads imagery (``lulc.sas.signer_for``)."""
    return Field(
        default=None,
        description="SAS token service whose tokens sign the asset hrefs on `sas_hosts` before they are read "
        "(`<url>/<account>/<container>`, as the Planetary Computer's). Unset: the Planetary Computer's "
        "(`https://planetarycomputer.microsoft.com/api/sas/v1/token`) for items of its STAC API, else "
        "nothing is signed. Fetched through the allow-list, which must hold its host and the blobs'.",
    )


def sas_hosts_field() -> Any:
    """The ``sas_hosts`` setting beside ``sas_token_url_field``."""
    return Field(
        default_factory=lambda: list(BLOB_HOSTS),
        description="Hosts (`*.example.com`, `host:port`) whose asset hrefs are signed with a SAS token; the "
        "rest are read as they are. JSON list or comma-separated.",
    )


def load_settings(cls: type[SettingsT], **overrides: Any) -> SettingsT:
    """A deployable's settings from its ``LULC_*`` variables and a command's options (``overrides``).

    Raises:
        InputError: a value is invalid, said in one line naming the variables' prefix (CLI review: "invalid
            TilerSettings" named a class, not ``LULC_TILER_*``).
    """
    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        raise InputError(f"invalid {prefix}* settings or options: {validation_problems(exc)}") from exc
