"""``CheckedHttp`` reads a body up to ``max_response_bytes`` and ``max_response_seconds``, never further.

Real loopback servers (``http.server`` in a thread): an endless chunked body, a Content-Length of a GiB,
a body dripping a byte at a time. Each stops by itself at a safety bound, so a reader without the limits
finishes too and its test fails on the assertion.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from lulc.allowlist import AllowList
from lulc.errors import SourceError
from lulc.sources import StaticCatalogSource, open_source
from lulc.stac_io import CheckedHttp
from tests.support.loopback import Log, MiB, misbehaving_server

SAFETY = 96 * MiB  # the endless body ends here, so code without a limit returns (and its test fails)


def serve(log: Log) -> Any:
    """The misbehaving upstream (``tests.support.loopback``), bounded at ``SAFETY``."""
    return misbehaving_server(log, SAFETY)


def http(**kwargs: Any) -> CheckedHttp:
    return CheckedHttp(AllowList.anything(), backoff=0.01, max_backoff=0.02, timeout=10, **kwargs)


def test_an_endless_chunked_body_is_cut_at_the_default_limit_and_not_retried() -> None:
    log = Log()
    with serve(log) as base:
        with pytest.raises(
            SourceError, match=rf"^STAC document {base}/endless is larger than 64 MiB"
        ) as caught:
            http().get_text(f"{base}/endless", "STAC document")
        assert log.done.wait(10)
    assert type(caught.value).__name__ == "ResponseLimitError"
    assert log.requests == 1  # a body over the limit is not asked for again
    assert log.sent < 80 * MiB  # the client hung up at the limit (plus what the socket buffers held)


def test_a_content_length_over_the_limit_is_refused_before_the_body_is_read() -> None:
    log = Log()
    with serve(log) as base:
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"is larger than 64 MiB \(Content-Length 1,073,741,824\)"):
            http(max_retries=0).get_text(f"{base}/declared", "STAC document")
        assert time.monotonic() - started < 2  # not waiting for a body that is never sent
    assert log.requests == 1


def test_a_dripping_body_is_cut_at_the_deadline_though_no_read_times_out() -> None:
    log = Log()
    with serve(log) as base:
        started = time.monotonic()
        with pytest.raises(SourceError, match=rf"^catalog {base}/drip took longer than 1 s to send"):
            http(max_response_seconds=1.0).get_text(f"{base}/drip", "catalog")
        elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 2.0
    assert log.requests == 1
    assert log.sent < 60  # of 160 bytes


def test_open_source_bounds_every_document_of_a_static_catalog() -> None:
    log = Log()
    with serve(log) as base:
        small = open_source(f"{base}/padded.json", max_response_bytes=MiB)
        assert isinstance(small, StaticCatalogSource)
        with pytest.raises(SourceError, match=rf"^catalog {base}/padded.json is larger than 1 MiB"):
            small.search()
        assert open_source(f"{base}/padded.json").search() == []  # 2 MiB: within the default 64 MiB
