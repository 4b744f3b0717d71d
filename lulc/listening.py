"""Whether a server can listen where it is told to, asked before it starts (one line, not uvicorn's six)."""

from __future__ import annotations

import errno
import socket

from lulc.errors import InputError


def check_port_free(host: str, port: int, what: str, hint: str) -> None:
    """Refuse a ``host:port`` that cannot be bound (in use, or a host name that does not resolve).

    ``what`` names the server in the message (``the web map``), ``hint`` the way to another port.

    Raises:
        InputError: the port cannot be bound on ``host``.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as exc:
            if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
                hint = "give an address of this machine with --host, e.g. 127.0.0.1, or 0.0.0.0 for all"
            raise InputError(
                f"{what} cannot listen on {host}:{port} ({exc.strerror or exc}): {hint}"
            ) from exc
