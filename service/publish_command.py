"""``lulc publish``: copy a run folder to where maps are served from, as the service publishes its runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def publish_command(
    run: Annotated[Path, typer.Argument(help="A run folder (classes.tif, ..., item.json).")],
    destination: Annotated[
        str, typer.Argument(help="Local folder, or s3://bucket/prefix (LULC_SERVICE_S3_* settings).")
    ],
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace a run already published there (else refused); kept if the copy fails.",
        ),
    ] = False,
) -> None:
    """Publish a run folder as the service does: files, then its item; links out of the folder dropped."""
    # What the Kubernetes Job templates run after `lulc classify`: the store's claim keeps two publications
    # of one destination apart, a failed copy removes what it wrote, the item appears only when complete.
    from service.output import product_in, refuse_here_or_root, refuse_other_runs
    from service.settings import ServiceSettings
    from service.workflow import publish_run, run_folder, s3_options

    if "://" not in destination:
        refuse_here_or_root(Path(destination), "destination", "name a folder of the run's own")
        # a user's own files (review: overwritten), or a series' or model's folder (a map's files mixed in)
        refuse_other_runs(Path(destination), "destination", product_in(run_folder(run)))
    url = publish_run(run, destination, s3=s3_options(ServiceSettings()), replace=overwrite)
    typer.echo(f"published {run} to {url}")
