"""The hosts the service may fetch from: an allow-list of hosts, URL prefixes and (optionally) local files."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlparse

from lulc.errors import LimitError

REMOTE_SCHEMES = ("http", "https", "s3", "gs", "az")
"""URL schemes read over the network; the tiler's prefix allow-list uses the same set."""


class HostNotAllowedError(LimitError):
    """A URL points at a host that is not on the service's allow-list."""


def _strip_vsi(url: str) -> str:
    """``/vsicurl/https://h/x`` -> ``https://h/x``; ``/vsis3/b/k`` -> ``s3://b/k``."""
    if url.startswith("/vsicurl/"):
        return url[len("/vsicurl/") :]
    for prefix, scheme in (("/vsis3/", "s3"), ("/vsigs/", "gs"), ("/vsiaz/", "az")):
        if url.startswith(prefix):
            return f"{scheme}://{url[len(prefix) :]}"
    return url


@dataclass(frozen=True)
class AllowList:
    """Entries are hosts (``example.com``, ``*.example.com``, ``host:port``) or URL prefixes (``https://h/p/``).

    Local files (plain paths, ``file://``, other ``/vsi`` paths) are allowed only with ``allow_local``.
    """

    entries: tuple[str, ...] = ()
    allow_local: bool = False

    @classmethod
    def of(cls, entries: Iterable[str], allow_local: bool = False) -> AllowList:
        """An allow-list from settings values (blank entries dropped)."""
        return cls(tuple(e.strip() for e in entries if e.strip()), allow_local)

    def allows(self, url: str) -> bool:
        """Whether the service may read ``url``."""
        target = _strip_vsi(url)
        parsed = urlparse(target)
        scheme = parsed.scheme.lower()
        if scheme not in REMOTE_SCHEMES:
            return self.allow_local and (scheme in ("", "file") or len(scheme) == 1)
        host = (parsed.hostname or "").lower()
        host_port = f"{host}:{parsed.port}" if parsed.port else host
        for entry in self.entries:
            if "://" in entry:
                if target.startswith(entry) and (
                    entry.endswith("/") or target[len(entry) : len(entry) + 1] in ("", "/", "?")
                ):
                    return True
                continue
            pattern = entry.lower()
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]):
                    return True
            elif pattern in (host, host_port):
                return True
        return False

    def check(self, url: str, what: str) -> None:
        """Raise ``HostNotAllowedError`` naming ``what`` and the URL unless it is allowed."""
        if not self.allows(url):
            kind = "local file" if urlparse(_strip_vsi(url)).scheme in ("", "file") else "host"
            raise HostNotAllowedError(
                f"{what} {url!r} is not on this service's allow-list ({kind} not allowed; allowed: "
                f"{', '.join(self.entries) or 'nothing'}{', local files' if self.allow_local else ''})"
            )
