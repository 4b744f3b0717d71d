"""A small in-process job registry: a bounded pool of workers, no queue, finished jobs kept for polling.

With a ``JobStore`` every finished job is also written to disk, so polling it works after a restart; a job
an earlier process left running is settled as interrupted (its staging folders deleted) when found.

A finished job holds what its work returned and its error's class and message, never the exception itself:
a traceback keeps the work's frames alive, with everything they referenced (a request's whole AOI). Work
whose result is large returns a summary for polls (the service: ``service.app.JobSummary``).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from lulc.errors import InputError, LimitError, LulcError
from service.job_store import JobStore, decode_error, decode_result, encode_error, encode_result
from service.output import STAGING_PREFIX, last_change, remove_stale_staging

log = logging.getLogger("service.jobs")


class BusyError(LimitError):
    """Every job slot is taken; the caller should retry later."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @classmethod
    def at_limit(cls, what: str, limit: int, retry_after: int) -> BusyError:
        """``<what>, the limit is <limit>: retry in <retry_after> s``, with its ``Retry-After``."""
        return cls(f"{what}, the limit is {limit}: retry in {retry_after} s", retry_after)


class JobInterruptedError(LulcError):
    """The service stopped (restart, scale-down) while the job ran; its work is lost: submit it again.

    Not a bug of the service: reported with 503 (``service.http_errors``), as a retry will do.
    """


class JobNotFoundError(InputError):
    """No job has this id (never existed, or forgotten after finishing long ago)."""


class JobCancelledError(LulcError):
    """The job was cancelled before it finished: it stopped at its next block and left no outputs.

    By ``DELETE /jobs/{id}``, or because the client of its synchronous request went away.
    """


class JobFinishedError(LulcError):
    """The job has already finished: there is nothing left to cancel."""


