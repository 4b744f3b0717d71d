"""What caches may keep: with a bearer token, tiles and legends are the caller's own, not the public's.

Without a token the configured ``Cache-Control`` is sent as it is (``public, max-age=...``: any cache may
share a tile). With one, a shared cache (a CDN, a corporate proxy) that kept an authorised answer would
hand it to anyone asking for the same URL: the header is made ``private`` and every answer says it varies
with ``Authorization``.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SHARED_ONLY = ("public", "s-maxage")
"""Directives that only open or tune shared caches: dropped from a private header."""


def private_cache_control(value: str) -> str:
    """``value`` with ``private`` in place of ``public`` (and without ``s-maxage``), other directives kept.

    ``public, max-age=3600`` becomes ``private, max-age=3600``; ``max-age=60``, ``private, max-age=60``.
    """
    directives = [part.strip() for part in value.split(",") if part.strip()]
    kept = [d for d in directives if d.split("=", 1)[0].strip().lower() not in (*SHARED_ONLY, "private")]
    return ", ".join(["private", *kept])


def cache_control(value: str, protected: bool) -> str:
    """The Cache-Control header the tiler sends with cached paths: ``value``, made private with a token."""
    return private_cache_control(value) if protected else value


class VaryOnAuthorization:
    """ASGI middleware adding ``Authorization`` to the ``Vary`` header of every answer (a token is set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add ``Authorization`` to ``Vary`` as the answer starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_varying(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).add_vary_header("Authorization")
            await send(message)

        await self.app(scope, receive, send_varying)
