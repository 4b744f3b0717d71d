"""The ``lulc`` command line: one program, a subcommand per job, each registered by its package."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from service.errors import LulcError

app = typer.Typer(
    name="lulc",
    help="STAC-driven land-use / land-cover classification: make data, train, classify, tile.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines ``register(app)``; heavy libraries are imported inside the commands, so
# `lulc --help` works in every container whatever extras it installed.
COMMAND_MODULES = (
    "training.demo_commands",
    "training.commands",
    "service.commands",
    "service.serve_command",
    "tiler.commands",
    "service.demo_command",
)

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:  # a package not written yet or not installed
        if _exc.name != _name:
            raise
        continue
    _module.register(app)


def main() -> None:
    """Entry point: run the app, turning lulc-stac errors into one clear line and exit code 2."""
    err = Console(stderr=True)
    try:
        app()
    except LulcError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
