"""Publishing an output directory: local directories and a real S3 server (moto) on loopback."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from lulc.errors import InputError
from service.publish import (
    ITEM_NAME,
    PublishError,
    check_destination,
    leaves_folder,
    output_files,
    publish,
    travelling_links,
)


def make_outputs(root: Path) -> Path:
    out = root / "job"
    out.mkdir(parents=True)
    (out / "classes.tif").write_bytes(b"\x01\x02" * 5000)
    (out / "confidence.tif").write_bytes(b"\x03" * 777)
    (out / "stats.json").write_text('{"classes": []}')
    (out / ITEM_NAME).write_text(json.dumps({"type": "Feature", "id": "x"}))
    (out / ".classes.tif.tmp.partial.tif").write_bytes(b"half")  # a leftover temporary: never published
    return out


def with_clean_product(run: Path) -> Path:
    """``run`` with a product in ``clean/`` whose item derives from the run's."""
    (run / "clean").mkdir()
    product = {"type": "Feature", "links": [{"rel": "derived_from", "href": "../item.json"}]}
    (run / "clean" / ITEM_NAME).write_text(json.dumps(product))
    (run / "clean" / "classes.tif").write_bytes(b"cleaned")
    return run


def test_files_are_ordered_item_last(tmp_path: Path) -> None:
    out = make_outputs(tmp_path)
    (out / "zz.tif").write_bytes(b"z")
    names = output_files(out)
    assert names[-1] == ITEM_NAME
    assert sorted(names[:-1]) == names[:-1]
    assert ".classes.tif.tmp.partial.tif" not in names
    assert set(names) == {"classes.tif", "confidence.tif", "stats.json", "zz.tif", ITEM_NAME}


@pytest.mark.parametrize("as_url", [False, True])
def test_publish_to_local_directory(tmp_path: Path, as_url: bool) -> None:
    src = make_outputs(tmp_path / "src")
    dest = tmp_path / "published" / "jobs" / "1"
    result = publish(src, dest.as_uri() if as_url else str(dest))
    assert result.url == str(dest.resolve())
    for name in ("classes.tif", "confidence.tif", "stats.json", ITEM_NAME):
        assert (dest / name).read_bytes() == (src / name).read_bytes()
        assert result.files[name] == str(dest.resolve() / name)
    assert not (dest / ".classes.tif.tmp.partial.tif").exists()


def test_publish_to_itself_is_a_no_op(tmp_path: Path) -> None:
    src = make_outputs(tmp_path)
    result = publish(src, str(src))
    assert result.files["classes.tif"] == str(src.resolve() / "classes.tif")


@pytest.mark.parametrize("broken", ["confidence.tif", "zz_last.tif"])
def test_failed_local_publish_leaves_no_item(tmp_path: Path, broken: str) -> None:
    """A dangling link fails the copy; the item (even one sorted before the asset) is never written."""
    src = make_outputs(tmp_path / "src")
    (src / broken).unlink(missing_ok=True)
    (src / broken).symlink_to(tmp_path / "does-not-exist.tif")
    dest = tmp_path / "dest"
    with pytest.raises(PublishError, match=re.escape(broken)):
        publish(src, str(dest))
    assert not (dest / ITEM_NAME).exists()
    assert not (dest / "classes.tif").exists()  # what was copied before the failure is removed again


def test_bad_destinations_are_input_errors(tmp_path: Path) -> None:
    src = make_outputs(tmp_path)
    with pytest.raises(InputError, match="ftp://"):
        publish(src, "ftp://host/x")
    with pytest.raises(InputError, match="no bucket"):
        publish(src, "s3:///prefix")
    with pytest.raises(InputError, match="does not exist"):
        publish(tmp_path / "nothing", str(tmp_path / "dest"))


# --- S3: a real S3 HTTP server (moto) on loopback ---------------------------------------------------


@pytest.fixture(scope="module")
def s3(s3_server: dict[str, Any]) -> dict[str, Any]:
    """The loopback S3 server with this module's bucket."""
    s3_server["client"].create_bucket(Bucket="lulc-outputs")
    return s3_server


