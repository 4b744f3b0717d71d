"""The one URL parse and allow-list (``lulc.urls``, ``lulc.allowlist``): tricks refused, the rest normalised.

No network here: ``tests/service/test_ssrf.py`` and ``tests/tiler/test_ssrf.py`` run the same tricks
against the apps with real loopback servers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from lulc.allowlist import AllowList, HostRule, UrlPrefix
from lulc.urls import HostNotAllowedError, parse_location, redirect_url

ALLOWED = "127.0.0.1:8001"
OTHER = "127.0.0.1:9999"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # the example: urlparse saw host 127.0.0.1:8001, requests/urllib connect to :9999
        (f"http://{OTHER}\\@{ALLOWED}/stacapi", "backslash"),
        (f"http://{ALLOWED}\\..\\x", "backslash"),
        (f"http://{OTHER}@{ALLOWED}/x", "user names"),
        (f"http://user:pw@{ALLOWED}/x", "user names"),
        (f"http://{ALLOWED}/x\r\nHost: evil", "control"),
        (f"http://{ALLOWED}/x\x00.json", "control"),
        (f"http://{ALLOWED}/x%00.json", "control"),
        (f"http://{ALLOWED}/a%0d%0aSet-Cookie:x", "control"),
        (f"http://{ALLOWED}/a%5c..%5cb", "backslash"),
        (f"http://{ALLOWED}/a%2f..%2fb", "slash"),
        (f"http://{ALLOWED}/a b", "spaces"),
        (f"http://{ALLOWED}/..", "climbs above the root"),
        (f"http://{ALLOWED}/a/../../etc/passwd", "climbs above the root"),
        (f"http://{ALLOWED}/%2e%2e/x", "climbs above the root"),
        ("http://127.0.0.1:0/x", "port"),
        ("http://127.0.0.1:65536/x", "port"),
        ("http://127.0.0.1:80a/x", "port"),
        ("http:///x", "host"),
        ("http://exa%6dple.com/x", "host"),
        ("http:/127.0.0.1/x", "'//'"),
        ("ftp://example.com/x.tif", "scheme"),
        ("gopher://127.0.0.1:6379/_INFO", "scheme"),
        ("dict://127.0.0.1:11211/stat", "scheme"),
        ("gs://bucket/x.tif", "scheme"),
        ("GTIFF_DIR:1:/etc/x.tif", "scheme"),
        ("%68ttp://127.0.0.1:9999/x.json", "known scheme"),
        (" http://127.0.0.1:9999/x.json", "known scheme"),
        ("file://evil.example/etc/passwd", "other hosts"),
        ("/vsizip//local/file.zip/x.tif", "virtual file systems"),
        ("/vsimem/x.tif", "virtual file systems"),
        ("/vsicurl?url=http://127.0.0.1:9999/x.tif", "virtual file systems"),
        ("/vsicurl_streaming/http://127.0.0.1:9999/x.tif", "virtual file systems"),
        ("/vsicurl/file:///etc/passwd", "must wrap an http"),
        ("/vsicurl//vsizip//x.zip/a.tif", "virtual file systems"),
        ("s3://bucket:9000/x", "bucket"),
        ("", "empty"),
    ],
)
def test_tricks_are_refused_by_the_parse(text: str, reason: str) -> None:
    with pytest.raises(HostNotAllowedError, match=reason):
        parse_location(text, "STAC source")


@pytest.mark.parametrize(
    ("text", "href"),
    [
        ("HTTP://Example.COM/a", "http://example.com/a"),
        ("hTtPs://EXAMPLE.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("http://example.com./a", "http://example.com/a"),
        ("http://h/world/../other/x.json", "http://h/other/x.json"),
        ("http://h/world/%2e%2e/other", "http://h/other"),
        ("http://h/world/%2E%2E/other", "http://h/other"),
        ("http://h/a/./b/", "http://h/a/b/"),
        ("http://h/a/..", "http://h/"),
        ("http://h/%7Euser/a%20b.tif", "http://h/~user/a%20b.tif"),
        ("http://h/x.tif?sig=a%2Fb%3D&se=2024#frag", "http://h/x.tif?sig=a%2Fb%3D&se=2024"),
        ("http://h", "http://h"),
        ("http://[::1]:8000/x", "http://[::1]:8000/x"),
        ("/vsicurl/https://h/x.tif", "https://h/x.tif"),
        ("/vsicurl/HTTPS://H/a/../x.tif", "https://h/x.tif"),
        ("/vsis3/bucket/key/x.tif", "s3://bucket/key/x.tif"),
        ("S3://Bucket/key/../x.tif", "s3://bucket/x.tif"),
        ("file:///data/a%20b.json", "/data/a b.json"),
        ("file://localhost/data/x.json", "/data/x.json"),
        ("/data/100%25.json", "/data/100%25.json"),  # a plain path is taken literally
    ],
)
def test_urls_are_normalised_to_what_is_fetched(text: str, href: str) -> None:
    assert parse_location(text).href == href
    assert parse_location(href).href == href  # normalising twice changes nothing


SERVICE = AllowList.of(
    [
        ALLOWED,
        "earth-search.aws.element84.com",
        "*.tiles.example.org",
        "https://data.example/pub/cogs",
        "s3://sentinel-cogs",
    ]
)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        (f"http://{ALLOWED}/stacapi", True),
        (f"http://{OTHER}/stacapi", False),
        (f"http://{OTHER}\\@{ALLOWED}/stacapi", False),
        (f"http://{ALLOWED}@{OTHER}/stacapi", False),
        ("https://earth-search.aws.element84.com/v1/search", True),
        ("https://earth-search.aws.element84.com:8443/v1", True),  # a bare host allows any port
        ("https://EARTH-search.aws.element84.com./v1", True),
        ("https://earth-search.aws.element84.com.evil.example/v1", False),
        ("https://evil.example/earth-search.aws.element84.com", False),
        ("https://a.tiles.example.org/x", True),
        ("https://tiles.example.org/x", False),
        ("https://atiles.example.org/x", False),
        ("https://data.example/pub/cogs/x.tif", True),
        ("https://data.example/pub/cogs", True),
        ("https://data.example/pub/cogsx/x.tif", False),
        ("https://data.example/pub/cogs/../secret/x.tif", False),
        ("https://data.example/pub/cogs/%2e%2e/secret/x.tif", False),
        ("https://data.example/pub/x/../cogs/x.tif", True),
        ("http://data.example/pub/cogs/x.tif", False),  # the prefix says https
        ("https://data.example:8443/pub/cogs/x.tif", False),
        ("/vsicurl/https://data.example/pub/cogs/x.tif", True),
        ("/vsicurl/https://data.example/pub/other.tif", False),
        ("s3://sentinel-cogs/a/b.tif", True),
        ("/vsis3/sentinel-cogs/a/b.tif", True),
        ("/vsis3/other-bucket/a/b.tif", False),
        # a host rule is for http(s): a bucket named like an allowed host is anyone's (review)
        ("s3://earth-search.aws.element84.com/a/b.tif", False),
        ("/vsis3/earth-search.aws.element84.com/a/b.tif", False),
        ("/data/catalog.json", False),
        ("file:///data/catalog.json", False),
        ("/vsizip//data/x.zip/a.tif", False),
        ("http%3A//127.0.0.1:8001/x.json", False),  # a relative local path, and no local folders
    ],
)
def test_service_allow_list(url: str, allowed: bool) -> None:
    assert SERVICE.allows(url) is allowed
    if allowed:
        assert SERVICE.check(url) == parse_location(url).href
    else:
        with pytest.raises(HostNotAllowedError, match="not allowed"):
            SERVICE.check(url, "asset")


def test_host_rules_and_prefixes_are_parsed_once() -> None:
    assert HostRule.parse("Example.COM:8080") == HostRule("example.com", 8080, False)
    assert HostRule.parse("*.example.com") == HostRule("example.com", None, True)
    assert UrlPrefix.parse("HTTPS://Data.Example:443/pub/./cogs/") == UrlPrefix(
        "https", "data.example", 443, "/pub/cogs/"
    )
    for bad in ("http//x", "exa mple.com", "user@host", "host:port"):
        with pytest.raises(ValueError, match="not a host"):
            HostRule.parse(bad)
    with pytest.raises(ValueError, match="backslashes"):
        AllowList.of(["http://a\\@b/"])
    # a host:port entry allows only that port; the default port matches an explicit one
    rule = HostRule.parse("example.com:443")
    assert rule.matches(parse_location("https://example.com/x"))
    assert not rule.matches(parse_location("http://example.com/x"))


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """``allowed/`` with a catalog, a symlink pointing outside and a subfolder; ``outside/`` with a secret."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "sub").mkdir(parents=True)
    outside.mkdir()
    (allowed / "catalog.json").write_text("{}")
    (outside / "secret.json").write_text('{"id": "secret"}')
    os.symlink(outside / "secret.json", allowed / "link.json")
    os.symlink(outside, allowed / "sub" / "escape")
    return allowed, outside


