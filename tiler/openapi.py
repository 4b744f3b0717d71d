"""The tiler's OpenAPI schema states the error statuses it really sends, with its error body.

FastAPI documents a 422 for every route with parameters; the tiler answers bad parameters with 400
(``tiler.errors``), refuses URLs off the allow-list with 403, missing data with 404, a body that does not
arrive in time with 408, over the limit with 413, one too many at once with 429, a failing remote server
with 502, and (when a token is set) a missing token with 401.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA = {
    "title": "TilerError",
    "type": "object",
    "required": ["detail", "status"],
    "properties": {
        "detail": {"description": "What went wrong (a message; a list of problems for bad parameters)."},
        "status": {"type": "integer", "description": "The HTTP status, repeated."},
    },
}

DESCRIPTIONS = {
    400: "Bad parameter or body (malformed, out of range, over this tiler's limits on image size, bands or "
    "histogram bins, an expression or band that does not exist).",
    401: "Missing or wrong bearer token.",
    403: "The URL or path is outside the allow-list.",
    404: "No such dataset, item, asset, tile or point.",
    408: "The request body did not arrive within `body_timeout_seconds`.",
    413: "Request body or polygon over this tiler's limit.",
    429: "`max_body_requests` requests with a body are inside (`max_body_requests_per_client` from one "
    "address); retry after `Retry-After` s.",
    500: "Internal error (a bug): the body names only the exception type; the log has the rest.",
    502: "A remote server failed while the tiler read from it.",
}


RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
}


def error_statuses(path: str, operation: dict[str, Any], protected: bool) -> set[int]:
    """The error statuses one operation can answer with."""
    parameters = operation.get("parameters", [])
    names = {p.get("name") for p in parameters}
    body = "requestBody" in operation
    statuses = {500}
    if parameters or body:
        statuses.add(400)
    if "url" in names:
        statuses |= {403, 404, 502}
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    statuses |= {408, 413, 429}  # the body's limits answer any request, a GET sent with a body too
    if protected:
        statuses.add(401)
    return statuses


def document_errors(app: FastAPI, *, protected: bool, public: tuple[str, ...]) -> None:
    """Replace ``app.openapi`` by one whose operations list their error statuses (and bearer auth).

    Args:
        app: the tiler app, all routes added.
        protected: whether a bearer token is required.
        public: paths (exact, or prefixes ending in ``/``) that need no token.
    """

    def is_public(path: str) -> bool:
        return any(path == p or (len(p) > 1 and p.endswith("/") and path.startswith(p)) for p in public)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["TilerError"] = ERROR_SCHEMA
        if protected:
            components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/TilerError"}}}
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)  # FastAPI's default; the tiler answers 400
                needs_token = protected and not is_public(path)
                for status in sorted(error_statuses(path, operation, needs_token)):
                    answer = {"description": DESCRIPTIONS[status], "content": error}
                    if status == 429:
                        answer["headers"] = RETRY_AFTER
                    responses.setdefault(str(status), answer)
                if needs_token:
                    operation["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
