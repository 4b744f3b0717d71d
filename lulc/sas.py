"""Signing Azure Blob hrefs with SAS tokens, as Microsoft's Planetary Computer serves its imagery.

The Planetary Computer's STAC API is public, but its COGs sit in private Azure Blob containers: each GET
needs a shared access signature (SAS) appended as a query string. Its token service hands one out per
storage account and container (``GET <token url>/<account>/<container>`` answers ``{"token": "st=...&
sig=...", "msft:expiry": "..."}``), valid for about an hour. ``SasSigner`` asks for them through
``lulc.stac_io.CheckedHttp`` (the one checked fetch: allow-list, no redirects off it, size and time
limits), keeps each until a minute before it expires, and signs an href at the moment GDAL opens it
(``lulc.pixels.windows.RetryPolicy``): what runs record (items' ``derived_from`` links, errors, logs)
is the href without its token, which would otherwise leak and expire there. The ``planetary-computer``
package does the same with its own ``requests`` calls outside the allow-list; this is its protocol,
fetched the checked way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from lulc.allowlist import AllowList
from lulc.errors import SourceError
from lulc.settings_types import BLOB_HOSTS
from lulc.stac_io import MAX_RESPONSE_BYTES, CheckedHttp

PLANETARY_COMPUTER_STAC = "planetarycomputer.microsoft.com"
"""Host of the Planetary Computer's STAC API and of its token service."""
PLANETARY_COMPUTER_TOKENS = "https://planetarycomputer.microsoft.com/api/sas/v1/token"
"""The Planetary Computer's SAS token service: ``<this>/<account>/<container>``."""
REFRESH_MARGIN = 60.0
"""Seconds before its expiry a token is replaced (a window read takes far less; the package keeps 60 too)."""


class HrefSigner(Protocol):
    """What a reader needs to open an href that wants a credential: the href to hand GDAL instead."""

    def sign(self, href: str) -> str:
        """``href`` signed (or as it is, when it needs nothing)."""
        ...


class _TokenAnswer(BaseModel):
    """The token service's answer (other fields ignored)."""

    model_config = ConfigDict(extra="ignore")

    token: str = Field(min_length=1, max_length=8192, pattern=r"^[^\s?#]+$")
    expiry: AwareDatetime = Field(alias="msft:expiry")


@dataclass(eq=False)  # compared and hashed as itself: the readers holding it are frozen dataclasses
class SasSigner:
    """Signs the hrefs on ``hosts`` with a token per storage account and container from ``token_url``.

    Args:
        http: the checked client the tokens are fetched with (its allow-list must hold ``token_url``).
        token_url: the token service, ``PLANETARY_COMPUTER_TOKENS`` for the Planetary Computer.
        hosts: host patterns (as the allow-list takes them) of the hrefs to sign; others pass unchanged.
        clock: seconds since the epoch (tests pass their own).
    """

    http: CheckedHttp
    token_url: str
    hosts: Sequence[str] = BLOB_HOSTS
    clock: Callable[[], float] = time.time
    _signed_hosts: AllowList = field(init=False, repr=False)
    _tokens: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.token_url = self.token_url.rstrip("/")
        self._signed_hosts = AllowList.of(self.hosts)

    def __getstate__(self) -> dict[str, object]:
        """Pickled without its lock and tokens (a Dask worker gets the reader so): it asks for its own."""
        state = dict(self.__dict__)
        del state["_lock"]
        state["_tokens"] = {}
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def sign(self, href: str) -> str:
        """``href?<token>`` for an https blob on ``hosts``; any other href, or one already signed, unchanged.

        A plain-http href is signed only by a plain-http token service (a local setup, the tests'): the
        token would otherwise travel in clear text.

        Raises:
            SourceError: the token service refused, failed or answered no token (``HttpStatusError``,
                ``SourceUnavailableError`` for a 5xx after retries, ``HostNotAllowedError`` off the list).
        """
        parts = urlsplit(href)
        if parts.scheme != "https" and not (parts.scheme == "http" and self.token_url.startswith("http:")):
            return href  # a token is not sent in clear text, but within a plain-http setup (a local one)
        if not self._signed_hosts.allows(href):
            return href
        if "sig" in parse_qs(parts.query):  # signed already (an item a modifier signed)
            return href
        account = (parts.hostname or "").split(".", 1)[0]
        container = parts.path.lstrip("/").split("/", 1)[0]
        if not account or not container:
            return href
        token = self._token(account, container)
        return f"{href}{'&' if parts.query else '?'}{token}"

    def _token(self, account: str, container: str) -> str:
        with self._lock:  # one request per container, however many threads read at once
            cached = self._tokens.get((account, container))
            if cached is not None and cached[1] - self.clock() > REFRESH_MARGIN:
                return cached[0]
            url = f"{self.token_url}/{account}/{container}"
            text = self.http.get_text(url, "SAS token service")
            try:
                answer = _TokenAnswer.model_validate_json(text)
            except ValidationError:
                raise SourceError(
                    f"SAS token service {url} answered no token (expected JSON with `token`, `msft:expiry`)"
                ) from None
            self._tokens[(account, container)] = (answer.token, answer.expiry.timestamp())
            return answer.token


def token_url_for(stac_location: str, configured: str | None = None) -> str | None:
    """The SAS token service to sign a source's hrefs with, or None (nothing is signed).

    ``configured`` if given, else the Planetary Computer's for a source on its STAC API.
    """
    if configured:
        return configured
    return PLANETARY_COMPUTER_TOKENS if urlsplit(stac_location).hostname == PLANETARY_COMPUTER_STAC else None


def signer_for(
    stac_location: str,
    allow: AllowList,
    configured: str | None = None,
    hosts: Sequence[str] = BLOB_HOSTS,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
) -> SasSigner | None:
    """The signer of a source's asset hrefs (``token_url_for``), its tokens fetched within ``allow``."""
    token_url = token_url_for(stac_location, configured)
    if token_url is None:
        return None
    return SasSigner(CheckedHttp(allow, max_response_bytes=max_response_bytes), token_url, tuple(hosts))
