"""GDAL reads demo-world COGs over loopback HTTP (``/vsicurl/``): how many requests, and under failures.

The request counts come from the server's own log, so they are what GDAL really sent. Every
measurement uses a URL GDAL has not seen in this process (a unique query string or a fresh folder):
``/vsicurl/`` caches file sizes, directory listings and downloaded chunks per URL for the whole
process (``lulc.gdal_env.forget_cached_reads`` clears it for one URL: rasterio exposes no
``VSICurlClearCache``).
"""

from __future__ import annotations

import itertools
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from lulc.allowlist import AllowList
from lulc.gdal_env import GDAL_OPTIONS, forget_cached_reads, gdal_env, gdal_href
from lulc.urls import HostNotAllowedError
from tests.support.http_server import RequestRecord, ServerHandle
from tests.support.scripted_server import ScriptedServer, redirect_everything_to

TILE = 512
_fresh = itertools.count()


def fresh(url: str) -> str:
    """``url`` with a query string never used before in this process (a cold GDAL cache)."""
    return f"{url}?measure={next(_fresh)}"


def requested_bytes(records: list[RequestRecord]) -> list[tuple[int, int]]:
    """The ``(first, last)`` byte ranges asked for, from the Range headers."""
    spans = []
    for record in records:
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", record.range or "")
        assert match, f"GDAL sent a request without a single byte range: {record}"
        spans.append((int(match[1]), int(match[2])))
    return spans


@pytest.fixture(scope="module")
def band(demo_world) -> Path:
    """The red band COG of the demo world's first item (1024 x 1024, 512 x 512 tiles)."""
    path = demo_world.cogs_dir / demo_world.item_ids[0] / "red.tif"
    with rasterio.open(path) as ds:
        assert ds.block_shapes == [(TILE, TILE)]
        assert ds.width >= 2 * TILE
        assert ds.height >= 2 * TILE
    return path