def test_local_paths_are_confined_to_the_folders(folders: tuple[Path, Path]) -> None:
    allowed, outside = folders
    allow = AllowList.of([ALLOWED], [allowed])
    assert allow.check(str(allowed / "catalog.json")) == str(allowed / "catalog.json")
    assert allow.check(f"file://{allowed}/catalog.json") == str(allowed / "catalog.json")
    assert allow.check(f"{allowed}/sub/../catalog.json") == str(allowed / "catalog.json")
    refused = [
        str(outside / "secret.json"),
        f"{allowed}/../outside/secret.json",
        f"file://{allowed}/%2e%2e/outside/secret.json",
        str(allowed / "link.json"),  # a symlink inside that points outside
        str(allowed / "sub" / "escape" / "secret.json"),
        "/etc/shadow",
        "/root/.bash_history",
        "/etc/passwd",
        "/nonexistent/x.json",
        str(allowed / "missing.json"),  # inside, but missing: the same answer as outside
        str(allowed / ("x" * 300 + ".json")),  # a name the file system cannot hold (was an OSError, a 500)
        "catalog.json",  # relative to the working directory, which is not an allowed folder
    ]
    messages = set()
    for path in refused:
        with pytest.raises(HostNotAllowedError) as info:
            allow.check(path, "STAC source")
        messages.add(re.sub(r"^STAC source '.*' is not", "STAC source PATH is not", str(info.value)))
    assert messages == {
        "STAC source PATH is not allowed: not an existing file under the allow-list's local folders"
    }


