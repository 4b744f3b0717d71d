"""The URL allow-list: the tiler reads only from permitted local folders and http(s) URL prefixes."""

from __future__ import annotations

import posixpath
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from fastapi import Query

from lulc.allowlist import REMOTE_SCHEMES
from tiler.errors import NotAllowedError

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class UrlPrefix:
    """A normalised remote prefix: scheme, host, port and a path prefix (``/`` for a whole host)."""

    scheme: str
    host: str
    port: int | None
    path: str

    def covers(self, other: UrlPrefix) -> bool:
        """Whether the location ``other`` lies under this prefix (whole path segments only)."""
        if (self.scheme, self.host, self.port) != (other.scheme, other.host, other.port):
            return False
        base = self.path.rstrip("/")
        return other.path == base or other.path.startswith(base + "/") or base == ""


def _normalise_url(url: str) -> tuple[UrlPrefix, str]:
    """The prefix form of a remote URL and the URL to hand to GDAL; raises ``NotAllowedError``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise NotAllowedError(f"{url!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if parts.username is not None or parts.password is not None:
        raise NotAllowedError(f"URLs with credentials are not allowed: {url!r}")
    host = (parts.hostname or "").lower()
    if not host:
        raise NotAllowedError(f"URL {url!r} has no host")
    raw_path = unquote(parts.path) or "/"
    if "\\" in raw_path or "\x00" in raw_path:
        raise NotAllowedError(f"URL {url!r} has an invalid path")
    path = posixpath.normpath(raw_path)
    path = "/" + path.lstrip("/") if path != "." else "/"
    if parts.path.endswith("/") and path != "/":
        path += "/"
    port = port if port is not None else _DEFAULT_PORTS.get(scheme)
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    clean = urlunsplit((scheme, netloc, quote(path, safe="/:@!$&'()*+,;=-._~"), parts.query, ""))
    return UrlPrefix(scheme, host, port, path), clean


def _file_path(text: str) -> str:
    """The percent-decoded path of a ``file://`` URL; any other text unchanged."""
    return unquote(text[7:]) if text.lower().startswith("file://") else text


def _is_remote(url: str) -> bool:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return scheme in REMOTE_SCHEMES


@dataclass(frozen=True)
class AllowList:
    """Permitted local folders (symlinks and ``..`` resolved) and remote URL prefixes."""

    folders: tuple[Path, ...]
    prefixes: tuple[UrlPrefix, ...]

    @classmethod
    def from_prefixes(cls, prefixes: Iterable[str], base: Path | None = None) -> AllowList:
        """Build from strings: http(s)/s3/gs/az URL prefixes, ``file://`` URLs or local folders.

        Relative folders are taken relative to ``base`` (default: the current directory).
        """
        folders: list[Path] = []
        remote: list[UrlPrefix] = []
        root = base or Path.cwd()
        for prefix in prefixes:
            text = prefix.strip()
            if not text:
                continue
            if _is_remote(text):
                remote.append(_normalise_url(text)[0])
            else:
                folder = Path(_file_path(text))
                folders.append((root / folder).resolve())
        return cls(tuple(folders), tuple(remote))

    def describe(self) -> list[str]:
        """The allowed prefixes as strings (for logs and /healthz)."""
        remote = [
            f"{p.scheme}://{p.host}{'' if p.port in (None, _DEFAULT_PORTS.get(p.scheme)) else f':{p.port}'}"
            f"{p.path}"
            for p in self.prefixes
        ]
        return [str(f) for f in self.folders] + remote

    def check(self, url: str) -> str:
        """The normalised location of ``url`` if it is allowed, else ``NotAllowedError``.

        Local paths come back absolute with symlinks and ``..`` resolved; remote URLs with scheme and
        host lower-cased, default ports dropped and dot segments removed. GDAL virtual paths
        (``/vsi...``) and other schemes are never allowed.
        """
        text = url.strip()
        if not text:
            raise NotAllowedError("an empty url is not allowed")
        if _is_remote(text):
            location, clean = _normalise_url(text)
            if any(prefix.covers(location) for prefix in self.prefixes):
                return clean
            raise NotAllowedError(f"{url!r} is outside the tiler's allow-list")
        if "://" in text and not text.lower().startswith("file://"):
            raise NotAllowedError(f"{url!r}: scheme not allowed")
        raw = _file_path(text)
        if raw.startswith("/vsi") or "\x00" in raw:
            raise NotAllowedError(f"{url!r}: GDAL virtual file systems are not allowed")
        path = Path(raw)
        try:
            resolved = (path if path.is_absolute() else Path.cwd() / path).resolve()
        except (OSError, RuntimeError) as exc:
            raise NotAllowedError(f"{url!r} cannot be resolved: {exc}") from None
        if any(resolved == folder or resolved.is_relative_to(folder) for folder in self.folders):
            return str(resolved)
        raise NotAllowedError(f"{url!r} is outside the tiler's allow-list")


def allowed_path_dependency(allow: AllowList) -> Callable[[str], Awaitable[str]]:
    """A FastAPI dependency (TiTiler ``path_dependency``) returning the checked ``url`` query parameter.

    ``async``: the check is string work plus a local path resolution, cheaper than the thread-pool hop
    FastAPI makes for a plain function on every tile request.
    """

    async def dataset_path(
        url: Annotated[
            str, Query(description="Dataset path or URL; it must lie under a prefix of the allow-list.")
        ],
    ) -> str:
        return allow.check(url)

    return dataset_path
