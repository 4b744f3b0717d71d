"""SAS signing of blob hrefs (``lulc.sas``) against a loopback blob store and token service."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling

from lulc.allowlist import AllowList
from lulc.errors import ReadError, SourceError
from lulc.gdal_env import forget_cached_reads
from lulc.grid import Block, OutputGrid
from lulc.pixels.windows import RetryPolicy
from lulc.redaction import RedactSignatures, redact_signatures
from lulc.sas import PLANETARY_COMPUTER_TOKENS, SasSigner, signer_for, token_url_for
from lulc.stac_io import CheckedHttp
from lulc.urls import HostNotAllowedError
from tests.conftest import ServerFactory
from tests.support.http_server import TOKEN_PATH, ServerHandle

TOKEN = "st=2026-12-03T09%3A00Z&se=2026-12-03T10%3A00Z&sp=rl&sv=2024-05-04&sr=c&sig=c2VjcmV0LXNpZw%3D%3D"
"""An Azure SAS as the Planetary Computer's token service answers them (the signature is the secret)."""
SECRET = "c2VjcmV0LXNpZw"


@pytest.fixture
def blob_store(tmp_path: Path, http_server_factory: ServerFactory) -> Iterator[ServerHandle]:
    """A loopback server holding ``cogs/band.tif`` (64 x 64, values 0..4095) behind the SAS ``TOKEN``."""
    (tmp_path / "cogs").mkdir()
    profile = {
        "driver": "GTiff",
        "dtype": "uint16",
        "width": 64,
        "height": 64,
        "count": 1,
        "crs": "EPSG:32633",
        "transform": rasterio.Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0),
        "tiled": True,
        "blockxsize": 32,
        "blockysize": 32,
    }
    with rasterio.open(tmp_path / "cogs" / "band.tif", "w", **profile) as dst:
        dst.write(np.arange(64 * 64, dtype=np.uint16).reshape(1, 64, 64))
    server = http_server_factory(tmp_path)
    server.set_sas(TOKEN)
    yield server
    server.set_sas(None)


def signer(server: ServerHandle, clock: list[float] | None = None) -> SasSigner:
    now = clock if clock is not None else [0.0]
    http = CheckedHttp(AllowList.of(["127.0.0.1"]), max_retries=0)
    return SasSigner(http, server.base_url + TOKEN_PATH, (f"127.0.0.1:{server.port}",), lambda: now[0])


def token_requests(server: ServerHandle) -> int:
    return len([r for r in server.requests.records() if r.path.startswith(TOKEN_PATH)])


def test_blob_hrefs_are_signed_with_one_token_per_container_until_it_nears_expiry(
    blob_store: ServerHandle,
) -> None:
    import time

    clock = [time.time()]
    sas = signer(blob_store, clock)
    href = blob_store.url("cogs/band.tif")
    blob_store.requests.clear()
    assert sas.sign(href) == f"{href}?{TOKEN}"
    assert sas.sign(blob_store.url("cogs/other.tif")) == blob_store.url("cogs/other.tif") + "?" + TOKEN
    assert token_requests(blob_store) == 1  # kept: one request for the container, however many hrefs
    (request,) = [r for r in blob_store.requests.records() if r.path.startswith(TOKEN_PATH)]
    assert request.path == f"{TOKEN_PATH}127/cogs"  # <account>/<container>
    clock[0] += 3600 - 30  # the token (an hour) now expires within the margin: asked for again
    sas.sign(href)
    assert token_requests(blob_store) == 2
    # not on the signed hosts, signed already, or no container: as they are
    for href_as_is in (
        "https://earth-search.example/cogs/band.tif",
        f"{href}?se=x&sig=already",
        blob_store.base_url + "/",
    ):
        assert sas.sign(href_as_is) == href_as_is
    assert token_requests(blob_store) == 2


