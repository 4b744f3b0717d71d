"""Schemathesis fuzzes every operation of the tiler's OpenAPI schema over a real class map and STAC item.

Fails on any 5xx, any status the schema does not document, and any response that breaks its schema
(``tests/support/fuzz.py``: bounded, deterministic). The ``url`` of each case is a real dataset, so
the parameters reach real reads (a random URL would only ever get 403).
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from tests.support.fuzz import fuzz_app
from tests.tiler.conftest import Runs
from tiler.app import create_app
from tiler.settings import TilerSettings

EXAMPLES = 6
"""Positive and negative examples per operation: about 40 operations, well under a minute."""


def test_tiler_conforms_to_its_schema(tiler_settings: TilerSettings, tiler_runs: Runs) -> None:
    settings = tiler_settings.model_copy(update={"auth_token": SecretStr("fuzz")})

    def real_dataset(operation: Any) -> dict[str, Any]:
        names = {p.name for p in operation.query}
        if "url" not in names:
            return {}
        stac = operation.path.startswith(("/stac", "/backdrop"))
        return {"url": str(tiler_runs.main / ("item.json" if stac else "classes.tif"))}

    count, failures = fuzz_app(
        create_app(settings),
        examples=EXAMPLES,
        headers={"Authorization": "Bearer fuzz"},
        fixed_query=real_dataset,
    )
    assert count > 200
    assert not failures, "\n".join(failures)
