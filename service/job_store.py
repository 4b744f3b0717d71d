"""Job records on disk, so finished jobs outlive the process; and the sweep of killed runs' staging folders.

Each job is one small JSON file, ``<output_dir>/.jobs/<job id>.json``, written atomically (temporary
file + rename) when it starts and again when it ends: its state, times, what the submitter noted, and its
result or error. A record still "running" that this process did not write is a job an earlier process
never finished (``service.jobs``: reported as interrupted). Records beyond the newest ``keep`` go. A result
that is a dataclass (the service's ``Outcome``) and an error are stored with their class's import path
and rebuilt from it, only for classes of this project (or Python's own exceptions); anything else is
left out rather than guessed.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.output import STALE_STAGING_SECONDS, remove_stale_staging

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_OWN_MODULES = ("lulc.", "service.", "builtins")


def _class_path(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def _load_class(path: str) -> type | None:
    """The class at ``module:qualname`` if it belongs to this project (or builtins), else None."""
    module_name, _, qualname = path.partition(":")
    if not (module_name == "builtins" or module_name.startswith(_OWN_MODULES)):
        return None
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        return None
    return target if isinstance(target, type) else None


def encode_error(error: BaseException) -> dict[str, Any]:
    """An error as JSON: its class path and message (plus ``retry_after`` where it has one)."""
    record: dict[str, Any] = {"class": _class_path(error), "message": str(error)}
    if isinstance(getattr(error, "retry_after", None), int):
        record["retry_after"] = error.retry_after  # type: ignore[attr-defined]
    return record


def decode_error(record: dict[str, Any]) -> BaseException:
    """The error ``encode_error`` described: same class (so the same HTTP status), same message."""
    cls = _load_class(str(record.get("class", "")))
    message = str(record.get("message", ""))
    if cls is None or not issubclass(cls, BaseException):
        return RuntimeError(message)
    error: BaseException = cls.__new__(cls)
    BaseException.__init__(error, message)
    if "retry_after" in record:
        error.retry_after = record["retry_after"]  # type: ignore[attr-defined]
    return error


def encode_result(result: Any) -> dict[str, Any] | None:
    """A dataclass result as JSON (class path + fields); None for results that are not dataclasses."""
    if not dataclasses.is_dataclass(result) or isinstance(result, type):
        return None
    return {"class": _class_path(result), "fields": dataclasses.asdict(result)}


def decode_result(record: dict[str, Any] | None) -> Any:
    """The dataclass ``encode_result`` described, or None if its class is not ours any more."""
    if not record:
        return None
    cls = _load_class(str(record.get("class", "")))
    if cls is None or not dataclasses.is_dataclass(cls):
        return None
    try:
        return cls(**record.get("fields", {}))
    except TypeError:  # the dataclass changed shape since the record was written
        return None


class JobStore:
    """Jobs' records under ``<output_dir>/.jobs/``."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = Path(output_dir)
        self.folder = self.output_dir / ".jobs"
        self.opened = datetime.now(UTC)

    def path(self, job_id: str) -> Path | None:
        """Where a job's record lives; None for an id that cannot be a job's (no path tricks)."""
        return self.folder / f"{job_id}.json" if _JOB_ID.match(job_id) else None

    def save(self, record: dict[str, Any], keep: int | None = None) -> None:
        """Write one job's record atomically (a reader sees the old record or the new, never half).

        With ``keep``, the oldest finished records beyond the newest ``keep`` are deleted: the folder
        holds what the service remembers, not every job it ever ran.
        """
        path = self.path(str(record["id"]))
        if path is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(record, sort_keys=True, default=_json_default)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        if keep is not None:
            self._prune(keep)

    def _prune(self, keep: int) -> None:
        records = []
        for path in self.folder.glob("*.json"):
            try:
                records.append((path.stat().st_mtime_ns, path))
            except FileNotFoundError:
                continue
        for _, path in sorted(records, reverse=True)[keep:]:
            record = self.load(path.stem)
            if record is not None and record.get("finished") is None and self._ours(record):
                continue  # running in this process: its record is rewritten when it ends
            path.unlink(missing_ok=True)

    def _ours(self, record: dict[str, Any]) -> bool:
        """Whether a running record was written since this store opened (not by an earlier process)."""
        try:
            return datetime.fromisoformat(str(record["created"])) >= self.opened
        except (KeyError, ValueError, TypeError):
            return False

    def remove(self, job_id: str) -> None:
        """Delete a job's record (if any)."""
        path = self.path(job_id)
        if path is not None:
            path.unlink(missing_ok=True)

    def load(self, job_id: str) -> dict[str, Any] | None:
        """A job's record, or None if there is none (or it is unreadable)."""
        path = self.path(job_id)
        if path is None:
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def remove_stale_staging(self, older_than: float = STALE_STAGING_SECONDS) -> list[Path]:
        """Delete killed runs' staging folders in the output folder and each job folder; returns them.

        Job folders left empty are removed too. See ``service.output.remove_stale_staging``.
        """
        if not self.output_dir.is_dir():
            return []
        removed = remove_stale_staging(self.output_dir, older_than)
        for folder in self.output_dir.iterdir():
            if folder.is_dir() and _JOB_ID.match(folder.name):
                gone = remove_stale_staging(folder, older_than)
                removed += gone
                if gone and not any(folder.iterdir()):
                    folder.rmdir()
        return removed


def _json_default(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a job record")