def test_a_signer_travels_to_dask_workers_without_its_lock_and_asks_for_its_own_tokens(
    blob_store: ServerHandle,
) -> None:
    """The readers are scattered to Dask workers (pickled): a lock cannot be, a token should not be."""
    href = blob_store.url("cogs/band.tif")
    sas = SasSigner(
        CheckedHttp(AllowList.of(["127.0.0.1"]), max_retries=0),
        blob_store.base_url + TOKEN_PATH,
        (f"127.0.0.1:{blob_store.port}",),
    )
    sas.sign(href)
    blob_store.requests.clear()
    copy = pickle.loads(pickle.dumps(sas))
    assert copy.sign(href) == f"{href}?{TOKEN}"
    assert token_requests(blob_store) == 1  # its own token, not the pickled one
    assert sas.sign(href) == f"{href}?{TOKEN}"
    assert token_requests(blob_store) == 1  # the original kept its own


def test_a_token_service_off_the_list_or_answering_no_token_is_a_source_error(
    blob_store: ServerHandle, tmp_path: Path, http_server_factory: ServerFactory
) -> None:
    href = blob_store.url("cogs/band.tif")
    refusing = SasSigner(
        CheckedHttp(AllowList.of(["example.com"]), max_retries=0),
        blob_store.base_url + TOKEN_PATH,
        (f"127.0.0.1:{blob_store.port}",),
    )
    with pytest.raises(HostNotAllowedError, match="SAS token service"):
        refusing.sign(href)
    # a server answering some other JSON at the token path
    (tmp_path / "junk" / "api" / "sas" / "v1" / "token" / "127").mkdir(parents=True)
    (tmp_path / "junk" / "api" / "sas" / "v1" / "token" / "127" / "cogs").write_text(json.dumps({"no": 1}))
    junk = http_server_factory(tmp_path / "junk")
    answering_junk = SasSigner(
        CheckedHttp(AllowList.of(["127.0.0.1"]), max_retries=0),
        junk.base_url + TOKEN_PATH,
        (f"127.0.0.1:{blob_store.port}",),
    )
    with pytest.raises(SourceError, match=r"answered no token \(expected JSON with `token`"):
        answering_junk.sign(href)


def test_reads_of_a_sas_blob_are_signed_and_errors_name_the_href_without_its_signature(
    blob_store: ServerHandle,
) -> None:
    grid = OutputGrid("EPSG:32633", rasterio.Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0), 64, 64, 32)
    block = Block(2, 32, 0, 32, 32)
    href = blob_store.url("cogs/band.tif")
    forget_cached_reads(blob_store.base_url + "/")
    values = RetryPolicy(signer=signer(blob_store)).run_read(href, grid, block, 0.0, Resampling.nearest)
    assert values[0, 0] == 32 * 64  # row 32, column 0
    tifs = blob_store.requests.for_path(".tif")
    assert tifs
    assert all(SECRET in r.query for r in tifs)
    # control: unsigned, the store refuses (403), and the error says so
    forget_cached_reads(blob_store.base_url + "/")
    with pytest.raises(ReadError, match="403") as unsigned:
        RetryPolicy(attempts=1, delay=0.0).run_read(href, grid, block, 0.0, Resampling.nearest)
    assert href in str(unsigned.value)
    # a token the store refuses: the error names the href, never the signature
    blob_store.set_sas(TOKEN, handed=TOKEN.replace(SECRET, "b3RoZXI"))
    forget_cached_reads(blob_store.base_url + "/")
    with pytest.raises(ReadError, match="403") as refused:
        RetryPolicy(attempts=1, delay=0.0, signer=signer(blob_store)).run_read(
            href, grid, block, 0.0, Resampling.nearest
        )
    assert href in str(refused.value)
    assert "b3RoZXI" not in str(refused.value)


def test_the_planetary_computer_s_stac_api_is_signed_with_its_token_service() -> None:
    pc = "https://planetarycomputer.microsoft.com/api/stac/v1"
    assert token_url_for(pc) == PLANETARY_COMPUTER_TOKENS
    assert token_url_for("https://earth-search.aws.element84.com/v1") is None
    assert token_url_for("catalog.json") is None
    assert token_url_for("catalog.json", "https://tokens.example/sas") == "https://tokens.example/sas"
    made = signer_for(pc, AllowList.anything())
    assert made is not None
    assert made.token_url == PLANETARY_COMPUTER_TOKENS
    assert signer_for("https://earth-search.aws.element84.com/v1", AllowList.anything()) is None


