"""The OpenAPI schema tells a generated client the truth (issue 18.11, 18.12):

- every operation under /api and /auth documents its error answers (src/api_errors.py), and
  calling each one anonymously, as a user and as an admin, with unknown ids, extreme numbers,
  empty and unknown-field bodies, answers only statuses it documents, never a 5xx;
- a 422 body matches the documented schema, in both its forms;
- validation limits are in the schema; pages are bounded (no OFFSET overflow);
- every request body refuses unknown fields, naming them.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jsonschema
import pytest
from pydantic import BaseModel

from tests.conftest import bearer, register, set_role

HUGE = 288230376151711743
PREFIXES = ("/api/", "/auth/")


@pytest.fixture(scope="module")
def spec():
    from src.main import create_app

    return create_app().openapi()


def operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, ops in spec["paths"].items() if path.startswith(PREFIXES)
            for method, op in ops.items()]


def validate(spec: dict, body: Any, ref: str) -> None:
    jsonschema.validate(body, {"$ref": ref, "components": spec["components"]})


def test_every_operation_documents_its_errors(spec):
    from src.api_errors import expected_errors

    ops = operations(spec)
    assert len(ops) > 60
    missing = []
    for path, method, op in ops:
        documented = {int(code) for code in op["responses"] if code.isdigit()}
        if not expected_errors(path, method, op) <= documented:
            missing.append(f"{method.upper()} {path}: {sorted(expected_errors(path, method, op) - documented)}")
        for code, response in op["responses"].items():
            if code.isdigit() and int(code) >= 400:
                schema = response["content"]["application/json"]["schema"]["$ref"]
                # fastapi-users' own routes answer its ErrorModel ({"detail": str | {code, reason}})
                assert schema.endswith(("ValidationErrorDetail",) if code == "422" else ("ErrorDetail", "ErrorModel")), (
                    path, code)
        if op.get("security"):
            assert {401, 403} <= documented, path
    assert not missing, "\n".join(missing)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_limits_are_in_the_schema(spec):
    schemas = spec["components"]["schemas"]
    password = schemas["UserCreate"]["properties"]["password"]
    assert password["maxLength"] == 128 and password["minLength"] == 8
    assert schemas["DraftCreate"]["properties"]["classes"]["maxItems"] == 100
    assert schemas["DraftCreate"]["properties"]["name"]["maxLength"] == 200
    assert schemas["KeyframePut"]["properties"]["objects"]["maxItems"] == 1000
    for path in ("/api/v1/billing/ledger", "/api/v1/admin/audit", "/api/v1/admin/users",
                 "/api/v1/admin/users/{user_id}/ledger", "/api/v1/videos", "/api/v1/datasets"):
        params = {p["name"]: p["schema"] for p in spec["paths"][path]["get"]["parameters"]}
        page = params["page"].get("anyOf", [params["page"]])[0]
        assert page["maximum"] * params["per_page"]["maximum"] < 2**63, path


def _body_models() -> list[tuple[str, type[BaseModel]]]:
    from fastapi.routing import APIRoute, iter_route_contexts

    from src.main import create_app

    found = []
    for context in iter_route_contexts(create_app().routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        for param in route.dependant.body_params:
            annotation = param.field_info.annotation
            for model in getattr(annotation, "__args__", None) or (annotation,):
                if isinstance(model, type) and issubclass(model, BaseModel) and model.__module__.startswith("src."):
                    found.append((f"{sorted(context.methods or ['?'])[0]} {context.path}", model))
    return found


def _nested(model: type[BaseModel], seen: set) -> list[type[BaseModel]]:
    if model in seen:
        return []
    seen.add(model)
    out = [model]
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            annotation = stack.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                out += _nested(annotation, seen)
            stack += list(getattr(annotation, "__args__", ()) or ())
    return out


def test_every_request_body_refuses_unknown_fields():
    bodies = _body_models()
    assert len(bodies) > 15
    lax = [f"{where}: {model.__name__}" for where, top in bodies for model in _nested(top, set())
           if model.model_config.get("extra") != "forbid"]
    assert not lax, "request bodies that ignore unknown fields:\n" + "\n".join(lax)


async def test_confirm_with_options_at_the_top_level_is_422_naming_them(user_client, spec):
    from tests.datasets.conftest import make_draft

    draft = await make_draft(user_client)
    response = await user_client.post(f"/api/v1/datasets/{draft['id']}/confirm",
                                      json={"review_budget": 0, "formats": ["yolo"]})
    assert response.status_code == 422
    assert {tuple(e["loc"]) for e in response.json()["detail"]} == {("body", "review_budget"), ("body", "formats")}
    assert all(e["type"] == "extra_forbidden" for e in response.json()["detail"])
    validate(spec, response.json(), "#/components/schemas/ValidationErrorDetail")
    nested = await user_client.post(f"/api/v1/datasets/{draft['id']}/confirm",
                                    json={"options": {"sampling": {"mode": "all", "every": 3}}})
    assert nested.status_code == 422 and nested.json()["detail"][0]["loc"] == ["body", "options", "sampling", "every"]
    state = (await user_client.get(f"/api/v1/datasets/{draft['id']}")).json()["state"]
    assert state == "draft"  # nothing reserved, nothing queued

    domain = await user_client.get(f"/api/v1/datasets/{draft['id']}/download", params={"format": "yolo"})
    assert domain.status_code == 409
    validate(spec, domain.json(), "#/components/schemas/ErrorDetail")


@pytest.mark.parametrize("path", ["/api/v1/billing/ledger", "/api/v1/admin/audit", "/api/v1/admin/users",
                                  "/api/v1/admin/users/{me}/ledger", "/api/v1/videos", "/api/v1/datasets",
                                  "/api/v1/models", "/api/v1/review/jobs"])
async def test_huge_pages_are_422_not_500(app, admin_client, path):
    me = (await admin_client.get("/api/v1/users/me")).json()["id"]
    response = await admin_client.get(path.format(me=me), params={"page": HUGE})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "page"]


def _calls(path: str, op: dict) -> list[tuple[str, dict, Any]]:
    """(url, query, json body) variants: plausible, unknown ids, extreme numbers, bad bodies."""
    variants = []
    for flavour in ("plain", "huge", "negative"):
        url, query = path, {}
        for p in op.get("parameters", []):
            schema = p.get("schema", {})
            kinds = {schema.get("type"), *(s.get("type") for s in schema.get("anyOf", []))}
            formats = {schema.get("format"), *(s.get("format") for s in schema.get("anyOf", []))}
            if "integer" in kinds:
                value = {"plain": 1, "huge": HUGE, "negative": -HUGE}[flavour]
            elif "uuid" in formats:
                value = str(uuid.uuid4())
            elif p["in"] == "path":
                value = "x"
            else:
                continue
            if p["in"] == "path":
                url = url.replace("{" + p["name"] + "}", str(value))
            elif p["in"] == "query":
                query[p["name"]] = value
        variants.append((url, query, {} if "requestBody" in op else None))
    if "requestBody" in op:
        variants.append((variants[0][0], variants[0][1], {"surely_unknown_field": HUGE}))
    return variants


async def test_every_operation_answers_only_documented_statuses(app, spec):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a crash is a 500 here
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as anonymous, \
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as user, \
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as admin:
        await register(user, "contract@example.com")
        user.headers.update(await bearer(user, "contract@example.com"))
        await register(admin, "contract-admin@example.com")
        await set_role(app, "contract-admin@example.com", "admin")
        admin.headers.update(await bearer(admin, "contract-admin@example.com"))
        wrong = []
        calls = 0
        for path, method, op in operations(spec):
            if path.endswith("/logout"):
                continue  # would end the clients' sessions; covered by tests/auth
            documented = {int(code) for code in op["responses"] if code.isdigit()}
            for client in (anonymous, user, admin):
                for url, query, body in _calls(path, op):
                    response = await client.request(method.upper(), url, params=query, json=body)
                    calls += 1
                    if response.status_code >= 500 or response.status_code not in documented:
                        wrong.append(f"{method.upper()} {url} {query} {body} -> {response.status_code} "
                                     f"{response.text[:160]} (documented {sorted(documented)})")
                    elif response.status_code == 422:
                        validate(spec, response.json(), "#/components/schemas/ValidationErrorDetail")
    assert calls > 400
    assert not wrong, "\n".join(wrong)