def test_one_tile_aligned_window_takes_at_most_three_requests(
    band: Path, cog_server: ServerHandle, record_property: Callable[[str, object], None]
) -> None:
    window = Window(TILE, TILE, TILE, TILE)  # exactly internal tile (1, 1)
    with rasterio.open(band) as local:
        expected = local.read(1, window=window)
        tile_offset = int(local.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
        tile_size = int(local.get_tag_item("BLOCK_SIZE_1_1", "TIFF", bidx=1))

    url = fresh(cog_server.vsicurl(band))
    with gdal_env(), rasterio.open(url) as remote:
        cog_server.requests.clear()
        data = remote.read(1, window=window)
        records = cog_server.requests.records()

    record_property("requests_for_one_512_window", len(records))
    np.testing.assert_array_equal(data, expected)
    assert 1 <= len(records) <= 3, records
    assert all(r.method == "GET" and r.status == 206 for r in records), records
    spans = requested_bytes(records)
    # The tile's bytes were fetched, and little else: not the whole file, not the neighbouring tiles.
    assert any(first <= tile_offset and tile_offset + tile_size - 1 <= last for first, last in spans)
    chunk = 16384  # /vsicurl/ fetches whole 16 KiB chunks
    assert sum(last - first + 1 for first, last in spans) <= tile_size + 2 * chunk


def test_our_gdal_options_open_a_cog_with_fewer_requests_than_gdal_defaults(
    band: Path,
    tmp_path: Path,
    http_server_factory: Callable[..., ServerHandle],
    record_property: Callable[[str, object], None],
) -> None:
    # One folder per measurement, so neither open sees the other's cached directory listing.
    for name in ("ours", "defaults"):
        (tmp_path / name).mkdir()
        shutil.copy(band, tmp_path / name / "red.tif")
    server = http_server_factory(tmp_path)
    counts: dict[str, list[RequestRecord]] = {}
    for name, env in (("ours", gdal_env), ("defaults", rasterio.Env)):
        server.requests.clear()
        with env(), rasterio.open(server.vsicurl(f"{name}/red.tif")) as ds:
            assert ds.width >= 2 * TILE
        counts[name] = server.requests.records()

    ours, defaults = counts["ours"], counts["defaults"]
    record_property("requests_to_open_with_our_options", len(ours))
    record_property("requests_to_open_with_gdal_defaults", len(defaults))
    assert len(ours) < len(defaults), (ours, defaults)
    assert len(ours) <= 3, ours
    assert all(r.path == "/ours/red.tif" for r in ours), "no sidecar or directory probes with our options"
    # What the defaults waste requests on: listing the folder and probing sidecars (.aux.xml, .ovr, ...).
    probes = [r for r in defaults if r.path != "/defaults/red.tif"]
    assert probes, defaults
    assert all(r.status == 404 for r in probes), probes


def read_four_tiles(url: str) -> list[np.ndarray]:
    with gdal_env(), rasterio.open(url) as ds:
        return [ds.read(1, window=Window(c, r, TILE, TILE)) for r in (0, TILE) for c in (0, TILE)]


@pytest.fixture
def served_band(band: Path, tmp_path: Path) -> Path:
    """A folder holding only a copy of the band (served by a failure-injecting server)."""
    shutil.copy(band, tmp_path / "red.tif")
    return tmp_path


def test_reads_survive_503s_because_gdal_retries_them(
    band: Path, served_band: Path, http_server_factory: Callable[..., ServerHandle]
) -> None:
    server = http_server_factory(served_band, fail_every=2, failure="503")
    expected = read_four_tiles(str(band))

    data = read_four_tiles(server.vsicurl("red.tif"))

    for got, want in zip(data, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    records = server.requests.records()
    failed = [i for i, r in enumerate(records) if r.failed]
    assert len(failed) >= 3, records
    for i in failed:
        assert records[i].status == 503
        retry = records[i + 1]  # the very next request asks for the same bytes again, and gets them
        assert (retry.method, retry.range, retry.status) == (records[i].method, records[i].range, 206)


@pytest.mark.slow
def test_a_server_that_keeps_answering_503_fails_the_open_after_our_retries(
    served_band: Path, http_server_factory: Callable[..., ServerHandle]
) -> None:
    server = http_server_factory(served_band, fail_every=1, failure="503")
    with pytest.raises(RasterioIOError, match="503"):
        read_four_tiles(server.vsicurl("red.tif"))
    records = server.requests.records()
    assert len(records) == 1 + int(GDAL_OPTIONS["GDAL_HTTP_MAX_RETRY"]), records
    assert {(r.path, r.range) for r in records} == {("/red.tif", records[0].range)}, "the same request"


def test_dropped_connections_now_and_then_still_give_the_right_data(
    band: Path, served_band: Path, http_server_factory: Callable[..., ServerHandle]
) -> None:
    """Connections cut off after the headers now and then: the pixels still arrive intact.

    A cut-off body is not retried as such (GDAL's retries are for HTTP statuses and timeouts):
    /vsicurl/ notices the short body and asks again for the bytes it lacks.
    """
    server = http_server_factory(served_band, fail_every=2, failure="drop")
    expected = read_four_tiles(str(band))

    data = read_four_tiles(server.vsicurl("red.tif"))

    for got, want in zip(data, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert sum(r.failed for r in server.requests.records()) >= 3


def test_a_server_that_drops_every_connection_fails_the_read_not_hangs(
    served_band: Path, http_server_factory: Callable[..., ServerHandle]
) -> None:
    """Every body lost: a quick RasterioIOError, no hang and no endless retries.

    GDAL gives up during the open with a misleading "not recognized as being in a supported file
    format" after a few requests and no back-off, so callers must wrap it in their own error.
    """
    server = http_server_factory(served_band, fail_every=1, failure="drop")
    with pytest.raises(RasterioIOError):
        read_four_tiles(server.vsicurl("red.tif"))
    records = server.requests.records()
    assert records, "GDAL did contact the server"
    assert all(r.failed for r in records)
    assert len(records) <= 1 + int(GDAL_OPTIONS["GDAL_HTTP_MAX_RETRY"])


def test_the_server_answers_ranges_logs_requests_and_switches_failure_policy(
    served_band: Path, http_server_factory: Callable[..., ServerHandle]
) -> None:
    server = http_server_factory(served_band)
    size = (served_band / "red.tif").stat().st_size

    def get(path: str, **headers: str) -> tuple[int, bytes]:
        request = urllib.request.Request(server.url(path), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, b""

    assert get("red.tif", Range="bytes=10-19") == (206, (served_band / "red.tif").read_bytes()[10:20])
    assert get("missing.tif")[0] == 404
    records = server.requests.records()
    assert [(r.method, r.path, r.range, r.status, r.failed) for r in records] == [
        ("GET", "/red.tif", "bytes=10-19", 206, False),
        ("GET", "/missing.tif", None, 404, False),
    ]
    server.set_failure(2, "503")
    assert [get("red.tif")[0] for _ in range(4)] == [200, 503, 200, 503]
    server.set_failure(None)
    server.requests.clear()
    status, body = get("red.tif")
    assert (status, len(body)) == (200, size)
    assert len(server.requests) == 1


def test_a_failed_open_is_cached_by_gdal_until_forget_cached_reads(
    served_band: Path, http_server_factory: Callable[..., ServerHandle]
) -> None:
    """After an open fails (503s beyond GDAL's retries), GDAL answers a retry from its cache.

    The app's own retry would send nothing and fail again; ``forget_cached_reads`` makes it re-send.
    """
    server = http_server_factory(served_band, fail_every=1, failure="503")
    url = fresh(server.url("red.tif"))
    with pytest.raises(RasterioIOError):
        read_four_tiles(f"/vsicurl/{url}")
    assert len(server.requests.records()) == 1 + int(GDAL_OPTIONS["GDAL_HTTP_MAX_RETRY"])
    server.set_failure(None)
    server.requests.clear()
    with pytest.raises(RasterioIOError):
        read_four_tiles(f"/vsicurl/{url}")
    assert server.requests.records() == [], "GDAL answered from its cache of the failure"

    forget_cached_reads(url)
    data = read_four_tiles(f"/vsicurl/{url}")

    assert server.requests.records(), "the retry was really sent"
    with rasterio.open(served_band / "red.tif") as local:
        np.testing.assert_array_equal(data[0], local.read(1, window=Window(0, 0, TILE, TILE)))


def test_gdal_follows_redirects_so_gdal_href_checks_them_first(
    served_band: Path, http_server_factory: Callable[..., ServerHandle]
) -> None:
    """GDAL 3.10 follows a redirect to any host; ``gdal_href`` refuses one off the list, before GDAL."""
    files = http_server_factory(served_band)
    with (
        ScriptedServer({"*": {"status": 200, "body": "canary"}}) as canary,
        ScriptedServer(redirect_everything_to(canary.base_url)) as off_list,
        ScriptedServer(redirect_everything_to(files.base_url)) as on_list,
    ):
        with pytest.raises(RasterioIOError), gdal_env(), rasterio.open(off_list.url(fresh("red.tif"))):
            pass
        assert canary.requests(), "control: GDAL itself followed the redirect to the canary"
        canary.clear()
        allow = AllowList.of([f"127.0.0.1:{port}" for port in (files.port, off_list.port, on_list.port)])
        with pytest.raises(HostNotAllowedError, match="redirect"):
            gdal_href(off_list.url(fresh("red.tif")), allow)
        assert canary.requests() == []
        # a redirect within the list: GDAL is handed the final URL and reads it
        target = gdal_href(on_list.url("red.tif?v=1"), allow)
        assert target == files.url("red.tif?v=1")
        with gdal_env(), rasterio.open(target) as ds:
            assert ds.width >= 2 * TILE


@pytest.mark.parametrize(
    "script",
    [
        {"status": 300},  # libcurl follows any 3xx with a Location, not only 301/302/303/307/308
        {"status": 305},
        {
            "method": "HEAD",
            "status": 302,
        },  # GDAL's first request is a HEAD: redirected alone, it led GDAL off
    ],
    ids=["300", "305", "HEAD only"],
)
def test_every_redirect_gdal_would_follow_is_checked_first(
    served_band: Path, http_server_factory: Callable[..., ServerHandle], script: dict[str, object]
) -> None:
    """Review: a 300, a 305 or a redirect of HEAD alone passed the check, and GDAL read off the list."""
    files = http_server_factory(served_band)
    answer = {"status": script["status"], "headers": {"location": files.base_url + "{path}"}}
    key = f"{script['method']} /red.tif" if "method" in script else "*"
    with ScriptedServer({key: answer}) as server:
        files.requests.clear()
        try:  # control: GDAL itself follows the redirect to the file server
            with gdal_env(), rasterio.open(server.url(fresh("red.tif"))):
                pass
        except RasterioIOError:
            pass
        assert files.requests.records(), "GDAL did not follow the redirect"
        allow = AllowList.of([f"127.0.0.1:{server.port}"])
        with pytest.raises(HostNotAllowedError, match="redirect"):
            gdal_href(server.url(fresh("red.tif")), allow)
        allowed_too = AllowList.of([f"127.0.0.1:{port}" for port in (server.port, files.port)])
        assert gdal_href(server.url("red.tif"), allowed_too) == files.url("red.tif")


def test_head_and_get_redirected_to_different_allowed_places_follow_the_gets(
    served_band: Path, http_server_factory: Callable[..., ServerHandle]
) -> None:
    """Signed redirects differ from request to request: both targets are checked, the GET's is followed.

    Diff review: they were refused as "different places" although both were on the list.
    """
    files = http_server_factory(served_band)
    script = {
        "HEAD /red.tif": {"status": 302, "headers": {"location": files.url("red.tif?sig=head")}},
        "GET /red.tif": {"status": 302, "headers": {"location": "/elsewhere.tif"}},
        "/elsewhere.tif": {"status": 302, "headers": {"location": files.url("red.tif?sig=get")}},
    }
    with ScriptedServer(script) as signer:
        allow = AllowList.of([f"127.0.0.1:{port}" for port in (signer.port, files.port)])
        assert gdal_href(signer.url("red.tif"), allow) == files.url("red.tif?sig=get")
        only_signer = AllowList.of([f"127.0.0.1:{signer.port}"])
        with pytest.raises(HostNotAllowedError, match="redirect"):  # the HEAD's target is off this list
            gdal_href(signer.url(fresh("red.tif")), only_signer)


def test_the_readers_retry_really_resends_after_a_failed_open(
    served_band: Path, http_server_factory: Callable[..., ServerHandle]
) -> None:
    """The pixel reader's own retry clears GDAL's cached failure, so the server sees it and it succeeds."""
    from rasterio.enums import Resampling

    from lulc.grid import OutputGrid
    from lulc.pixels import RetryPolicy

    server = http_server_factory(served_band, fail_every=1, failure="503")
    url = fresh(server.url("red.tif"))
    with rasterio.open(served_band / "red.tif") as local:
        grid = OutputGrid(local.crs.to_string(), local.transform, local.width, local.height, 256)
        block = next(grid.blocks())
        expected = local.read(1, window=block.window)
    outcome: dict[str, object] = {}

    def read() -> None:
        try:
            outcome["data"] = RetryPolicy(attempts=3, delay=1.5).run_read(
                url, grid, block, 0, Resampling.nearest
            )
        except Exception as exc:  # the assertion below names it
            outcome["error"] = exc

    worker = threading.Thread(target=read)
    worker.start()
    first_open = 1 + int(GDAL_OPTIONS["GDAL_HTTP_MAX_RETRY"])
    deadline = time.monotonic() + 30
    while len(server.requests.records()) < first_open and time.monotonic() < deadline:
        time.sleep(0.05)
    server.set_failure(None)  # the server recovers while the reader waits to retry
    worker.join(60)
    assert "error" not in outcome, outcome.get("error")
    np.testing.assert_array_equal(np.asarray(outcome["data"]), expected)
    assert len(server.requests.records()) > first_open, "the retry was really sent"


def test_a_redirect_chain_longer_than_the_limit_or_a_loop_is_refused_not_handed_to_gdal() -> None:
    """Six hops on an allowed host then one off it, and a self-redirect: refused, nothing fetched off-list."""
    from lulc.gdal_env import MAX_REDIRECTS, PROBES, GdalAllowList

    with ScriptedServer({"*": {"status": 200, "body": "canary"}}) as canary:
        hops = {f"/hop/{i}": {"status": 302, "headers": {"location": f"/hop/{i - 1}"}} for i in range(1, 8)}
        hops["/hop/0"] = {"status": 302, "headers": {"location": canary.url("secret.tif")}}
        hops["/loop.tif"] = {"status": 302, "headers": {"location": "/loop.tif"}}
        with ScriptedServer(hops) as chain:
            allow = AllowList.of([f"127.0.0.1:{chain.port}"])
            with pytest.raises(HostNotAllowedError, match=f"more than {MAX_REDIRECTS} times"):
                gdal_href(chain.url(fresh("hop/7")), allow)
            with pytest.raises(HostNotAllowedError, match=f"more than {MAX_REDIRECTS} times"):
                GdalAllowList.like(allow).check(chain.url(fresh("loop.tif")), "asset")
            assert len(chain.requests()) <= 2 * len(PROBES) * (MAX_REDIRECTS + 1)  # bounded, not a recursion
            # the control: within the limit, the chain's end is checked and refused as off the list
            with pytest.raises(HostNotAllowedError, match="redirect"):
                gdal_href(chain.url(fresh("hop/2")), allow)
        assert canary.requests() == []


def test_a_vrt_named_like_a_tif_is_not_opened_as_one(tmp_path: Path) -> None:
    """GDAL picks the driver from the content: a VRT served as .tif would read whatever it names."""
    import rasterio.shutil
    from rasterio.transform import from_origin

    from lulc.gdal_env import REMOTE_RASTER_DRIVER

    secret = tmp_path / "secret.tif"
    with rasterio.open(
        secret,
        "w",
        driver="GTiff",
        width=4,
        height=4,
        count=1,
        dtype="uint8",
        crs="EPSG:32654",
        transform=from_origin(0, 40, 10, 10),
    ) as dst:
        dst.write(np.full((1, 4, 4), 42, np.uint8))
    rasterio.shutil.copy(str(secret), str(tmp_path / "disguised.vrt"), driver="VRT")
    (tmp_path / "map.tif").write_bytes((tmp_path / "disguised.vrt").read_bytes())
    with rasterio.open(tmp_path / "map.tif") as src:  # the control: GDAL alone reads the secret through it
        assert src.driver == "VRT"
        assert src.read(1)[0, 0] == 42
    with pytest.raises(RasterioIOError, match="not recognized"):
        rasterio.open(tmp_path / "map.tif", driver=REMOTE_RASTER_DRIVER)
    with rasterio.open(secret, driver=REMOTE_RASTER_DRIVER) as src:  # a GeoTIFF opens as ever
        assert src.read(1)[0, 0] == 42
    # the pixel reader of training and serving (STAC assets) opens with it
    from rasterio.enums import Resampling

    from lulc.grid import OutputGrid
    from lulc.pixels.windows import read_window

    grid = OutputGrid("EPSG:32654", from_origin(0, 40, 10, 10), 4, 4, 16)
    block = next(iter(grid.blocks()))
    assert read_window(str(secret), grid, block, 0.0, Resampling.nearest)[0, 0] == 42
    with pytest.raises(RasterioIOError, match="not recognized"):
        read_window(str(tmp_path / "map.tif"), grid, block, 0.0, Resampling.nearest)


def test_only_what_may_pass_is_retried_and_ends_as_an_upstream_error(
    served_band: Path, tmp_path: Path, http_server_factory: Callable[..., ServerHandle]
) -> None:
    """Diff review: a missing file or object was retried and ended as ReadUnavailableError (lulc exit 75)."""
    from rasterio.enums import Resampling

    from lulc.errors import ReadError, ReadUnavailableError
    from lulc.grid import OutputGrid
    from lulc.pixels import RetryPolicy

    with rasterio.open(served_band / "red.tif") as local:
        grid = OutputGrid(local.crs.to_string(), local.transform, local.width, local.height, 256)
    block = next(grid.blocks())
    policy = RetryPolicy(attempts=2, delay=0.01)
    server = http_server_factory(served_band)
    (tmp_path / "junk.tif").write_bytes(b"not a raster")
    for missing in (str(tmp_path / "nope.tif"), str(tmp_path / "junk.tif"), fresh(server.url("nope.tif"))):
        with pytest.raises(ReadError) as refused:
            policy.run_read(missing, grid, block, 0, Resampling.nearest)
        assert not isinstance(refused.value, ReadUnavailableError), refused.value
    assert len([r for r in server.requests.records() if r.path == "/nope.tif"]) == 1  # not asked again
    server.set_failure(1, "drop")
    with pytest.raises(ReadUnavailableError, match="after 2 attempts"):
        policy.run_read(fresh(server.url("red.tif")), grid, block, 0, Resampling.nearest)
    # CLI review: a cut-short local COG said only "Read failed. See previous exception for details."
    data = (served_band / "red.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) * 3 // 4])
    last = list(grid.blocks())[-1]  # its tiles are the file's last bytes: cut off
    with pytest.raises(ReadError) as cut:
        policy.run_read(str(tmp_path / "cut.tif"), grid, last, 0, Resampling.nearest)
    assert "See previous exception" not in str(cut.value)
    assert "failed" in str(cut.value), (
        cut.value
    )  # GDAL's own words: IReadBlock ... TIFFReadEncodedTile() failed


def test_a_page_that_is_no_tiff_fails_at_once_not_as_a_server_to_retry(
    served_band: Path,
    tmp_path: Path,
    http_server_factory: Callable[..., ServerHandle],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An asset href answering an HTML page was retried 3 times per block, then exit 75 ("retry later").

    GDAL's words are those of a TIFF cut off during the open; the page's first bytes tell them apart.
    """
    from rasterio.enums import Resampling

    from lulc.errors import ReadError, ReadUnavailableError
    from lulc.grid import OutputGrid
    from lulc.pixels import RetryPolicy

    with rasterio.open(served_band / "red.tif") as local:
        grid = OutputGrid(local.crs.to_string(), local.transform, local.width, local.height, 256)
    block = next(grid.blocks())
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "page.tif").write_text("<html><body>Sign in to download</body></html>")
    server = http_server_factory(pages)
    policy = RetryPolicy(attempts=3, delay=0.01)
    with pytest.raises(ReadError, match=r"answers with no TIFF \(its first bytes: b'<htm'\)") as page:
        policy.run_read(fresh(server.url("page.tif")), grid, block, 0, Resampling.nearest)
    assert not isinstance(page.value, ReadUnavailableError)
    sniffs = [r for r in server.requests.records() if r.path == "/page.tif" and r.range == "bytes=0-3"]
    assert len(sniffs) == 1  # one look at the first bytes, and no second attempt
    # a real COG behind it is read as before (the look is made only after GDAL failed)
    shutil.copy(served_band / "red.tif", pages / "red.tif")
    data = policy.run_read(fresh(server.url("red.tif")), grid, block, 0, Resampling.nearest)
    assert data.shape == (block.height, block.width)
    assert not [r for r in server.requests.records() if r.path == "/red.tif" and r.range == "bytes=0-3"]
    # GDAL given credentials: a look without them proves nothing (a login page may answer it), so retried
    monkeypatch.setenv("GDAL_HTTP_HEADERS", "Authorization: Bearer t")
    with pytest.raises(ReadUnavailableError, match="after 3 attempts"):
        policy.run_read(fresh(server.url("page.tif")), grid, block, 0, Resampling.nearest)
