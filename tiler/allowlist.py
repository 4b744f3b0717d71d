"""The tiler's side of the one allow-list (``lulc.allowlist``): refusals as 403s, a FastAPI dependency."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Query
from starlette.concurrency import run_in_threadpool

from lulc import allowlist
from lulc.gdal_env import gdal_href
from lulc.urls import HostNotAllowedError
from tiler.errors import NotAllowedError


@dataclass(frozen=True)
class AllowList(allowlist.AllowList):
    """``lulc.allowlist.AllowList`` whose refusals are the tiler's ``NotAllowedError`` (403).

    Build it with ``AllowList.from_prefixes`` (URL prefixes and local folders, ``LULC_TILER_ALLOW``).
    """

    probe_timeout: float = 10.0
    """Seconds each request of a redirect check (``gdal_path``) may take (``upstream_timeout_seconds``)."""

    def check(self, url: str, what: str = "url") -> str:
        """The normalised location of ``url`` if it is allowed, else ``NotAllowedError``."""
        try:
            return super().check(url, what)
        except HostNotAllowedError as exc:
            raise NotAllowedError(str(exc)) from None

    def gdal_path(self, url: str, what: str = "url") -> str:
        """What GDAL may open for ``url``: ``check`` plus http(s) redirects checked (``gdal_href``).

        The checked URL itself, not where its redirects led: GDAL follows them again (parsed alike), so a
        signed redirect stays fresh; the check's answer is cached for 10 minutes, which a short-lived
        signature would not outlive (review), and the service opens hrefs so too.
        """
        try:
            resolved = gdal_href(url, self, what, timeout=self.probe_timeout)
            if resolved.startswith(("http://", "https://")):
                return self.location(url, what).href
            return resolved
        except HostNotAllowedError as exc:
            raise NotAllowedError(str(exc)) from None


def allowed_path_dependency(allow: AllowList) -> Callable[[str], Awaitable[str]]:
    """A FastAPI dependency (TiTiler ``path_dependency``) returning the checked ``url`` query parameter.

    Local paths and non-http URLs are checked inline (string work and a path resolution); an http(s)
    URL's redirect check may ask its server once (then cached), so it runs in the thread pool.
    """

    async def dataset_path(
        url: Annotated[
            str, Query(description="Dataset path or URL; it must lie under a prefix of the allow-list.")
        ],
    ) -> str:
        checked = allow.check(url)
        if checked.startswith(("http://", "https://")):
            return await run_in_threadpool(allow.gdal_path, checked)
        return checked

    return dataset_path
