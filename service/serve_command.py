"""``lulc serve``: run the classifier service's HTTP API with uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lulc.signals import sigterm_for_servers

if TYPE_CHECKING:
    from service.settings import ServiceSettings


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default LULC_SERVICE_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default LULC_SERVICE_PORT, 8000).")] = None,
) -> None:
    """Serve POST /classify, GET and DELETE /jobs/{id}, GET /models, GET /healthz (LULC_SERVICE_*)."""
    import logging

    from lulc.listening import check_port_free
    from lulc.redaction import redact_logs
    from lulc.settings_types import load_settings
    from service.settings import ServiceSettings

    # the options override LULC_SERVICE_HOST / _PORT and are checked as they are
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = load_settings(ServiceSettings, **overrides)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    redact_logs()  # a SAS token in a URL GDAL or urllib3 names is cut (lulc.sas)
    check_port_free(settings.host, settings.port, "the service", "give another --port (LULC_SERVICE_PORT)")
    check_folders(settings)
    # the app and the server once the settings and folders hold: a refusal took 1.8 s, most of it these
    import uvicorn

    from service.app import create_app

    app = create_app(settings)
    sigterm_for_servers()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=True,
    )


def check_folders(settings: ServiceSettings) -> None:
    """Refuse to start on a models "folder" that is a file, or an output folder no job could write in.

    CLI review: with both wrong the service answered /healthz "ok", listed no models, and each job was a 500.
    A models folder that does not exist yet is only warned of: a deployment may fill it after the start (a
    volume synced by another container), and ``GET /models`` reads it at each request.

    Raises:
        InputError: naming the setting and the path.
    """
    import logging

    from lulc.errors import InputError
    from lulc.writable import check_writable, nearest_existing

    models = settings.models_dir
    if models.exists() and not models.is_dir():
        raise InputError(
            f"LULC_SERVICE_MODELS_DIR {models} is a file: give the folder of the models to serve"
        )
    if not models.exists():
        logging.getLogger("service.app").warning(
            "LULC_SERVICE_MODELS_DIR %s does not exist (yet): no model to serve until it does", models
        )
    output = settings.output_dir
    if output.exists() and not output.is_dir():
        raise InputError(f"LULC_SERVICE_OUTPUT_DIR {output} is a file: give the folder jobs write in")
    where = nearest_existing(output)
    if where is not None:
        check_writable(where, f"LULC_SERVICE_OUTPUT_DIR {output}")


def register(app: typer.Typer) -> None:
    """Add ``lulc serve`` to the root command."""
    app.command("serve")(serve)
