"""The error answers of the JSON API, documented on every operation of the OpenAPI schema.

Every error is `{"detail": ...}`: a sentence for the refusals the services and middleware
make, a list of pydantic errors (`loc`, `msg`, `type`, `input`, `ctx`) for a request that does
not match its schema. `install(app)` wraps `app.openapi` so that each operation under
/api, /auth and /health lists what it can answer, by what it is:

- any parameter or body: 422 (either form of `detail`); a body: 413 (the size caps) and 400
  (not JSON at all);
- authenticated (a security requirement): 401 (no or a dead session / token), 403 (role,
  a read-only API token writing, CSRF for cookie sessions);
- a path parameter, or an authenticated write: 404 (nothing there, or someone else's);
- authenticated with a path parameter, or a write: 400 and 409 (the state does not allow it);
- everything: 503 (PostgreSQL or Redis unreachable; Retry-After).

Operations add their own (402 on confirm, 429 on login) with `responses=` on the route.
tests/test_api_contract.py walks the schema and calls every operation to hold this true.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

API_PREFIXES = ("/api/", "/auth/", "/health")
UNSAFE = {"post", "put", "patch", "delete"}

DESCRIPTIONS = {
    400: "The request cannot be done as asked (the detail says why).",
    401: "Not logged in: no session cookie or bearer token, or it has expired, been revoked or ended.",
    402: "The balance does not cover the price; top up first.",
    403: "Not allowed: the role, a read-only API token writing, or a missing CSRF token with a session cookie.",
    404: "There is nothing here, or it belongs to someone else.",
    409: "The current state does not allow it (e.g. a dataset that is running, not ready, or confirmed).",
    413: "The body or the file is too large (a request cap or a quota).",
    422: "The input does not match the schema (a list of errors with `loc`), or a value is refused (a sentence).",
    429: "Too many attempts; retry after `Retry-After` seconds.",
    503: "PostgreSQL or Redis is unreachable for a moment; retry after `Retry-After` seconds.",
}

ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorDetail"}
VALIDATION_SCHEMA = {"$ref": "#/components/schemas/ValidationErrorDetail"}
COMPONENTS = {
    "ErrorDetail": {
        "title": "ErrorDetail", "type": "object", "required": ["detail"],
        "properties": {"detail": {"title": "Detail", "type": "string"}},
    },
    "ValidationErrorDetail": {
        "title": "ValidationErrorDetail", "type": "object", "required": ["detail"],
        "properties": {"detail": {"title": "Detail", "anyOf": [
            {"type": "string"}, {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}]}},
    },
}


def error_response(status: int) -> dict[str, Any]:
    schema = VALIDATION_SCHEMA if status == 422 else ERROR_SCHEMA
    return {"description": DESCRIPTIONS[status], "content": {"application/json": {"schema": schema}}}


def expected_errors(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation documents, from what the operation is."""
    params = operation.get("parameters", [])
    has_path = any(p.get("in") == "path" for p in params)
    has_body = "requestBody" in operation
    secured = bool(operation.get("security"))
    write = method in UNSAFE
    codes = {503}
    if params or has_body:
        codes.add(422)
    if has_body or write:
        codes.add(413)
    if has_body:
        codes.add(400)  # a body that is not JSON at all: "There was an error parsing the body"
    if secured:
        codes |= {401, 403}
    if has_path or (secured and write):
        codes.add(404)
    if secured and (has_path or write):
        codes |= {400, 409}
    return codes


def document(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(COMPONENTS)
    components.setdefault("ValidationError", _validation_error_component())
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(API_PREFIXES):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(expected_errors(path, method, operation)):
                current = responses.get(str(status), {})
                if status == 422 or "content" not in current:
                    merged = error_response(status)
                    if current.get("description") and status != 422:
                        merged["description"] = current["description"]
                    responses[str(status)] = merged
            for status in list(responses):  # codes a route added by hand get the error body too
                if status.isdigit() and int(status) in DESCRIPTIONS and "content" not in responses[status]:
                    responses[status] = {**error_response(int(status)), **responses[status],
                                         "content": error_response(int(status))["content"]}
    if "#/components/schemas/HTTPValidationError" not in json.dumps(schema["paths"]):
        schema["components"]["schemas"].pop("HTTPValidationError", None)
    return schema


def _validation_error_component() -> dict[str, Any]:
    from fastapi.openapi.utils import validation_error_definition

    return validation_error_definition


def install(app: FastAPI) -> None:
    """Create the app, include its routers, then call this: app.openapi() documents the errors."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, openapi_version=app.openapi_version,
                                 description=app.description, routes=app.routes, tags=app.openapi_tags,
                                 servers=app.servers)
            app.openapi_schema = document(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