def keys(client: Any, prefix: str) -> set[str]:
    listing = client.list_objects_v2(Bucket="lulc-outputs", Prefix=prefix)
    return {o["Key"] for o in listing.get("Contents", [])}


def test_publish_to_s3(tmp_path: Path, s3: dict[str, Any]) -> None:
    src = make_outputs(tmp_path)
    result = publish(src, "s3://lulc-outputs/runs/a/", s3=s3["options"])
    assert result.url == "s3://lulc-outputs/runs/a"
    assert result.files["classes.tif"] == "s3://lulc-outputs/runs/a/classes.tif"
    client = s3["client"]
    assert keys(client, "runs/a/") == {
        f"runs/a/{n}" for n in ("classes.tif", "confidence.tif", "stats.json", ITEM_NAME)
    }
    body = client.get_object(Bucket="lulc-outputs", Key="runs/a/classes.tif")["Body"].read()
    assert body == (src / "classes.tif").read_bytes()


def test_failed_s3_publish_leaves_no_item(tmp_path: Path, s3: dict[str, Any]) -> None:
    src = make_outputs(tmp_path)
    (src / "zz_last.tif").symlink_to(tmp_path / "missing.tif")
    with pytest.raises(PublishError, match=r"zz_last\.tif"):
        publish(src, "s3://lulc-outputs/runs/b", s3=s3["options"])
    assert keys(s3["client"], "runs/b/") == set()


def test_unreachable_store_is_a_publish_error(tmp_path: Path, s3: dict[str, Any]) -> None:
    src = make_outputs(tmp_path)
    with pytest.raises(PublishError, match="no-such-bucket"):
        publish(src, "s3://no-such-bucket/x", s3=s3["options"])


@pytest.mark.parametrize(
    ("href", "where", "leaves"),
    [
        ("./classes.tif", "item.json", False),
        ("../../models/demo/model.json", "item.json", True),
        ("..", "item.json", True),
        ("../item.json", "clean/item.json", False),  # the clean map's link to its run: inside
        ("../../x/item.json", "clean/item.json", True),
        ("sub/../../x.tif", "item.json", True),
        ("/srv/models/demo/model.onnx", "item.json", True),  # a local absolute path
        ("https://models.example/demo/model.json", "item.json", False),
        ("s3://bucket/models/demo/model.json", "item.json", False),
    ],
)
def test_which_links_leave_the_run_folder(href: str, where: str, leaves: bool) -> None:
    assert leaves_folder(href, where) is leaves


def test_travelling_links_keeps_everything_but_the_links_out() -> None:
    item = {
        "type": "Feature",
        "id": "x",
        "links": [
            {"rel": "derived_from", "href": "https://stac.example/items/a", "title": "a"},
            {"rel": "derived_from", "href": "../../models/demo/model.onnx", "title": "model demo 1"},
        ],
        "assets": {"classes": {"href": "./classes.tif"}},
    }
    kept = travelling_links(item)
    assert kept["links"] == item["links"][:1]
    assert kept["assets"] == item["assets"]
    assert kept["id"] == "x"
    assert len(item["links"]) == 2  # the input is not changed


# --- review of the deployment paths ------------------------------------------------------------------


def test_items_follow_their_files_deepest_first_the_runs_own_last(tmp_path: Path) -> None:
    """clean/item.json went up before clean/stats.json and before the run's own item (review)."""
    out = make_outputs(tmp_path)
    (out / "clean").mkdir()
    for name in ("classes.tif", "stats.json", ITEM_NAME):
        (out / "clean" / name).write_text(name)
    names = output_files(out)
    assert names[-2:] == [f"clean/{ITEM_NAME}", ITEM_NAME]
    assert all(n.endswith(ITEM_NAME) for n in names[-2:])
    assert not any(n.endswith(ITEM_NAME) for n in names[:-2])


