"""SIGTERM and Ctrl-C for lulc commands: unwind a run, one line; give servers (uvicorn) the defaults back.

Kept out of ``lulc.cli``, whose import registers every package's commands: the server commands import
these while ``lulc.cli`` is still being imported.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(BaseException):
    """SIGTERM arrived (``kill``, ``timeout``, a container stopped): the run unwinds as on Ctrl-C.

    The run's ``finally`` blocks remove its staging files and the folders it made
    (``service.output.staging_dir``).

    A ``BaseException``: neither click (which turns ``KeyboardInterrupt`` into "aborted") nor any
    ``except Exception`` on the way catches it.
    """


class Interrupted(BaseException):
    """Ctrl-C (SIGINT): the run unwinds as on SIGTERM, and ``lulc`` exits 130 with one line.

    Not ``KeyboardInterrupt``: click turns that into "aborted" (exit 1) after printing an empty line.
    """


_held = 0
"""How many ``held()`` blocks the main thread is in."""
_pending: type[BaseException] | None = None
"""The first signal that arrived during ``held()``, raised when the outermost block ends."""


@contextmanager
def held() -> Iterator[None]:
    """Put off Ctrl-C and SIGTERM until the block ends: for the renames that put a result in place.

    A run's outputs move into place in a few renames (an item withdrawn, files replaced, the item written);
    an interrupt between two of them left an earlier result half replaced (review: a run folder without its
    item, a patches file beside the earlier file's item). The signal is not lost: it unwinds the command
    as soon as the block is done, with everything in place. Only ``lulc``'s own handlers defer (Python
    runs signal handlers in the main thread, whichever thread the kernel picked); SIGKILL cannot be put off.
    """
    global _held, _pending
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if _held == 0 and _pending is not None:
            pending, _pending = _pending, None
            raise pending


def _raise_or_defer(exc: type[BaseException]) -> None:
    global _pending
    if _held:
        _pending = _pending or exc
        return
    raise exc


def _on_sigterm(signum: int, frame: object) -> None:
    _raise_or_defer(Terminated)


def _on_sigint(signum: int, frame: object) -> None:
    _raise_or_defer(Interrupted)


def stop_cleanly_on_sigterm() -> None:
    """Make SIGTERM unwind the main thread (``Terminated``) instead of killing the process on the spot.

    Python's default leaves a killed run's staging folder (tens of MB) in ``--out`` until a later run there
    sweeps it a day after. Ctrl-C raises ``Interrupted`` the same way. Servers give both their defaults back
    before uvicorn starts (``sigterm_for_servers``).
    """
    signal.signal(signal.SIGTERM, _on_sigterm)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not if ignored (`lulc ... &`)
        signal.signal(signal.SIGINT, _on_sigint)


def sigterm_for_servers() -> None:
    """Give SIGTERM and SIGINT their defaults before a server starts (``lulc serve``, ``lulc tiler``, a map).

    uvicorn handles both while it serves, then puts back the handlers it found and sends the signal to
    itself again, so the process ends by it once the server has shut down. With ``stop_cleanly_on_sigterm``'s
    handler it printed a false error after a clean shutdown, and ``lulc serve`` waited for its running jobs'
    threads past Kubernetes' grace period. With Python's own SIGINT handler asyncio swallowed the resent
    Ctrl-C, the interpreter shut down under the running jobs, and each was recorded as an internal error
    (500) instead of interrupted (503, settled at the next start as after SIGTERM: jobs review).
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if signal.getsignal(signal.SIGINT) is _on_sigint:  # an ignored one (`lulc serve &`) stays ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)


def raise_wrapped_signal(exc: BaseException) -> None:
    """Raise the ``Interrupted`` or ``Terminated`` that ``exc`` wraps (its cause or context), if any.

    A signal raised while an extension module initialises comes out of the import as pybind11's
    ``ImportError("initialization failed")``, caused by our exception: a Ctrl-C while onnxruntime loaded
    was reported as a broken model, exit 2 (review).
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, (Interrupted, Terminated)):
            raise cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
