"""``lulc serve``: run the classifier service's HTTP API with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from lulc.signals import sigterm_for_servers


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default LULC_SERVICE_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default LULC_SERVICE_PORT, 8000).")] = None,
) -> None:
    """Serve POST /classify, GET and DELETE /jobs/{id}, GET /models, GET /healthz (LULC_SERVICE_*)."""
    import logging

    import uvicorn
    from pydantic import ValidationError

    from lulc.errors import InputError, validation_problems
    from lulc.listening import check_port_free
    from service.app import create_app
    from service.settings import ServiceSettings

    # the options override LULC_SERVICE_HOST / _PORT and are checked as they are
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    try:
        settings = ServiceSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise InputError(f"invalid LULC_SERVICE_* settings or options: {validation_problems(exc)}") from exc
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    check_port_free(settings.host, settings.port, "the service", "give another --port (LULC_SERVICE_PORT)")
    app = create_app(settings)
    sigterm_for_servers()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=True,
    )


def register(app: typer.Typer) -> None:
    """Add ``lulc serve`` to the root command."""
    app.command("serve")(serve)
