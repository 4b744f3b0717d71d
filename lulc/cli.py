"""The ``lulc`` command line: one program; each package adds its subcommands through an entry point.

Packages declare ``register(app)`` functions in the ``lulc.commands`` entry-point group (see
``pyproject.toml``), as rasterio's ``rio`` finds its subcommands: this root names none of them, so the
core imports nothing above it, and a container that installed only some packages offers just their commands.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer

from lulc.errors import LulcError

COMMANDS_GROUP = "lulc.commands"
"""Entry-point group of ``register(app: typer.Typer) -> None`` functions."""

app = typer.Typer(
    name="lulc",
    help="STAC-driven land-use / land-cover classification: make data, train, classify, tile.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands(target: typer.Typer) -> None:
    """Call every installed package's ``register``; a package whose code is absent is skipped.

    Heavy libraries are imported inside the commands, so ``lulc --help`` works in every container whatever
    extras it installed.
    """
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        module_name = entry.value.partition(":")[0]
        try:
            register = entry.load()
        except ModuleNotFoundError as exc:  # the package is not in this image
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            continue
        register(target)


_register_commands(app)


def error_line(error: LulcError) -> str:
    """The one line a user sees for an error: no wrapping, newlines folded, whatever the terminal."""
    return "error: " + " ".join(str(error).split())


def main() -> None:
    """Entry point: run the app, turning lulc-stac errors into one clear line on stderr and exit code 2."""
    try:
        app()
    except LulcError as exc:
        print(error_line(exc), file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
