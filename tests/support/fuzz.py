"""Fuzz an ASGI app against its own OpenAPI schema with Schemathesis: bounded, deterministic, every failure.

Every operation (in label order) gets ``examples`` positive and ``examples`` negative cases, generated
by Hypothesis derandomised (fixed seed from the test), without an example database and without
shrinking, so a run takes the same, bounded time and finds the same things. A case fails on a 5xx, a
status the schema does not document, a content type it does not document, or a body that breaks its
schema. All operations run; the failures come back together, one line each (with a curl reproduction).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

FixedValues = Callable[[Any], dict[str, Any]]
"""Per operation, fixed ``query`` values (e.g. a real dataset URL) instead of generated ones."""


def fuzz_app(
    app: Any,
    *,
    examples: int,
    headers: dict[str, str] | None = None,
    fixed_query: FixedValues | None = None,
) -> tuple[int, list[str]]:
    """Fuzz every operation of ``app``'s ``/openapi.json``; the number of cases run and the failures."""
    schema = schemathesis.openapi.from_dict(without_prefix_items(app.openapi()))
    schema.app = app
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=lambda op: op.label)
    failures: list[str] = []
    calls = {"cases": 0}
    for operation in operations:
        query = fixed_query(operation) if fixed_query else {}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(mode, query=query or None, headers=headers)

            @settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: schemathesis.Case) -> None:
                calls["cases"] += 1
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                pass  # nothing of this operation can be made invalid (no parameters, or all fixed)
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a FailureGroup
                failures.append(f"{operation.label} ({mode.value}): {_one_line(exc)}")
    return calls["cases"], failures


def without_prefix_items(node: Any) -> Any:
    """The schema with tuples (``prefixItems``) as arrays of any of their item types.

    Schemathesis 4.32 turns ``prefixItems`` into a list-valued ``items`` when it validates responses
    and then rejects that as an invalid schema (TiTiler's ``band_descriptions``, colormaps). This
    keeps those responses checked, a little more loosely (types, lengths; not positions).
    """
    if isinstance(node, list):
        return [without_prefix_items(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: without_prefix_items(v) for k, v in node.items()}
    prefix = node.pop("prefixItems", None)
    if isinstance(prefix, list):
        node["items"] = {"anyOf": prefix}
    return node


def _one_line(exc: BaseException) -> str:
    text = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text[:1500]
