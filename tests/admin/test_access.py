"""Every admin route, API and page, found by walking the app: 403 for a user and an
annotator, and (GET) not 403 for an admin. A new endpoint cannot be forgotten."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.routing import iter_route_contexts

from src.main import create_app
from tests.conftest import login_cookie, register, set_role


def admin_routes() -> list[tuple[str, str]]:
    routes = []
    # FastAPI includes routers lazily: iter_route_contexts gives every route with its full path.
    for route in iter_route_contexts(create_app().routes):
        if route.path and route.methods and route.path.startswith(("/api/v1/admin", "/admin")):
            routes += [(method, route.path) for method in sorted(route.methods) if method != "HEAD"]
    return routes


ROUTES = admin_routes()


def concrete(path: str, user_id: str) -> str:
    path = path.replace("{user_id}", user_id).replace("{verb}", "retry")
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def test_the_walk_finds_the_admin_routes():
    paths = {path for _, path in ROUTES}
    assert {"/api/v1/admin/users", "/api/v1/admin/stats", "/api/v1/admin/prices", "/admin/users", "/admin/jobs"} <= paths
    assert ("PATCH", "/api/v1/admin/users/{user_id}") in ROUTES and ("POST", "/api/v1/admin/users/{user_id}/balance") in ROUTES


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_admin_route_is_forbidden_to_users_and_annotators(app, make_client, method, path):
    for role in ("user", "annotator"):
        client = make_client()
        email = f"{role}-{uuid.uuid4().hex[:6]}@example.com"
        user_id = (await register(client, email))["id"]
        await set_role(app, email, role)
        await login_cookie(client, email)
        response = await client.request(method, concrete(path, user_id), headers={"accept": "text/html"})
        assert response.status_code == 403, (role, response.text[:300])
        assert "admin" not in response.text.lower() or "administrator" in response.text.lower()
    anonymous = await make_client().request(method, concrete(path, user_id), follow_redirects=False)
    assert anonymous.status_code in (401, 303, 403)

    if method == "GET":
        admin = make_client()
        await register(admin, "walker@example.com")
        await set_role(app, "walker@example.com", "admin")
        await login_cookie(admin, "walker@example.com")
        response = await admin.get(concrete(path, user_id), follow_redirects=False)
        assert response.status_code in (200, 303), response.text[:300]
