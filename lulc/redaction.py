"""What the apps' answers and logs must not tell: SAS signatures, the server's own paths.

GDAL, rasterio and urllib3 name the signed URLs a read opened; errors name files by their resolved paths.

Kept apart from ``lulc.sas`` (which imports the HTTP stack) so that every entry point installs it at no
start-up cost.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path


def redact_signatures(text: str) -> str:
    """``text`` with the value of every ``sig=`` query parameter replaced by ``...``.

    For what GDAL says of a URL it opened signed, before it is shown or logged.
    """
    return re.sub(r"(?<=[?&]sig=)[^\s&'\"]+", "...", text)


class RedactSignatures(logging.Filter):
    """A log handler's filter: every record's message and traceback with its ``sig=`` values cut.

    GDAL's errors chained under ours, rasterio's debug records and urllib3's request lines name the signed
    URLs a read opened.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` redacted (always kept)."""
        message = record.getMessage()
        if "sig=" in message:
            record.msg, record.args = redact_signatures(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and "sig=" in record.exc_text:
            record.exc_text = redact_signatures(record.exc_text)
        return True


def redact_logs() -> None:
    """``RedactSignatures`` on every handler of the root logger and on Python's last-resort handler."""
    for handler in [*logging.getLogger().handlers, logging.lastResort]:
        if handler is not None and not any(isinstance(f, RedactSignatures) for f in handler.filters):
            handler.addFilter(RedactSignatures())


def relative_folders(folders: Iterable[str | Path]) -> dict[str, str]:
    """Each relative local folder of ``folders`` resolved, with the folder as set: what answers say instead.

    An app's errors name files by their resolved paths; a client names them relative to the folders as the
    operator set them (``runs/x.tif``), and the server's absolute paths are not its business (HTTP review).
    URLs and absolute folders are left out, and so is a folder resolving to the file system's root.
    """
    texts: dict[str, str] = {}
    for folder in folders:
        text = str(folder)
        if "://" in text or text.startswith(("/", "~")):
            continue
        try:
            absolute = str(Path(text).resolve())
        except (OSError, RuntimeError, ValueError):
            continue
        if absolute != "/":  # the first of two entries for one folder, as the allow-list has it first
            texts.setdefault(absolute, text.rstrip("/") or text)
    return texts


def hide(text: str, texts: Mapping[str, str]) -> str:
    """``text`` with every key of ``texts`` replaced by its value, the longest first, as a whole path.

    A key is replaced where a path separator, a quote, a delimiter, a full stop or the end follows it and
    no path character comes before it (a ``file://`` before it goes with it): not inside a longer name
    (``/srv/runs`` in ``/srv/runs2``) nor at the end of a relative one (``/etc/passwd`` in
    ``runs/../../../etc/passwd``, the client's own text).
    """
    for key in sorted(texts, key=len, reverse=True):
        if key:
            pattern = r"(?<![\w.~/-])(?:file://)?" + re.escape(key) + r"(?=$|[/\s'\"(),:;\]]|\.(?:\s|$))"
            text = re.sub(pattern, texts[key].replace("\\", r"\\"), text)
    return text