def test_relative_local_paths_are_taken_from_the_base(folders: tuple[Path, Path]) -> None:
    allowed, _ = folders
    allow = AllowList.of([], ["allowed"], base=allowed.parent)
    assert allow.folders == (allowed,)
    assert allow.check("allowed/catalog.json") == str(allowed / "catalog.json")


def test_a_relative_path_resolving_to_a_gdal_file_system_is_refused(tmp_path: Path) -> None:
    """Review: with `/` allowed, `vsicurl/http:/host/x.tif` resolved to `/vsicurl/...`, which GDAL fetched."""
    allow = AllowList.from_prefixes(["/"], base=Path("/"))
    assert allow.check("etc/hostname") == "/etc/hostname"  # control: a relative path under `/` is fine
    for relative in ("vsicurl/http:/127.0.0.1:9/x.tif", "vsis3/some-bucket/x.tif", "./vsizip/a.zip/x.tif"):
        with pytest.raises(HostNotAllowedError, match="GDAL virtual file systems"):
            allow.check(relative, "raster")


def test_without_local_folders_no_local_path_is_allowed(folders: tuple[Path, Path]) -> None:
    allowed, _ = folders
    with pytest.raises(HostNotAllowedError, match="local files are not on the allow-list"):
        AllowList.of([ALLOWED]).check(str(allowed / "catalog.json"))
    remote_only = AllowList.of([ALLOWED], [allowed]).without_local()
    assert not remote_only.allows(str(allowed / "catalog.json"))
    assert remote_only.allows(f"http://{ALLOWED}/x.tif")