def test_a_destination_holding_a_run_is_refused_unless_replaced(tmp_path: Path, s3: dict[str, Any]) -> None:
    """A second run published into the same folder was mixed with the first (its clean/ and its files)."""
    first = with_clean_product(make_outputs(tmp_path / "a"))
    second = make_outputs(tmp_path / "b")
    (second / "classes.tif").write_bytes(b"second run")
    dest = "s3://lulc-outputs/runs/again"
    publish(first, dest, s3=s3["options"])
    # beside it: another run published in a subfolder, and a hidden file (review: replacing deleted them)
    other = make_outputs(tmp_path / "other")
    publish(other, f"{dest}/2023", s3=s3["options"])
    s3["client"].put_object(Bucket="lulc-outputs", Key="runs/again/.keep", Body=b"")
    before = keys(s3["client"], "runs/again/")
    with pytest.raises(InputError, match="already holds a published run"):
        check_destination(dest, s3=s3["options"])
    with pytest.raises(InputError, match="already holds a published run"):
        publish(second, dest, s3=s3["options"])
    assert keys(s3["client"], "runs/again/") == before  # nothing lost
    publish(second, dest, s3=s3["options"], replace=True)
    assert keys(s3["client"], "runs/again/") == {
        f"runs/again/{n}" for n in ("classes.tif", "confidence.tif", "stats.json", ITEM_NAME, ".keep")
    } | {k for k in before if k.startswith("runs/again/2023/")}  # the first run's clean/ went with it
    body = s3["client"].get_object(Bucket="lulc-outputs", Key="runs/again/classes.tif")["Body"].read()
    assert body == b"second run"
    check_destination(str(tmp_path / "fresh"))  # a new folder is fine


def _files(client: Any, dest: str, local: bool) -> dict[str, bytes]:
    """Every file under a destination and its bytes."""
    if local:
        root = Path(dest)
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    prefix = dest.removeprefix("s3://lulc-outputs/") + "/"
    return {
        k.removeprefix(prefix): client.get_object(Bucket="lulc-outputs", Key=k)["Body"].read()
        for k in keys(client, prefix)
    }


@pytest.mark.parametrize("local", [True, False])
def test_a_failed_replacement_keeps_the_earlier_run(tmp_path: Path, s3: dict[str, Any], local: bool) -> None:
    """The earlier run's item.json went first and the failed copy's cleanup deleted its files: lost."""
    first = with_clean_product(make_outputs(tmp_path / "a"))
    second = make_outputs(tmp_path / "b")
    (second / "classes.tif").write_bytes(b"second run")
    (second / "new.tif").write_bytes(b"only in the second run")
    (second / "zz_last.tif").symlink_to(tmp_path / "missing.tif")  # its copy fails, after the others
    dest = str(tmp_path / "dest") if local else f"s3://lulc-outputs/runs/kept-{tmp_path.name}"
    options = None if local else s3["options"]
    publish(first, dest, s3=options)
    before = _files(s3["client"], dest, local)
    with pytest.raises(PublishError, match=r"zz_last\.tif"):
        publish(second, dest, s3=options, replace=True)
    assert _files(s3["client"], dest, local) == before
    (second / "zz_last.tif").unlink()
    publish(second, dest, s3=options, replace=True)
    after = _files(s3["client"], dest, local)
    assert after["classes.tif"] == b"second run"
    assert set(after) == {"classes.tif", "confidence.tif", "stats.json", "new.tif", ITEM_NAME}


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("/tmp/a\x00b", "no usable path"),
        ("s3://maps/a/../b", "'..' path segment"),
        ("s3://maps/a//b", "empty"),
        ("s3://Bad_Bucket!/x", "not an S3 bucket name"),
        ("s3://maps/x?y=1#z", "query or fragment"),
    ],
)
def test_destinations_no_store_can_write_are_refused_up_front(url: str, needle: str) -> None:
    """They were 500s, or 502s after the whole classification (review)."""
    with pytest.raises(InputError, match=re.escape(needle)):
        check_destination(url)


def test_a_destination_through_a_file_is_refused_up_front(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="through a file"):
        check_destination(str(tmp_path / "file" / "sub"))


def test_publish_errors_name_the_destination_not_the_servers_paths(
    tmp_path: Path, s3: dict[str, Any]
) -> None:
    src = make_outputs(tmp_path)
    with pytest.raises(PublishError) as failed:
        publish(src, "s3://no-such-bucket/x", s3=s3["options"])
    message = str(failed.value)
    assert "s3://no-such-bucket/x" in message
    assert str(tmp_path) not in message
    assert "127.0.0.1" not in message
    with pytest.raises(PublishError, match="no-such-bucket"):  # found before any work, not after it
        check_destination("s3://no-such-bucket/x", s3=s3["options"])


