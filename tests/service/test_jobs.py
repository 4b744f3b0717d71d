"""The job registry (bounded, no queue) and the host allow-list: library code, no HTTP."""

from __future__ import annotations

import threading

import pytest

from lulc.allowlist import AllowList, HostNotAllowedError
from lulc.errors import ReadError
from service.jobs import BusyError, Job, JobNotFoundError, JobRegistry, JobState


def test_registry_refuses_beyond_its_limit_and_frees_slots() -> None:
    registry = JobRegistry(2, retry_after=11)
    gate = threading.Event()

    def blocked(job: Job) -> str:
        job.start("blocks", 1)
        gate.wait(30)
        job.advance()
        return f"done {job.id}"

    first, second = registry.submit(blocked), registry.submit(blocked)
    assert registry.running == 2
    with pytest.raises(BusyError, match="limit is 2") as busy:
        registry.submit(blocked)
    assert busy.value.retry_after == 11
    gate.set()
    assert first.wait(30)
    assert second.wait(30)
    assert first.state is JobState.SUCCEEDED
    assert first.result == f"done {first.id}"
    assert first.progress == (1, 1)
    assert registry.running == 0
    assert registry.get(first.id) is first
    third = registry.submit(blocked)  # slots are free again
    assert third.wait(30)
    registry.shutdown()


def test_failures_are_kept_with_their_error() -> None:
    registry = JobRegistry(1)

    def failing(job: Job) -> None:
        raise ReadError("server gone")

    job = registry.submit(failing, info={"area_km2": 3.0})
    assert job.wait(30)
    assert job.state is JobState.FAILED
    assert isinstance(job.error, ReadError)
    assert job.info == {"area_km2": 3.0}
    assert job.finished is not None
    assert registry.running == 0
    registry.shutdown()


def test_old_finished_jobs_are_forgotten() -> None:
    registry = JobRegistry(1, keep=2)
    jobs = []
    for _ in range(4):
        job = registry.submit(lambda j: j.id)
        assert job.wait(30)
        jobs.append(job)
    with pytest.raises(JobNotFoundError, match=jobs[0].id):
        registry.get(jobs[0].id)
    assert registry.get(jobs[-1].id) is jobs[-1]
    registry.shutdown()


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://earth-search.aws.element84.com/v1", True),
        ("https://evil.example/earth-search.aws.element84.com", False),
        ("https://a.tiles.example.org/x.tif", True),
        ("https://example.org.evil.net/x.tif", False),
        ("http://127.0.0.1:8080/cogs/b.tif", True),
        ("http://127.0.0.1:9999/cogs/b.tif", False),
        ("/vsicurl/https://data.example/pub/cogs/x.tif", True),
        ("https://data.example/pub/cogsx/x.tif", False),
        ("https://data.example/public/x.tif", False),
        ("s3://sentinel-cogs/a/b.tif", True),
        ("s3://earth-search.aws.element84.com/a/b.tif", False),  # a bucket named like an allowed host
        ("/data/catalog.json", False),
        ("file:///data/catalog.json", False),
    ],
)
def test_allow_list(url: str, allowed: bool) -> None:
    allow = AllowList.of(
        [
            "earth-search.aws.element84.com",
            "*.tiles.example.org",
            "127.0.0.1:8080",
            "https://data.example/pub/cogs",
            "s3://sentinel-cogs",  # a bucket by its s3:// prefix: host rules are for http(s) only
            " ",
        ]
    )
    assert allow.allows(url) is allowed
    if not allowed:
        with pytest.raises(HostNotAllowedError, match="allow-list"):
            allow.check(url, "asset")


def test_local_files_only_under_the_local_folders(tmp_path) -> None:
    (tmp_path / "catalog.json").write_text("{}")
    allow = AllowList.of([], [tmp_path])
    assert allow.allows(str(tmp_path / "catalog.json"))
    assert allow.allows(f"file://{tmp_path}/catalog.json")
    assert not allow.allows("https://anything.example/")
    with pytest.raises(HostNotAllowedError, match="local file"):
        AllowList.of(["x.example"]).check("/etc/passwd", "STAC source")
