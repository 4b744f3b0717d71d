"""The ``/stac`` routes open blobs behind SAS tokens signed (``LULC_TILER_SAS_*``, ``lulc.sas``).

A run's imagery backdrop draws its input items' bands: on the Planetary Computer those are private blobs.
Real parts: the demo world's items (asset hrefs on the loopback COG server), that server refusing every
``.tif`` read without the token's signature and handing the token out as a token service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from lulc.gdal_env import forget_cached_reads
from tests.support.http_server import TOKEN_PATH, ServerHandle
from tiler.app import create_app
from tiler.settings import TilerSettings

TOKEN = "se=2099-01-01T00%3A00Z&sp=rl&sr=c&sig=dGlsZXI"


def test_stac_assets_behind_sas_tokens_are_opened_signed(http_world: Any, cog_server: ServerHandle) -> None:
    item = next(Path(http_world.catalog).parent.glob("sentinel-2-l2a/*/*.json"))
    allow = [str(Path(http_world.root)), f"{cog_server.base_url}/"]
    signed = TilerSettings(
        allow=allow, sas_token_url=cog_server.base_url + TOKEN_PATH, sas_hosts=f"127.0.0.1:{cog_server.port}"
    )
    params = {"url": str(item), "assets": "red"}
    cog_server.set_sas(TOKEN)
    try:
        forget_cached_reads(cog_server.base_url + "/")
        cog_server.requests.clear()
        with TestClient(create_app(signed), raise_server_exceptions=False) as client:
            answer = client.get("/stac/info", params=params)
            again = client.get("/stac/info", params=params)
        reads = cog_server.requests.for_path(".tif")
        tokens = [r for r in cog_server.requests.records() if r.path.startswith(TOKEN_PATH)]
        # control: a tiler without the token service is refused by the store
        forget_cached_reads(cog_server.base_url + "/")
        with TestClient(create_app(TilerSettings(allow=allow)), raise_server_exceptions=False) as client:
            refused = client.get("/stac/info", params=params)
    finally:
        cog_server.set_sas(None)
    assert answer.status_code == 200, answer.text
    assert again.status_code == 200, again.text
    assert answer.json()["red"]["width"] > 0
    assert reads
    assert all("sig=dGlsZXI" in r.query for r in reads if r.status in (200, 206))
    assert len(tokens) == 1  # kept across requests: every tile opens its item anew
    assert refused.status_code == 502
    assert "HTTP response code: 403" in refused.json()["detail"]
    assert "dGlsZXI" not in answer.text + refused.text
