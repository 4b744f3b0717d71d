"""Schemathesis fuzzes every operation of the service's OpenAPI schema, with a real model and demo world.

Fails on any 5xx, any status the schema does not document, and any response that breaks its schema
(``tests/support/fuzz.py``: bounded, deterministic). Requests carry the bearer token.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.app import create_app
from tests.service.app_support import World, models_dir, service_settings, shared_world
from tests.support.fuzz import fuzz_app

EXAMPLES = 25
"""Positive and negative examples per operation (four operations): well under a minute."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return shared_world(tmp_path_factory)


def test_service_conforms_to_its_schema(world: World, tmp_path: Path) -> None:
    settings = service_settings(tmp_path, world, models_dir(tmp_path, world), auth_token="fuzz")
    count, failures = fuzz_app(
        create_app(settings), examples=EXAMPLES, headers={"Authorization": "Bearer fuzz"}
    )
    assert count > 50
    assert not failures, "\n".join(failures)
