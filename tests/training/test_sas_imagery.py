"""Training reads imagery behind SAS tokens as classification does (``lulc.sas``, ``LULC_TRAINING_SAS_*``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lulc.gdal_env import forget_cached_reads
from tests.support.http_server import TOKEN_PATH, ServerHandle
from training.composite import open_stac_imagery
from training.config import load_config
from training.settings import TrainingSettings


def test_training_signs_its_reads_of_blobs_behind_sas_tokens(
    http_world: Any, cog_server: ServerHandle
) -> None:
    """The demo world's COGs refused without the token's signature: training's composite reads them signed."""
    token = "se=2099-01-01T00%3A00Z&sp=rl&sr=c&sig=dHJhaW5pbmc"
    config = load_config(http_world.training_config)
    settings = TrainingSettings(
        sas_token_url=cog_server.base_url + TOKEN_PATH, sas_hosts=f"127.0.0.1:{cog_server.port}"
    )
    assert settings.sas_hosts == [f"127.0.0.1:{cog_server.port}"]  # comma-separated, as from the environment
    cog_server.set_sas(token)
    try:
        forget_cached_reads(cog_server.base_url + "/")
        cog_server.requests.clear()
        imagery = open_stac_imagery(config, settings)
        block = next(iter(imagery.grid.blocks()))
        ((_, pixels),) = list(imagery.read_blocks([block]))
        reads = [r for r in cog_server.requests.for_path(".tif") if r.status in (200, 206)]
        refused = [r for r in cog_server.requests.for_path(".tif") if r.status == 403]
        tokens = [r.path for r in cog_server.requests.records() if r.path.startswith(TOKEN_PATH)]
    finally:
        cog_server.set_sas(None)
    assert np.isfinite(pixels.reflectance).any()
    assert reads
    assert all("sig=dHJhaW5pbmc" in r.query for r in reads)
    assert not refused
    assert tokens == [f"{TOKEN_PATH}127/cogs"]