class JobState(StrEnum):
    """Life cycle of a job."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Job:
    """One unit of work and what became of it (read it under the registry's lock, or after ``done``)."""

    id: str
    created: datetime = field(default_factory=_now)
    state: JobState = JobState.RUNNING
    finished: datetime | None = None
    result: Any = None
    """What the work returned (kept for polls: make it small)."""
    error: BaseException | None = None
    """Why it failed: the error's class and message (no traceback, no chained errors)."""
    progress: tuple[int, int] | None = None
    """Steps done and total steps, as reported by the work function."""
    info: dict[str, Any] = field(default_factory=dict)
    """What the submitter wants to remember about the job (e.g. its AOI's area)."""
    done: threading.Event = field(default_factory=threading.Event)
    cancelling: threading.Event = field(default_factory=threading.Event)
    """Set by ``cancel``: the work stops at its next progress step."""

    def start(self, description: str, total: int) -> None:
        """A stage of ``total`` steps begins (``lulc.progress.Progress``, called from the work's thread).

        Raises:
            JobCancelledError: the job was cancelled.
        """
        self._check_cancelled()
        self.progress = (0, total)

    def advance(self, steps: int = 1) -> None:
        """``steps`` more steps are done (a block written); a cancelled job stops here.

        Raises:
            JobCancelledError: the job was cancelled.
        """
        done, total = self.progress or (0, 0)
        self.progress = (done + steps, total)
        self._check_cancelled()

    def cancel(self) -> None:
        """Ask the work to stop at its next step (the block in hand is finished, nothing is published)."""
        self.cancelling.set()

    def _check_cancelled(self) -> None:
        if self.cancelling.is_set():
            raise JobCancelledError(f"job {self.id} was cancelled before it finished")

    def note(self, message: str) -> None:
        """Notes are not kept for jobs."""

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finished; False on timeout."""
        return self.done.wait(timeout)

    def record(self) -> dict[str, Any]:
        """The job as JSON for a ``JobStore`` (written when it starts and when it ends)."""
        return {
            "id": self.id,
            "state": self.state.value,
            "created": self.created.isoformat(),
            "finished": self.finished.isoformat() if self.finished else None,
            "progress": list(self.progress) if self.progress else None,
            "info": self.info,
            "result": encode_result(self.result),
            "error": encode_error(self.error) if self.error is not None else None,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Job:
        """A finished job back from its ``record()``."""
        progress = record.get("progress")
        job = cls(
            id=str(record["id"]),
            created=datetime.fromisoformat(record["created"]),
            state=JobState(record["state"]),
            finished=datetime.fromisoformat(record["finished"]) if record.get("finished") else None,
            result=decode_result(record.get("result")),
            error=decode_error(record["error"]) if record.get("error") else None,
            progress=(int(progress[0]), int(progress[1])) if progress else None,
            info=dict(record.get("info") or {}),
        )
        if job.state is JobState.RUNNING:  # recorded by an earlier process, which stopped before it ended
            job.state = JobState.FAILED
            job.error = JobInterruptedError("the service restarted while this job ran; submit it again")
            job.finished = job.finished or _now()  # a ``JobRegistry`` sets when its process started
        if job.state is JobState.SUCCEEDED and job.result is None:  # its result class changed since
            job.state = JobState.FAILED
            job.error = RuntimeError("the job's stored result can no longer be read")
        job.done.set()
        return job


class JobRegistry:
    """Runs at most ``max_concurrent`` jobs at once; refuses more with ``BusyError`` instead of queueing.

    Finished jobs are remembered (the oldest forgotten beyond ``keep``) so clients can poll them; with a
    ``store``, each is also written to disk when it finishes and read back when a poll asks for a job this
    process does not hold (after a restart). Starting with a store also removes killed runs' staging
    folders from its output folder: at once for a job whose record an earlier process left "running" (the
    job is then recorded as failed with ``JobInterruptedError``), after a day for any other. With
    ``scratch`` (jobs published elsewhere, their local folders not kept) such a job's whole folder goes: a
    job killed while publishing had left its complete run there.
    """

    def __init__(
        self,
        max_concurrent: int,
        *,
        keep: int = 1000,
        retry_after: int = 30,
        store: JobStore | None = None,
        scratch: bool = False,
    ) -> None:
        if max_concurrent < 1:
            raise InputError(f"max_concurrent must be at least 1, not {max_concurrent}")
        self.max_concurrent = max_concurrent
        self.keep = keep
        self.retry_after = retry_after
        self.store = store
        self.scratch = scratch
        self._lock = threading.Lock()
        self._running = 0
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._executor = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="lulc-job")
        if store is not None:
            store.remove_stale_staging()
            self._settle_interrupted_with_staging(store)

    @property
    def running(self) -> int:
        """Number of jobs currently running."""
        with self._lock:
            return self._running

    def check_free(self) -> None:
        """Refuse now, before a request's costlier checks, when no job could start (``submit`` decides).

        Raises:
            BusyError: ``max_concurrent`` jobs are already running.
        """
        with self._lock:
            if self._running >= self.max_concurrent:
                raise self._busy()

    def _busy(self) -> BusyError:
        running = f"{self._running} classification job(s) running"
        return BusyError.at_limit(running, self.max_concurrent, self.retry_after)

    def submit(self, work: Callable[[Job], Any], info: dict[str, Any] | None = None) -> Job:
        """Start ``work(job)`` in a worker thread and return the job at once.

        Raises:
            BusyError: ``max_concurrent`` jobs are already running.
        """
        with self._lock:
            if self._running >= self.max_concurrent:
                raise self._busy()
            self._running += 1
            job = Job(id=uuid.uuid4().hex, info=dict(info or {}))
            self._jobs[job.id] = job
        try:
            future = self._executor.submit(work, job)
        except RuntimeError:  # executor shut down
            with self._lock:
                self._running -= 1
                del self._jobs[job.id]
            raise
        self._store(job)  # running: a restart then finds it and says so, not "unknown job"
        future.add_done_callback(lambda f: self._finish(job, f))
        return job

    def get(self, job_id: str) -> Job:
        """The job with this id.

        Raises:
            JobNotFoundError: unknown id.
        """
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None and self.store is not None:
            record = self.store.load(job_id)
            job = self._settled(record) if record is not None else None
        if job is None:
            raise JobNotFoundError(f"no job {job_id!r} (unknown, or finished long ago and forgotten)")
        return job

    def cancel(self, job_id: str) -> Job:
        """Ask a running job to stop at its next block; returns it (still running until it stops).

        Raises:
            JobNotFoundError: unknown id.
            JobFinishedError: the job has already finished.
        """
        job = self.get(job_id)
        with self._lock:
            if job.finished is None:
                job.cancel()
                return job
        raise JobFinishedError(f"job {job_id} has already {job.state.value}: there is nothing to cancel")

    def discard(self, job_id: str) -> None:
        """Forget a finished job now, record included (a failed request's, whose error was the answer)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.finished is None:
                return
            del self._jobs[job_id]
        if self.store is not None:
            self.store.remove(job_id)

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting jobs; optionally wait for the running ones."""
        self._executor.shutdown(wait=wait, cancel_futures=True)

    def _settled(self, record: dict[str, Any]) -> Job:
        """The job of a stored record; one an earlier process left running is settled as interrupted.

        Settling deletes the job's staging folders (untouched since this process started: not a live run's
        of another process) and records the job as failed, finished when this process started.
        """
        job = Job.from_record(record)
        if record.get("state") != JobState.RUNNING.value or self.store is None:
            return job
        job.finished = self.store.opened
        folder = self.store.output_dir / job.id  # a job id: checked by the store, no path tricks
        untouched_for = max(_now().timestamp() - job.finished.timestamp(), 0.0)
        if folder.is_dir() and self.scratch and time.time() - last_change(folder) > untouched_for:
            shutil.rmtree(folder, ignore_errors=True)
        elif folder.is_dir():
            _remove_staging_under(folder, older_than=untouched_for)
        self._store(job)
        log.warning("job %s was running when the service stopped: recorded as interrupted", job.id)
        return job

    def _settle_interrupted_with_staging(self, store: JobStore) -> None:
        """Settle, at start-up, the interrupted jobs that left staging folders (their full-size rasters)."""
        if not store.output_dir.is_dir():
            return
        for folder in store.output_dir.iterdir():
            if store.path(folder.name) is None or not folder.is_dir():
                continue
            if not self.scratch and not any(folder.rglob(f"{STAGING_PREFIX}*")):
                continue
            record = store.load(folder.name)
            if record is not None and record.get("state") == JobState.RUNNING.value:
                self._settled(record)

    def _finish(self, job: Job, future: Future[Any]) -> None:
        error: BaseException | None = (
            CancelledError("the service shut down before the job ran")
            if future.cancelled()
            else future.exception()
        )
        with self._lock:
            if error is None:
                job.result = future.result()
                job.state = JobState.SUCCEEDED
            else:
                job.error = decode_error(encode_error(error))  # its class and message, not its traceback
                job.state = JobState.CANCELLED if isinstance(error, JobCancelledError) else JobState.FAILED
            job.finished = _now()
            self._running -= 1
            self._forget_old()
        self._store(job)
        job.done.set()

    def _store(self, job: Job) -> None:
        if self.store is not None:
            try:
                self.store.save(job.record(), keep=self.keep)
            except (OSError, TypeError, ValueError) as exc:  # polling still works until a restart
                log.warning("could not store job %s: %s", job.id, exc)

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.finished is not None]
        excess = len(finished) - self.keep
        for job_id in finished[: max(excess, 0)]:
            del self._jobs[job_id]


def _remove_staging_under(folder: Path, older_than: float) -> list[Path]:
    """Delete the staging folders in ``folder`` and its sub-folders untouched for ``older_than`` seconds.

    ``service.output.remove_stale_staging`` on each folder holding one (``folder``, ``clean/``); the folders
    that leaves empty go too.
    """
    parents = {p.parent for p in folder.rglob(f"{STAGING_PREFIX}*") if p.is_dir()}
    removed: list[Path] = []
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):  # deepest first
        if STAGING_PREFIX not in str(parent.relative_to(folder)):  # not inside another staging folder
            removed += remove_stale_staging(parent, older_than)
    if removed:
        for parent in sorted({folder, *parents}, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):  # not empty, or gone
                parent.rmdir()
    return removed