def test_a_publication_in_progress_at_the_destination_is_a_conflict_not_a_mix(
    tmp_path: Path, s3: dict[str, Any]
) -> None:
    """Review: two runs published to one URL at once mixed their files, and one's failure deleted the other's.

    Run A is publishing (its claim and first file are there); run B, to the same URL, is refused before it
    writes or deletes anything. A claim left by a crashed publication (older than CLAIM_STALE_S) is taken
    over, and every publication removes its claim when done.
    """
    import time

    from service.publish import CLAIM_NAME, CLAIM_STALE_S, PublishConflictError

    client = s3["client"]
    claim = {"token": "run-a", "refreshed": time.time()}
    client.put_object(Bucket="lulc-outputs", Key=f"runs/c/{CLAIM_NAME}", Body=json.dumps(claim).encode())
    client.put_object(Bucket="lulc-outputs", Key="runs/c/classes.tif", Body=b"run A's map")
    src = make_outputs(tmp_path / "b")
    with pytest.raises(
        PublishConflictError, match="another run is being published to s3://lulc-outputs/runs/c"
    ):
        publish(src, "s3://lulc-outputs/runs/c", s3=s3["options"])
    body = client.get_object(Bucket="lulc-outputs", Key="runs/c/classes.tif")["Body"].read()
    assert body == b"run A's map"  # untouched
    assert keys(client, "runs/c/") == {"runs/c/classes.tif", f"runs/c/{CLAIM_NAME}"}
    stale = {"token": "run-a", "refreshed": time.time() - CLAIM_STALE_S - 60}
    client.put_object(Bucket="lulc-outputs", Key=f"runs/c/{CLAIM_NAME}", Body=json.dumps(stale).encode())
    publish(src, "s3://lulc-outputs/runs/c", s3=s3["options"])
    assert f"runs/c/{ITEM_NAME}" in keys(client, "runs/c/")
    assert f"runs/c/{CLAIM_NAME}" not in keys(client, "runs/c/")  # released when done
    # locally too: the claim is created only where absent
    local = tmp_path / "local"
    local.mkdir()
    (local / CLAIM_NAME).write_text(json.dumps({"token": "run-a", "refreshed": time.time()}))
    with pytest.raises(PublishConflictError):
        publish(src, str(local))
    assert sorted(p.name for p in local.iterdir()) == [CLAIM_NAME]


def test_lulc_publish_drops_links_out_of_the_run_and_leaves_the_run_as_it_is(tmp_path: Path) -> None:
    """The Job templates' publisher (platform review: `aws s3 cp` kept a link to the Job's model path)."""
    from typer.testing import CliRunner

    from lulc.cli import app

    run = make_outputs(tmp_path / "runs")
    model_link = {"rel": "derived_from", "href": "../../models/demo/model.json", "type": "application/json"}
    own_link = {"rel": "self", "href": "./item.json", "type": "application/geo+json"}
    item = {"type": "Feature", "id": "x", "links": [model_link, own_link]}
    (run / ITEM_NAME).write_text(json.dumps(item))
    dest = tmp_path / "store" / "runs" / "job-1"
    done = CliRunner().invoke(app, ["publish", str(run), str(dest)])
    assert done.exit_code == 0, done.output
    assert json.loads((dest / ITEM_NAME).read_text())["links"] == [own_link]
    assert json.loads((run / ITEM_NAME).read_text()) == item  # the run folder keeps its links
    assert (dest / "classes.tif").read_bytes() == (run / "classes.tif").read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == [
        "classes.tif",
        "confidence.tif",
        ITEM_NAME,
        "stats.json",
    ]
    assert not [p for p in run.parent.iterdir() if p.name.startswith(".publish-")]  # no staging left
    again = CliRunner().invoke(app, ["publish", str(run), str(dest)])
    assert again.exit_code != 0
    assert "already holds a published run" in str(again.exception)
    assert CliRunner().invoke(app, ["publish", str(run), str(dest), "--overwrite"]).exit_code == 0