def test_the_tiler_list_takes_prefixes_and_folders(folders: tuple[Path, Path]) -> None:
    allowed, outside = folders
    # the tiler adds its runs folder: one allowed already is listed once (README review: /healthz twice)
    again = f"{allowed}/../{allowed.name}"
    allow = AllowList.from_prefixes([f"http://{ALLOWED}/runs/2024/", str(allowed), " ", again, str(allowed)])
    assert allow.describe() == [f"http://{ALLOWED}/runs/2024/", str(allowed)]
    assert (
        allow.check(f"http://{ALLOWED}/runs/2024/a/classes.tif")
        == f"http://{ALLOWED}/runs/2024/a/classes.tif"
    )
    # a missing file inside a tiler folder is the tiler's 404, not a refusal
    assert allow.check(str(allowed / "nope.tif")) == str(allowed / "nope.tif")
    for url in (
        f"http://{ALLOWED}/runs/2023/a/classes.tif",
        f"http://{ALLOWED}/runs/2024/../2023/a/classes.tif",
        f"http://{ALLOWED}/runs/2024%2F..%2F2023/a/classes.tif",
        f"http://{ALLOWED}/runs/2024x/classes.tif",
        f"http://u@{ALLOWED}/runs/2024/a/classes.tif",
        str(outside / "secret.json"),
        str(allowed / "link.json"),
        "/vsicurl/http://127.0.0.1:1/x.tif",
    ):
        assert not allow.allows(url), url


def test_anything_still_normalises_and_refuses_tricks(tmp_path: Path) -> None:
    anything = AllowList.anything()
    assert anything.check("HTTP://Any.Host/a/../b.tif") == "http://any.host/b.tif"
    assert anything.check(str(tmp_path / "x" / ".." / "y.tif")) == str(tmp_path / "y.tif")
    assert anything.check(str(tmp_path / "missing.json")) == str(tmp_path / "missing.json")
    for trick in (f"http://{OTHER}\\@{ALLOWED}/", "/vsizip//x.zip/a.tif", "ftp://h/x", "http://u@h/x"):
        assert not anything.allows(trick), trick
    assert not anything.without_local().allows(str(tmp_path / "y.tif"))


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("HTTP://other:81/x.tif", "http://other:81/x.tif"),
        ("//other/x.tif", "http://other/x.tif"),
        ("/b/x.tif", "http://here:8/b/x.tif"),
        ("x.tif?sig=1", "http://here:8/a/x.tif?sig=1"),
        ("http:/other/x.tif", None),  # urljoin: a path on here; curl: host "other"
        ("http:///other/x.tif", None),
        ("http:other/x.tif", None),
        ("\\\\other\\x.tif", None),
        ("http://other/x\x01.tif", None),
        (" http://other/x.tif\t", "http://other/x.tif"),  # around the value: not part of it
        ("http://other/my map.tif?sig=a b", "http://other/my%20map.tif?sig=a+b"),  # as libcurl sends it
        ("///other/x.tif", None),  # urljoin: a path on here; libcurl: host "other"
        ("////other/x.tif", None),
        ("http://other/S\u00c3\u00a3o/\u00c3\u00a0.tif", "http://other/S%C3%A3o/%C3%A0.tif"),  # UTF-8 bytes
    ],
)
def test_a_redirect_is_resolved_only_where_every_client_reads_it_alike(
    location: str, expected: str | None
) -> None:
    if expected is None:
        with pytest.raises(HostNotAllowedError, match="malformed location"):
            redirect_url("http://here:8/a/b.tif", location)
    else:
        assert redirect_url("http://here:8/a/b.tif", location) == expected