def test_a_planetary_computer_item_s_hrefs_ask_for_their_account_and_container_s_token(
    blob_store: ServerHandle,
) -> None:
    """The real item's blobs (``tests/data/items``) under the default hosts: ``sentinel2l2a01/sentinel2-l2``.

    The token service is the loopback server's; nothing is read from the blobs themselves.
    """
    from lulc.sentinel2 import normalize_item

    raw = json.loads(
        (Path(__file__).parents[1] / "data/items/planetary-computer-sentinel-2-l2a.json").read_text()
    )
    item = normalize_item(raw)
    sas = SasSigner(CheckedHttp(AllowList.of(["127.0.0.1"]), max_retries=0), blob_store.base_url + TOKEN_PATH)
    blob_store.requests.clear()
    hrefs = [asset.href for asset in item.bands.values()] + [item.scl.href if item.scl else ""]
    assert all(sas.sign(href) == f"{href}?{TOKEN}" for href in hrefs)
    assert [r.path for r in blob_store.requests.records()] == [f"{TOKEN_PATH}sentinel2l2a01/sentinel2-l2"]
    # a host that only ends like a blob account is not one
    lookalike = "https://sentinel2l2a01.blob.core.windows.net.example.com/sentinel2-l2/x.tif"
    assert sas.sign(lookalike) == lookalike
    # an https token service's token is not sent over plain http (review)
    https_service = SasSigner(CheckedHttp(AllowList.anything()), "https://tokens.example/sas")
    clear = hrefs[0].replace("https://", "http://")
    assert https_service.sign(clear) == clear


def test_signatures_are_cut_from_what_gdal_says_of_a_signed_url() -> None:
    text = "'/vsicurl/https://a.blob.core.windows.net/c/x.tif?se=2099&sig=c2VjcmV0%3D&sp=rl' not recognized"
    assert (
        redact_signatures(text)
        == "'/vsicurl/https://a.blob.core.windows.net/c/x.tif?se=2099&sig=...&sp=rl' not recognized"
    )
    assert redact_signatures("x.tif?sig=abc") == "x.tif?sig=..."
    assert redact_signatures("no signature, design=abc") == "no signature, design=abc"


def test_a_failed_signed_read_chains_no_gdal_error_naming_the_signature(blob_store: ServerHandle) -> None:
    """GDAL's error, naming the signed URL, is not kept under the ReadError.

    Review: the message was clean, but ``from exc`` chained GDAL's error, which ``log.exception`` (the
    serverless handler's, for every 502) printed whole.
    """
    import traceback

    (blob_store.directory / "cogs" / "page.tif").write_text("<html>sign in</html>")
    grid = OutputGrid("EPSG:32633", rasterio.Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0), 64, 64, 32)
    forget_cached_reads(blob_store.base_url + "/")
    with pytest.raises(ReadError, match="answers with no TIFF") as failed:
        RetryPolicy(attempts=1, delay=0.0, signer=signer(blob_store)).run_read(
            blob_store.url("cogs/page.tif"), grid, Block(0, 0, 0, 32, 32), 0.0, Resampling.nearest
        )
    shown = "".join(traceback.format_exception(failed.value))
    assert "not recognized" not in shown  # GDAL's error is not chained
    assert SECRET not in shown


def test_log_handlers_cut_signatures_from_messages_and_tracebacks() -> None:
    import io
    import logging

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSignatures())
    log = logging.getLogger("tests.sas.redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("GET %s", f"https://a.blob.core.windows.net/c/x.tif?{TOKEN}")
        try:
            raise ValueError(f"'/vsicurl/https://a.blob.core.windows.net/c/x.tif?{TOKEN}' not recognized")
        except ValueError:
            log.exception("read failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert SECRET not in text
    assert text.count("sig=...") == 2
    assert "x.tif?st=2026-12-03T09%3A00Z" in text  # the rest of the URL stays