def test_a_destination_that_cannot_be_written_is_refused_before_any_work(tmp_path: Path) -> None:
    """Platform review: `/proc/lulc-x` ran the whole classification, then answered 502."""
    with pytest.raises(PublishError, match="output destination /proc/lulc-x"):
        check_destination("/proc/lulc-x")
    fresh = tmp_path / "new" / "deeper" / "run"
    check_destination(str(fresh))  # writable: nothing is left of the probe, not even its folders
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    check_destination(str(existing))
    assert list(existing.iterdir()) == []


def test_a_stale_claim_taken_over_is_noticed_by_its_owner_and_not_released_by_it(tmp_path: Path) -> None:
    """Diff review: a takeover was an unconditional put; a publication deleted whatever claim was there."""
    import time

    from service.publish import CLAIM_NAME, CLAIM_STALE_S, PublishConflictError, _Claim, open_store

    dest = tmp_path / "dest"
    store = open_store(str(dest))
    first = _Claim(store, str(dest))
    first.take()
    with pytest.raises(PublishConflictError, match="refreshed at"):
        _Claim(store, str(dest)).take()  # fresh: refused
    body = json.loads((dest / CLAIM_NAME).read_text())
    body["refreshed"] = time.time() - CLAIM_STALE_S - 1  # the first publication stalled (or was killed)
    (dest / CLAIM_NAME).write_text(json.dumps(body))
    second = _Claim(store, str(dest))
    second.take()  # stale: taken over
    with pytest.raises(PublishConflictError, match="took over"):
        first.refresh()  # its next file is not written
    first.release()
    assert json.loads((dest / CLAIM_NAME).read_text())["token"] == second.token  # not removed by the first
    second.release()
    assert not (dest / CLAIM_NAME).exists()


def test_a_fresh_claim_is_refused_before_the_work(tmp_path: Path) -> None:
    """Diff review: the destination's claim was found only when publishing, after the whole classification."""
    import time

    from service.publish import CLAIM_NAME, PublishConflictError

    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / CLAIM_NAME).write_text(json.dumps({"token": "other", "refreshed": time.time()}))
    with pytest.raises(PublishConflictError, match=CLAIM_NAME):
        check_destination(str(dest), replace=True)
    assert sorted(p.name for p in dest.iterdir()) == [CLAIM_NAME]


def service_s3_settings(monkeypatch: pytest.MonkeyPatch, s3: dict[str, Any]) -> None:
    """The LULC_SERVICE_S3_* variables the Job templates set, for the test's S3 server."""
    from tests.service.conftest import S3_KEY

    for name, value in {
        "S3_ENDPOINT": s3["endpoint"],
        "S3_ALLOW_HTTP": "true",
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": S3_KEY,
        "S3_SECRET_ACCESS_KEY": S3_KEY,
    }.items():
        monkeypatch.setenv(f"LULC_SERVICE_{name}", value)


