"""The ``lulc`` command line: one program; each package adds its subcommands through an entry point.

Packages declare ``register(app)`` functions in the ``lulc.commands`` entry-point group (see
``pyproject.toml``), as rasterio's ``rio`` finds its subcommands: this root names none of them, so the
core imports nothing above it, and a container that installed only some packages offers just their commands.
"""

from __future__ import annotations

import gc
import os
import sys
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import Annotated, NoReturn, TypeGuard

import typer
from pydantic import ValidationError

from lulc.allocator import limit_arenas
from lulc.errors import LulcError, UpstreamError, validation_problems
from lulc.redaction import redact_logs
from lulc.signals import Interrupted, Terminated, stop_cleanly_on_sigterm

COMMANDS_GROUP = "lulc.commands"
"""Entry-point group of ``register(app: typer.Typer) -> None`` functions."""

app = typer.Typer(
    name="lulc",
    help="STAC-driven land-use / land-cover classification: make data, train, classify, tile.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


TEMPORARY_FAILURE = 75
"""Exit code of an ``UpstreamError`` (``EX_TEMPFAIL`` of sysexits.h): retry later, the input was fine."""

DISTRIBUTION = "lulc-stac"
"""The installed distribution whose version ``lulc --version`` prints."""


def version_line() -> str:
    """``lulc <version>``: the installed package's version (``importlib.metadata``)."""
    try:
        found = version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        found = "unknown (not installed)"
    return f"lulc {found}"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """Keep ``lulc`` a group of subcommands even where one package alone is installed.

    Typer runs a lone command as the program itself (``lulc tiler`` would then be ``lulc`` with an extra
    argument): an image that carries only the tiler still answers ``lulc tiler``.
    """


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


def error_line(error: BaseException) -> str:
    """The one line a user sees for an error: no wrapping, newlines folded, whatever the terminal."""
    return "error: " + " ".join(str(error).split())


def usage_line(error: typer.TyperException, argv: list[str] | None = None) -> str:
    """One line for a command-line usage error (bad option value, missing option, unknown command).

    An option's missing value comes without the command's context: ``argv``'s first word, when it is a
    command, names it (the line said ``lulc``, and pointed at ``lulc --help``, for ``lulc train --out``).
    """
    context = getattr(error, "ctx", None)
    where = context.command_path if context is not None else "lulc"
    words = [word for word in (argv if argv is not None else sys.argv[1:]) if not word.startswith("-")]
    if context is None and words:
        commands = getattr(typer.main.get_command(app), "commands", {})
        if words[0] in commands:
            where = f"lulc {words[0]}"
    format_message = getattr(error, "format_message", None)
    message = " ".join((format_message() if format_message else str(error)).split())
    return f"error: {where}: {message} (see '{where} --help')"


def settings_line(error: ValidationError) -> str:
    """One line for invalid settings: each problem as ``field: message``."""
    return "error: invalid " + error.title + ": " + validation_problems(error)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; every error ends as one unwrapped line on stderr.

    lulc-stac errors (``LulcError``), usage errors (bad or missing options: typer would draw a rich box
    wrapped to the terminal's width) and invalid settings exit with code 2, an upstream's failure
    (``UpstreamError``: trying again later may succeed) with 75; an unexpected error exits with 1
    and names its type (``LULC_TRACEBACK=1`` shows the traceback instead). Before anything runs, glibc's
    malloc arenas are capped (``lulc.allocator``).
    """
    limit_arenas()
    stop_cleanly_on_sigterm()
    redact_logs()  # warnings naming a signed URL (lulc.sas) lose its signature
    not_utf8 = next((a for a in (sys.argv[1:] if argv is None else argv) if not _is_utf8(a)), None)
    if not_utf8 is not None:  # CLI review: "unexpected UnicodeEncodeError" after the work, writing an item
        shown = not_utf8.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        _fail(
            f"error: the argument '{shown}' is not UTF-8 text: lulc writes the names it is given into JSON "
            "and STAC documents, which are UTF-8; rename the file or folder",
            2,
        )
    try:
        code = _run(argv)
    except Terminated:
        _fail("error: terminated (SIGTERM); the run's staging files were removed", 143)
    except Interrupted:
        _fail("error: interrupted (Ctrl-C); the run's staging files were removed", 130)
    except LulcError as exc:  # 75 (EX_TEMPFAIL): an upstream failed, trying again later may succeed
        _fail(error_line(exc), TEMPORARY_FAILURE if isinstance(exc, UpstreamError) else 2)
    except typer.Abort:
        _fail("error: aborted", 1)
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `lulc` alone: its help, as before
            getattr(exc, "show")()  # noqa: B009
            sys.exit(2)
        _fail(usage_line(exc, argv), int(getattr(exc, "exit_code", 2)))
    except ValidationError as exc:  # settings from options or LULC_* variables
        _fail(settings_line(exc), 2)
    except Exception as exc:
        if os.environ.get("LULC_TRACEBACK"):
            raise
        if _refused_path(exc):  # below a file, /proc, a name over 255 bytes, ...: bad input
            _fail(os_error_line(exc), 2)
        _fail(f"error: unexpected {type(exc).__name__}: " + " ".join(str(exc).split()), 1)
    sys.exit(code if isinstance(code, int) else 0)


def _is_utf8(argument: str) -> bool:
    """Whether a command-line argument was UTF-8 bytes (Python keeps other bytes as lone surrogates)."""
    try:
        argument.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _run(argv: list[str] | None) -> object:
    """Run the app; as the program (``argv`` None), freeze the heap after it, so exiting skips a collection.

    Python's finalisation runs the cyclic garbage collector over every object the imports made (about 90,000
    after ``lulc classify``): 0.15-0.2 s of one core after the work is done, a seventh of classifying the
    tutorial's 0.3 Mpx scene (``python -m bench.shutdown``). Frozen objects are not traversed; files and
    datasets are closed by then, and ``atexit`` handlers (temporary folders, Dask clusters) still run.
    Callers that go on running (tests, notebooks: ``main(argv)``) keep their heap collectable.
    """
    try:
        return app(args=argv, standalone_mode=False)
    finally:
        if argv is None:
            gc.freeze()


def _refused_path(exc: Exception) -> TypeGuard[OSError]:
    """Whether ``exc`` is the system refusing a path: an ``OSError`` naming a file, not a raster read error.

    rasterio's errors are ``OSError``s too, without a file name: a corrupt raster stays "unexpected".
    """
    from rasterio.errors import RasterioError

    return isinstance(exc, OSError) and exc.filename is not None and not isinstance(exc, RasterioError)


def os_error_line(exc: OSError) -> str:
    """``error: <the system's reason>: <the path>`` in one line (a ``FileNotFoundError`` and the like)."""
    reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"error: {reason}: {' -> '.join(paths)}" if paths else f"error: {reason}"


def _fail(line: str, code: int) -> NoReturn:
    print(line, file=sys.stderr, flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
