"""``lulc tiler``: serve class maps, legend, class areas and the web map with uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lulc.signals import sigterm_for_servers


def register(app: typer.Typer) -> None:
    """Add the ``tiler`` command to the ``lulc`` program."""
    app.command("tiler")(tiler)


def tiler(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (env LULC_TILER_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (env LULC_TILER_PORT).")] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            help="Folder or http(s) URL prefix the tiler may read (repeatable; replaces LULC_TILER_ALLOW).",
        ),
    ] = None,
    runs: Annotated[
        Path | None,
        typer.Option(help="Folder of classification runs for the web map (env LULC_TILER_RUNS_DIR)."),
    ] = None,
    models: Annotated[
        Path | None,
        typer.Option(help="Folder of model contracts to register as colormaps (env LULC_TILER_MODELS_DIR)."),
    ] = None,
) -> None:
    """Run the tiler: coloured class tiles, legend, class areas, imagery backdrop and the web map."""
    from lulc.errors import InputError
    from lulc.listening import check_port_free
    from lulc.redaction import redact_logs
    from lulc.settings_types import load_settings
    from tiler.settings import TilerSettings

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if allow:
        overrides["allow"] = list(allow)
    if runs is not None:
        if not runs.is_dir():  # a typo gave an empty web map (CLI review)
            state = "is not a folder" if runs.exists() else "does not exist"
            raise InputError(f"--runs {runs} {state}: give the folder holding the runs' folders")
        overrides["runs_dir"] = runs
    if models is not None:
        overrides["models_dir"] = models
    settings = load_settings(TilerSettings, **overrides)
    check_port_free(settings.host, settings.port, "the tiler", "give another --port (LULC_TILER_PORT)")
    # the app and the server once the settings hold: a refusal took 2.0 s, most of it these
    import uvicorn

    from tiler.app import MISSING_LIBRARY, create_app, web_map_library_present

    application = create_app(settings)
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    if not web_map_library_present():
        typer.echo(MISSING_LIBRARY, err=True)
    typer.echo(f"web map: http://{shown}:{settings.port}/")
    sigterm_for_servers()
    redact_logs()  # a SAS token in a URL GDAL names is cut from the warnings logged (lulc.redaction)
    uvicorn.run(application, host=settings.host, port=settings.port, log_level="info")
