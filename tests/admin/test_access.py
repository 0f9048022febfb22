"""Every admin route, API and page, found by walking the app: 403 for a user and an
annotator, and (GET) not 403 for an admin. A new endpoint cannot be forgotten."""

from __future__ import annotations

import re
import uuid

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


async def _logged_in(app, make_client, role: str):
    client = make_client()
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.com"
    user_id = (await register(client, email))["id"]
    await set_role(app, email, role)
    await login_cookie(client, email)
    return client, user_id


async def test_every_admin_route_is_forbidden_to_users_and_annotators(app, make_client):
    """One pass over every route (users are made once: password hashing is deliberately slow)."""
    user, user_id = await _logged_in(app, make_client, "user")
    annotator, _ = await _logged_in(app, make_client, "annotator")
    admin, _ = await _logged_in(app, make_client, "admin")
    anonymous = make_client()
    failures = []
    for method, path in ROUTES:
        url = concrete(path, user_id)
        for role, client in (("user", user), ("annotator", annotator)):
            response = await client.request(method, url, headers={"accept": "text/html"})
            if response.status_code != 403:
                failures.append(f"{method} {path} as {role}: {response.status_code}")
        response = await anonymous.request(method, url, follow_redirects=False)
        if response.status_code not in (401, 303, 403):
            failures.append(f"{method} {path} anonymous: {response.status_code}")
        if method == "GET":
            response = await admin.get(url, follow_redirects=False)
            if response.status_code == 403 or response.status_code >= 500:
                failures.append(f"{method} {path} as admin: {response.status_code}")
    assert not failures, "\n".join(failures)
