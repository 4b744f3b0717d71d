"""State that survives: finished jobs answer after a service restart; killed runs' staging folders go away."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lulc.errors import InputError
from service.app import create_app
from service.job_store import JobStore
from service.jobs import JobNotFoundError, JobRegistry, JobState
from service.output import STAGING_PREFIX, staging_dir
from service.workflow import Outcome
from tests.service.app_support import World, models_dir, service_settings, shared_world
from tests.support.stac_validation import assert_valid_stac

OUTCOME = Outcome(
    output_url="/out/x", assets={"classes.tif": "/out/x/classes.tif"}, item={"id": "x"}, stats={"valid": 1}
)


def test_a_finished_job_is_found_by_a_new_registry_over_the_same_folder(tmp_path: Path) -> None:
    first = JobRegistry(1, store=JobStore(tmp_path))
    done = first.submit(lambda job: OUTCOME, info={"area_km2": 1.5})
    done.wait(10)  # one slot: the first finishes before the second starts

    def refuse(job: object) -> None:
        raise InputError("bad AOI")

    bad = first.submit(refuse)
    bad.wait(10)
    first.shutdown()
    again = JobRegistry(1, store=JobStore(tmp_path))  # the restarted service
    job = again.get(done.id)
    assert job.state is JobState.SUCCEEDED
    assert job.result == OUTCOME
    assert job.info == {"area_km2": 1.5}
    assert job.created == done.created
    lost = again.get(bad.id)
    assert lost.state is JobState.FAILED
    assert type(lost.error) is InputError  # the same class, so the same HTTP status
    assert str(lost.error) == "bad AOI"
    # Control: a registry without a store forgets everything on restart.
    with pytest.raises(JobNotFoundError):
        JobRegistry(1).get(done.id)
    # Ids that are not job ids never become paths.
    with pytest.raises(JobNotFoundError):
        again.get("../" + done.id)


def test_records_are_written_atomically_and_leave_no_temporary_files(tmp_path: Path) -> None:
    registry = JobRegistry(1, store=JobStore(tmp_path))
    job = registry.submit(lambda job: OUTCOME)
    job.wait(10)
    registry.shutdown()
    files = sorted(p.name for p in (tmp_path / ".jobs").iterdir())
    assert files == [f"{job.id}.json"]
    assert json.loads((tmp_path / ".jobs" / files[0]).read_text())["state"] == "succeeded"


def test_a_job_running_when_the_service_stops_is_reported_interrupted_not_unknown(tmp_path: Path) -> None:
    """Review: its record was written only when it finished, so after a restart it was a 404."""
    import threading

    from service.jobs import JobInterruptedError

    release = threading.Event()
    first = JobRegistry(1, store=JobStore(tmp_path))
    running = first.submit(lambda job: OUTCOME if release.wait(30) else None)
    again = JobRegistry(1, store=JobStore(tmp_path))  # a new process over the same folder
    job = again.get(running.id)
    assert job.state is JobState.FAILED
    assert isinstance(job.error, JobInterruptedError)
    assert "restarted" in str(job.error)
    release.set()
    assert running.wait(10)
    first.shutdown()
    # when it does end, its record says so (the running record is replaced)
    assert JobRegistry(1, store=JobStore(tmp_path)).get(running.id).state is JobState.SUCCEEDED


def test_records_on_disk_are_pruned_to_what_the_service_keeps(tmp_path: Path) -> None:
    """Review: memory kept max_finished_jobs, the .jobs folder every job ever run."""
    import threading

    release = threading.Event()
    earlier = JobRegistry(1, store=JobStore(tmp_path))  # a process that stops with a job running
    stuck = earlier.submit(lambda job: OUTCOME if release.wait(30) else None)
    registry = JobRegistry(1, keep=2, store=JobStore(tmp_path))
    jobs = []
    for _ in range(5):
        job = registry.submit(lambda job: OUTCOME)
        assert job.wait(10)
        jobs.append(job)
    registry.shutdown()
    kept = sorted(p.stem for p in (tmp_path / ".jobs").glob("*.json"))
    assert kept == sorted(j.id for j in jobs[-2:])  # the earlier process's interrupted record went too
    release.set()
    assert stuck.wait(10)
    earlier.shutdown()
    with pytest.raises(JobNotFoundError):
        JobRegistry(1, store=JobStore(tmp_path)).get(jobs[0].id)


def age(folder: Path, seconds: float) -> None:
    stamp = time.time() - seconds
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (stamp, stamp))


def test_stale_staging_folders_are_removed_at_start_up_and_live_ones_kept(tmp_path: Path) -> None:
    job_dir = tmp_path / ("a" * 32)
    stale_in_job = job_dir / f"{STAGING_PREFIX}killed"
    stale_top = tmp_path / f"{STAGING_PREFIX}old"
    live = tmp_path / ("b" * 32) / f"{STAGING_PREFIX}running"
    for folder in (stale_in_job, stale_top, live):
        folder.mkdir(parents=True)
        (folder / "classes.tmp.tif").write_bytes(b"x")
    age(stale_in_job, 2 * 86400)
    age(stale_top, 2 * 86400)
    age(live, 2 * 86400)
    (live / "classes.tmp.tif").write_bytes(b"xy")  # a block written just now: a live run
    JobRegistry(1, store=JobStore(tmp_path))
    assert not stale_in_job.exists()
    assert not job_dir.exists()  # the killed job's folder held nothing else
    assert not stale_top.exists()
    assert live.is_dir()


def test_a_cli_run_clears_stale_staging_in_its_out_folder(tmp_path: Path) -> None:
    stale = tmp_path / f"{STAGING_PREFIX}killed"
    stale.mkdir()
    age(stale, 2 * 86400)
    recent = tmp_path / f"{STAGING_PREFIX}other"
    recent.mkdir()
    with staging_dir(tmp_path) as mine:
        assert not stale.exists()
        assert recent.is_dir()  # maybe another run's, still writing
        assert mine.is_dir()
    assert not mine.exists()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return shared_world(tmp_path_factory)


def test_the_service_answers_a_finished_job_after_a_restart(
    world: World, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    models = models_dir(tmp_path_factory.mktemp("store-models"), world)
    settings = service_settings(tmp_path, world, models, sync_max_km2=100.0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.post(
            "/classify", json={"aoi": world.aoi(), "datetime": world.datetime, "model": "demo"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
    job_id = body["job_id"]
    with TestClient(create_app(settings), raise_server_exceptions=False) as restarted:
        polled = restarted.get(f"/jobs/{job_id}")
        unknown = restarted.get(f"/jobs/{'0' * 32}")
    assert polled.status_code == 200, polled.text
    status = polled.json()
    assert status["status"] == "succeeded"
    assert status["result"]["item"] is None  # not kept: the item (the AOI's geometry) is read at item_url
    assert status["result"]["item_url"] == body["item_url"] == body["assets"]["item.json"]
    assert json.loads(Path(body["item_url"]).read_text())["geometry"] == body["item"]["geometry"]
    assert_valid_stac(body["item"], "the service's item")  # as served: public asset hrefs
    assert status["result"]["assets"] == body["assets"]
    assert status["result"]["stats"] == body["stats"]
    assert unknown.status_code == 404


def interrupted_record(store: JobStore, staged: bool = True) -> tuple[str, Path]:
    """A job an earlier process recorded as running and was killed in: its record and its staging folder."""
    from service.jobs import Job

    job = Job(id=uuid.uuid4().hex, info={"area_km2": 2.0, "model": "demo"})
    job.created -= timedelta(minutes=5)
    store.save(job.record())
    staging = store.output_dir / job.id / f"{STAGING_PREFIX}killed"
    if staged:
        staging.mkdir(parents=True)
        (staging / "classes.tmp.tif").write_bytes(b"\0" * 4096)  # a full-size temporary raster, in small
        age(staging, 60)  # last written a minute ago, by the process that was killed
    return job.id, staging


def test_a_job_killed_while_running_is_settled_at_restart(tmp_path: Path) -> None:
    """Review: its staging stayed until the 24 h sweep; the poll said 500 (a bug) and finished null."""
    from service.http_errors import status_for
    from service.jobs import JobInterruptedError

    job_id, staging = interrupted_record(JobStore(tmp_path))
    unstaged_id, _ = interrupted_record(JobStore(tmp_path), staged=False)
    registry = JobRegistry(1, store=JobStore(tmp_path))  # the restarted service: at once, no poll needed
    assert not staging.exists()
    assert not (tmp_path / job_id).exists()  # the job's folder held nothing else
    record = json.loads((tmp_path / ".jobs" / f"{job_id}.json").read_text())
    assert record["state"] == "failed"
    assert record["finished"] is not None
    assert record["error"]["class"] == "service.jobs:JobInterruptedError"
    for polled in (registry.get(job_id), registry.get(unstaged_id)):
        assert polled.state is JobState.FAILED
        assert isinstance(polled.error, JobInterruptedError)
        assert polled.finished is not None
        assert polled.finished >= polled.created
        assert status_for(polled.error) == 503  # a restart, not a bug of the service
    # the record of the job polled only now is settled too, and stays so in the next process
    again = JobRegistry(1, store=JobStore(tmp_path)).get(unstaged_id)
    assert again.finished == registry.get(unstaged_id).finished


def test_a_job_killed_while_publishing_elsewhere_leaves_no_local_run(tmp_path: Path) -> None:
    """Review: killed after its run was complete, while publishing, a job left its whole run in scratch."""
    killed_id, _ = interrupted_record(JobStore(tmp_path), staged=False)
    live_id, _ = interrupted_record(JobStore(tmp_path), staged=False)
    for job_id, seconds in ((killed_id, 60), (live_id, -60)):  # the live one: written since the start
        run = tmp_path / job_id
        run.mkdir()
        (run / "classes.tif").write_bytes(b"\0" * 4096)
        (run / "item.json").write_text("{}")
        age(run, seconds)
    registry = JobRegistry(1, store=JobStore(tmp_path), scratch=True)
    assert not (tmp_path / killed_id).exists()
    assert registry.get(killed_id).state is JobState.FAILED
    assert (tmp_path / live_id / "classes.tif").is_file()  # may be another process's live run


def test_without_scratch_an_interrupted_complete_run_stays(tmp_path: Path) -> None:
    job_id, _ = interrupted_record(JobStore(tmp_path), staged=False)
    run = tmp_path / job_id
    run.mkdir()
    (run / "item.json").write_text("{}")
    age(run, 60)
    assert JobRegistry(1, store=JobStore(tmp_path)).get(job_id).state is JobState.FAILED
    assert (run / "item.json").is_file()  # the local folder is the output: nothing else holds the run


def test_staging_written_since_the_start_is_kept_when_settling(tmp_path: Path) -> None:
    """A staging folder written after this process started may be a live run's (another process's)."""
    job_id, staging = interrupted_record(JobStore(tmp_path))
    registry = JobRegistry(1, store=JobStore(tmp_path))
    assert not staging.exists()
    live = tmp_path / job_id / f"{STAGING_PREFIX}live"
    live.mkdir(parents=True)
    (live / "classes.tmp.tif").write_bytes(b"x")  # written just now
    other_id, other_staging = interrupted_record(JobStore(tmp_path))  # recorded after the start
    age(other_staging, -60)  # and written since
    assert registry.get(other_id).state is JobState.FAILED
    assert other_staging.is_dir()
    JobRegistry(1, store=JobStore(tmp_path))  # a later start: settled already, nothing else goes at once
    assert live.is_dir()
    assert other_staging.is_dir()


def test_the_poll_of_an_interrupted_job_says_503_and_when(
    world: World, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    models = models_dir(tmp_path_factory.mktemp("interrupted-models"), world)
    settings = service_settings(tmp_path, world, models)
    job_id, staging = interrupted_record(JobStore(settings.output_dir))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        polled = client.get(f"/jobs/{job_id}")
        schema = client.get("/openapi.json").json()
    assert polled.status_code == 200, polled.text
    status = polled.json()
    assert status["status"] == "failed"
    assert status["error"]["type"] == "JobInterruptedError"
    assert status["error_status"] == 503
    assert status["finished"] is not None
    assert not staging.exists()
    error_status = schema["components"]["schemas"]["JobStatus"]["properties"]["error_status"]
    assert "503" in error_status["description"]


def test_a_failed_run_removes_only_the_folders_it_made(tmp_path: Path) -> None:
    """A failed run removes the folders it made for --out, and no other.

    Diff review: through a ``..`` whose first part did not exist, an existing empty folder was taken for one
    the run made and removed, and the one it made was left.
    """
    (tmp_path / "mine").mkdir()
    with pytest.raises(RuntimeError), staging_dir(tmp_path / "typo" / ".." / "mine"):
        raise RuntimeError("the run failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    with pytest.raises(RuntimeError), staging_dir(tmp_path / "new" / "deeper"):
        raise RuntimeError("the run failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"], "both levels it made are gone"
    with staging_dir(tmp_path / "kept") as staging:
        (staging.parent / "classes.tif").write_bytes(b"x")  # a finished run's output keeps its folder
    assert (tmp_path / "kept" / "classes.tif").is_file()