def test_lulc_publish_reaches_s3_with_the_services_settings(
    tmp_path: Path, s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Job templates run `lulc publish` with the LULC_SERVICE_S3_* variables: a real S3 server."""
    from typer.testing import CliRunner

    from lulc.cli import app

    service_s3_settings(monkeypatch, s3)
    run = make_outputs(tmp_path)
    done = CliRunner().invoke(app, ["publish", str(run), "s3://lulc-outputs/runs/job-7"])
    assert done.exit_code == 0, done.output
    assert keys(s3["client"], "runs/job-7/") == {
        f"runs/job-7/{n}" for n in ("classes.tif", "confidence.tif", "stats.json", ITEM_NAME)
    }


def test_a_failed_s3_publication_is_one_line_without_the_stores_address(
    tmp_path: Path, s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """README review: `lulc publish` to S3 printed obstore's 24-line debug dump, the error line no reason."""
    from tests.support.cli import lulc_program

    service_s3_settings(monkeypatch, s3)
    monkeypatch.setenv("COLUMNS", "40")  # a narrow terminal's width, for the program's process
    run = make_outputs(tmp_path)
    done = lulc_program("publish", run, "s3://no-such-bucket/runs/job-7")
    assert done.returncode == 2  # no such bucket: retrying will not help (75 would say it might)
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(
        "error: cannot write to output destination s3://no-such-bucket/runs/job-7: "
    )
    assert "404" in done.stderr  # the store's reason
    assert "127.0.0.1" not in done.stderr


def test_access_denied_by_the_store_is_a_refusal_not_a_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3's 403 (AccessDenied) is a refusal: exit 2, so a Job does not retry a denied destination."""
    from tests.support.cli import lulc_program
    from tests.support.scripted_server import ScriptedServer

    denied = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
    with ScriptedServer(
        {"*": {"status": 403, "headers": {"content-type": "application/xml"}, "body": denied}}
    ) as s3:
        service_s3_settings(monkeypatch, {"endpoint": s3.base_url})
        done = lulc_program("publish", make_outputs(tmp_path), "s3://lulc-outputs/runs/job-7")
        assert any(r["method"] == "PUT" for r in s3.requests()), s3.requests()
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "403 Forbidden" in done.stderr


def test_a_store_failure_that_may_pass_is_an_upstream_error_and_a_refusal_is_not() -> None:
    """``lulc`` exits 75 on the first (a Job retries it), 2 on the second (bad input: no retry)."""
    from obstore import exceptions as store

    from lulc.errors import UpstreamError
    from service.publish import PublishError, _failed

    passing = _failed("cannot write to output destination s3://b/r", store.GenericError("connection refused"))
    refused = _failed("cannot write to output destination s3://b/r", store.NotFoundError("no such bucket"))
    denied = _failed("cannot write to output destination s3://b/r", store.PermissionDeniedError("denied"))
    assert isinstance(passing, UpstreamError)
    assert isinstance(passing, PublishError)  # the service's 502, as before
    assert not isinstance(refused, UpstreamError)
    assert not isinstance(denied, UpstreamError)
    assert str(passing) == "cannot write to output destination s3://b/r: connection refused"
    # README review: a proxy's 403 came as a generic error and exited 75 ("trying again later may succeed")
    generic = "Generic S3 error: Error performing PUT <url> - Server returned non-2xx status code: {}: denied"
    proxy_denied = _failed("cannot write", store.GenericError(generic.format("403 Forbidden")))
    throttled = _failed("cannot write", store.GenericError(generic.format("429 Too Many Requests")))
    unavailable = _failed("cannot write", store.GenericError(generic.format("503 Service Unavailable")))
    assert not isinstance(proxy_denied, UpstreamError)
    assert isinstance(throttled, UpstreamError)
    assert isinstance(unavailable, UpstreamError)


def test_a_destination_inside_the_run_is_refused(tmp_path: Path) -> None:
    """Products review: `lulc publish runs/a runs/a/inner` copied the run into itself, then along with it."""
    src = make_outputs(tmp_path / "src")
    with pytest.raises(
        InputError, match=r"^destination .*job/inner is inside the run .*job: publish it to a"
    ):
        publish(src, str(src / "inner"))
    assert sorted(p.name for p in src.iterdir() if p.is_dir()) == []


def test_a_run_whose_item_lists_a_missing_file_is_not_published(tmp_path: Path) -> None:
    """Review: a run missing confidence.tif was published with an item listing it."""
    src = make_outputs(tmp_path / "src")
    item = {
        "type": "Feature",
        "id": "x",
        "assets": {
            "classes": {"href": "./classes.tif"},
            "confidence": {"href": "./confidence.tif"},
            "model": {"href": "../models/m/model.onnx"},  # outside the run: not its to carry
            "source": {"href": "https://example.com/b04.tif"},
        },
    }
    (src / ITEM_NAME).write_text(json.dumps(item))
    publish(src, str(tmp_path / "complete"))
    (src / "confidence.tif").unlink()
    with pytest.raises(InputError, match=r"lists \./confidence\.tif, which is missing"):
        publish(src, str(tmp_path / "dest"))
    assert not (tmp_path / "dest").exists()


def test_a_run_whose_file_changed_since_its_item_was_written_is_not_published(tmp_path: Path) -> None:
    """Products review: a truncated confidence.tif was published under the item's old size and checksum."""
    from lulc.checksum import multihash_sha256

    src = make_outputs(tmp_path / "src")
    assets = {
        name: {"href": f"./{name}.tif", "file:size": (src / f"{name}.tif").stat().st_size}
        for name in ("classes", "confidence")
    }
    assets["classes"]["file:checksum"] = multihash_sha256(src / "classes.tif")
    (src / ITEM_NAME).write_text(json.dumps({"type": "Feature", "id": "x", "assets": assets}))
    publish(src, str(tmp_path / "as-written"))  # the control: as the item says, it is published
    (src / "confidence.tif").write_bytes(b"\x03" * 700)
    with pytest.raises(
        InputError, match=r"confidence\.tif is 700 bytes, not the 777 of .*item\.json: it changed"
    ):
        publish(src, str(tmp_path / "cut"))
    (src / "confidence.tif").write_bytes(b"\x03" * 777)
    (src / "classes.tif").write_bytes(b"\x02\x01" * 5000)  # the same size, other bytes
    with pytest.raises(InputError, match=r"classes\.tif does not have the file:checksum of"):
        publish(src, str(tmp_path / "changed"))
    assert not (tmp_path / "cut").exists()
    assert not (tmp_path / "changed").exists()


@pytest.mark.parametrize("local", [True, False])
def test_a_run_left_aside_by_a_killed_replacement_is_put_back(
    tmp_path: Path, s3: dict[str, Any], local: bool
) -> None:
    """Diff review: a replacement killed mid-way left the earlier run in .lulc-replaced/ for good."""
    first = make_outputs(tmp_path / "a")
    dest = str(tmp_path / "dest") if local else f"s3://lulc-outputs/runs/killed-{tmp_path.name}"
    options = None if local else s3["options"]
    publish(first, dest, s3=options)
    before = _files(s3["client"], dest, local)
    # what a kill after two moves and one copy leaves: the item and classes.tif aside, a new classes.tif
    if local:
        aside = Path(dest) / ".lulc-replaced"
        aside.mkdir()
        for name in (ITEM_NAME, "classes.tif"):
            (Path(dest) / name).rename(aside / name)
        (Path(dest) / "classes.tif").write_bytes(b"half of a new run")
    else:
        client, prefix = s3["client"], dest.removeprefix("s3://lulc-outputs/")
        for name in (ITEM_NAME, "classes.tif"):
            source = {"Bucket": "lulc-outputs", "Key": f"{prefix}/{name}"}
            moved = f"{prefix}/.lulc-replaced/{name}"
            client.copy_object(CopySource=source, Bucket="lulc-outputs", Key=moved)
            client.delete_object(Bucket="lulc-outputs", Key=f"{prefix}/{name}")
        client.put_object(Bucket="lulc-outputs", Key=f"{prefix}/classes.tif", Body=b"half of a new run")
    with pytest.raises(InputError, match="already holds a published run"):  # it is back: not taken over
        publish(make_outputs(tmp_path / "b"), dest, s3=options)
    assert _files(s3["client"], dest, local) == before


def test_a_local_replacement_leaves_no_folder_aside(tmp_path: Path) -> None:
    """Diff review: empty .lulc-replaced/ folders stayed after every local replacement."""
    first = with_clean_product(make_outputs(tmp_path / "a"))
    dest = tmp_path / "dest"
    publish(first, str(dest))
    publish(make_outputs(tmp_path / "b"), str(dest), replace=True)
    assert not (dest / ".lulc-replaced").exists()
    assert not (dest / "clean").exists()  # outputs review: the replaced run's clean/ stayed, empty


def test_a_file_left_aside_that_the_run_lacks_is_kept(tmp_path: Path) -> None:
    """Last review: a file a put-back could not return was deleted by the next publication there."""
    dest = tmp_path / "dest"
    publish(make_outputs(tmp_path / "a"), str(dest))
    aside = dest / ".lulc-replaced"
    aside.mkdir()
    (dest / "classes.tif").rename(aside / "classes.tif")  # its only copy, aside
    (aside / "stats.json").write_text("an older copy of a file the run has again")
    with pytest.raises(InputError, match="already holds a published run"):
        publish(make_outputs(tmp_path / "b"), str(dest))
    assert (aside / "classes.tif").read_bytes() == (tmp_path / "a" / "job" / "classes.tif").read_bytes()
    assert not (aside / "stats.json").exists()
