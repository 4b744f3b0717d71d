"""SAS signatures cut from text and logs: GDAL, rasterio and urllib3 name the signed URLs a read opened.

Kept apart from ``lulc.sas`` (which imports the HTTP stack) so that every entry point installs it at no
start-up cost.
"""

from __future__ import annotations

import logging
import re


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
