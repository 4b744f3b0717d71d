"""The one allow-list of everything lulc-stac fetches: hosts, URL prefixes and local folders.

- The service: http(s) hosts (``example.com``, ``*.example.com``, ``host:port``) or URL prefixes
  (``https://host/path/``, ``s3://bucket/``) from ``LULC_SERVICE_ALLOWED_HOSTS``, local folders from
  ``LULC_SERVICE_LOCAL_FOLDERS`` (``AllowList.of``). A local path outside them and a missing one get
  the same error, so answers reveal nothing about the rest of the disk.
- The tiler: URL prefixes or local folders from ``LULC_TILER_ALLOW`` (``AllowList.from_prefixes``).
- The CLIs (training, ``lulc classify``): ``AllowList.anything()``, every URL and local path, still
  parsed and normalised by ``lulc.urls.parse_location``.

Every check parses the text once (``lulc.urls``) and returns the normalised href, which is what must
then be fetched. Local paths come back absolute with ``..`` and symlinks resolved, so a link inside an
allowed folder that points outside it is refused.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from lulc.urls import DEFAULT_PORTS, HostNotAllowedError, Location, parse_location, refuse

__all__ = ["AllowList", "HostNotAllowedError", "HostRule", "UrlPrefix"]

LOCAL_REFUSAL = "not an existing file under the allow-list's local folders"
"""Why a local path is refused: the same words whether it is outside the folders or missing."""

_HOST_ENTRY = re.compile(r"^(\*\.)?([a-z0-9_.-]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$")


def _port(location: Location) -> int | None:
    return location.port if location.port is not None else DEFAULT_PORTS.get(location.scheme)


@dataclass(frozen=True)
class HostRule:
    """``example.com`` (any port), ``host:port``, or ``*.example.com`` (its sub-domains)."""

    host: str
    port: int | None = None
    wildcard: bool = False

    @classmethod
    def parse(cls, entry: str) -> HostRule:
        """A rule from a settings entry; ``ValueError`` when it is not a host pattern."""
        match = _HOST_ENTRY.match(entry.strip().lower())
        if match is None:
            raise ValueError(f"{entry!r} is not a host, *.domain or host:port")
        port = int(match.group(3)) if match.group(3) else None
        return cls(match.group(2).rstrip("."), port, bool(match.group(1)))

    def matches(self, location: Location) -> bool:
        """Whether ``location`` is an http(s) URL on this host (and port).

        Not an ``s3://`` URL: a bucket may be named like any host (``s3://earth-search.aws.element84.com``
        is anyone's to create), so buckets are allowed by ``s3://bucket/`` prefixes alone.
        """
        if location.scheme not in ("http", "https"):
            return False
        if self.port is not None and _port(location) != self.port:
            return False
        if self.wildcard:
            return location.host.endswith("." + self.host)
        return location.host == self.host

    def __str__(self) -> str:
        return ("*." if self.wildcard else "") + self.host + (f":{self.port}" if self.port else "")


@dataclass(frozen=True)
class UrlPrefix:
    """A remote prefix: scheme, host, port and a path prefix matched by whole segments."""

    scheme: str
    host: str
    port: int | None
    path: str

    @classmethod
    def parse(cls, entry: str) -> UrlPrefix:
        """A prefix from a URL (normalised like every fetched URL); ``ValueError`` if it is invalid."""
        try:
            location = parse_location(entry.strip(), "allow-list entry")
        except HostNotAllowedError as exc:
            raise ValueError(str(exc)) from None
        if location.is_local:
            raise ValueError(f"{entry!r} is not an http(s) or s3 URL prefix")
        return cls(location.scheme, location.host, _port(location), location.path)

    def covers(self, location: Location) -> bool:
        """Whether ``location`` lies under this prefix (``/a`` covers ``/a`` and ``/a/x``, not ``/ab``)."""
        if (self.scheme, self.host, self.port) != (location.scheme, location.host, _port(location)):
            return False
        base = self.path.rstrip("/")
        return base == "" or location.path == base or location.path.startswith(base + "/")

    def __str__(self) -> str:
        port = "" if self.port in (None, DEFAULT_PORTS.get(self.scheme)) else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}{self.path}"


@dataclass(frozen=True)
class AllowList:
    """What may be fetched: host rules, URL prefixes, local folders (or anything, for the CLIs)."""

    hosts: tuple[HostRule, ...] = ()
    prefixes: tuple[UrlPrefix, ...] = ()
    folders: tuple[Path, ...] = ()
    any_remote: bool = False
    any_local: bool = False
    base: Path | None = None
    """Folder relative local paths are taken from (default: the current directory)."""
    hide_missing: bool = False
    """Refuse a missing local file with the same error as one outside the folders (the service)."""

    @classmethod
    def of(
        cls, entries: Iterable[str], local_folders: Iterable[str | Path] = (), *, base: Path | None = None
    ) -> Self:
        """The service's list: hosts or URL prefixes, and local folders (blank entries dropped).

        Raises:
            ValueError: An entry is neither a host pattern nor a URL prefix.
        """
        hosts: list[HostRule] = []
        prefixes: list[UrlPrefix] = []
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            if "://" in entry:
                prefixes.append(UrlPrefix.parse(entry))
            else:
                hosts.append(HostRule.parse(entry))
        folders = _folders(local_folders, base)
        return cls(tuple(hosts), tuple(prefixes), folders, base=base, hide_missing=True)

    @classmethod
    def from_prefixes(cls, prefixes: Iterable[str], base: Path | None = None) -> Self:
        """The tiler's list: http(s)/s3 URL prefixes, ``file://`` URLs or local folders.

        Relative folders are taken relative to ``base`` (default: the current directory).

        Raises:
            ValueError: An entry is not a URL prefix or a path.
        """
        remote: list[UrlPrefix] = []
        local: list[str] = []
        for entry in (p.strip() for p in prefixes):
            if not entry:
                continue
            try:
                location = parse_location(entry, "allow-list entry")
            except HostNotAllowedError as exc:
                raise ValueError(str(exc)) from None
            if location.is_local:
                local.append(location.path)
            else:
                remote.append(UrlPrefix.parse(entry))
        return cls((), tuple(remote), _folders(local, base), base=base)

    @classmethod
    def like(cls, allow: AllowList) -> Self:
        """The same entries as ``allow`` (e.g. a ``GdalAllowList`` from a plain list, or back)."""
        return cls(**{f.name: getattr(allow, f.name) for f in dataclasses.fields(allow)})

    @classmethod
    def anything(cls) -> Self:
        """Every http(s)/s3 URL and local path (trusted command-line use), still parsed and normalised."""
        return cls(any_remote=True, any_local=True)

    def without_local(self) -> Self:
        """This list with local files refused: for hrefs found in remote documents."""
        return dataclasses.replace(self, folders=(), any_local=False)

    def describe(self) -> list[str]:
        """The entries as strings (for logs and health checks)."""
        entries = [str(h) for h in self.hosts] + [str(p) for p in self.prefixes]
        entries += [str(f) for f in self.folders]
        if self.any_remote:
            entries.append("any URL")
        if self.any_local:
            entries.append("any local file")
        return entries

    def location(self, url: str, what: str = "URL") -> Location:
        """The checked, normalised ``Location`` of ``url`` (local paths resolved).

        Raises:
            HostNotAllowedError: ``url`` is malformed or not allowed.
        """
        location = parse_location(url, what)
        if location.is_local:
            return Location("file", "", None, self._local(location.path, url, what))
        if self.any_remote or any(rule.matches(location) for rule in self.hosts):
            return location
        if any(prefix.covers(location) for prefix in self.prefixes):
            return location
        # the entries are not listed: an app's answer told any client every host and prefix it may reach,
        # internal ones too (HTTP review); the operator has them in the settings
        raise refuse(what, location.href, "not on the allow-list")

    def check(self, url: str, what: str = "URL") -> str:
        """The normalised href of ``url`` (what to fetch); ``HostNotAllowedError`` unless it is allowed."""
        return self.location(url, what).href

    def allows(self, url: str) -> bool:
        """Whether ``check`` would accept ``url``."""
        try:
            self.location(url)
        except HostNotAllowedError:
            return False
        return True

    def _local(self, raw: str, text: str, what: str) -> str:
        refused = refuse(what, text, LOCAL_REFUSAL)
        if not self.any_local and not self.folders:
            raise refuse(what, text, "local files are not on the allow-list")
        path = Path(raw)
        try:
            resolved = (path if path.is_absolute() else (self.base or Path.cwd()) / path).resolve()
        except (OSError, RuntimeError, ValueError):
            raise refused from None
        if str(resolved).startswith("/vsi"):  # `vsicurl/http:/host/x` taken from `/`: GDAL would fetch it
            raise refuse(what, text, "GDAL virtual file systems (/vsi...) are not allowed")
        inside = self.any_local or any(resolved == f or resolved.is_relative_to(f) for f in self.folders)
        if not inside or (self.hide_missing and not _exists(resolved)):
            raise refused
        return str(resolved)


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; a name the file system cannot hold (too long, ...) does not."""
    try:
        return path.exists()
    except OSError:
        return False


def _folders(entries: Iterable[str | Path], base: Path | None) -> tuple[Path, ...]:
    """The folders of ``entries`` resolved against ``base``, each once (the tiler adds its runs folder)."""
    root = base or Path.cwd()
    return tuple(dict.fromkeys((root / Path(entry)).resolve() for entry in entries if str(entry).strip()))
