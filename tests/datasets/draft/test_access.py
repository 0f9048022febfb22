"""Another user (not an admin) gets 404 on every draft endpoint of the owner, API and pages,
and nothing changes."""

from __future__ import annotations

import pytest

from tests.conftest import login_cookie, register

BOX = {"objects": [{"track_id": 1, "class": "helmet", "box": [10, 10, 50, 50]}]}

ENDPOINTS = [
    ("GET", "/api/v1/datasets/{id}", None),
    ("POST", "/api/v1/datasets/{id}/classes", {"json": {"name": "car"}}),
    ("PATCH", "/api/v1/datasets/{id}/classes/{class_id}", {"json": {"name": "hat"}}),
    ("DELETE", "/api/v1/datasets/{id}/classes/{class_id}?force=true", None),
    ("GET", "/api/v1/datasets/{id}/keyframes", None),
    ("PUT", "/api/v1/datasets/{id}/keyframes/0", {"json": BOX}),
    ("DELETE", "/api/v1/datasets/{id}/keyframes/0", None),
    ("GET", "/datasets/{id}", None),
    ("GET", "/datasets/{id}/editor?frame=0", None),
    ("POST", "/datasets/{id}/classes", {"data": {"name": "car"}}),
    ("POST", "/datasets/{id}/classes/{class_id}", {"data": {"name": "hat", "color": "#000000"}}),
    ("POST", "/datasets/{id}/classes/{class_id}/delete", {"data": {"force": "true"}}),
    ("POST", "/datasets/{id}/check", {"data": {}}),
    ("GET", "/videos/{video_id}/new-dataset", None),
    ("POST", "/videos/{video_id}/new-dataset", {"data": {"name": "mine now", "classes": "a"}}),
]


@pytest.fixture
async def stranger(make_client):
    c = make_client()
    await register(c, "stranger@example.com")
    await login_cookie(c, "stranger@example.com")
    return c


@pytest.mark.parametrize(("method", "path", "kwargs"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
async def test_other_user_gets_404(user_client, stranger, draft, method, path, kwargs):
    assert (await user_client.put(f"/api/v1/datasets/{draft['id']}/keyframes/0", json=BOX)).status_code == 200
    before = (await user_client.get(f"/api/v1/datasets/{draft['id']}")).json()
    url = path.format(id=draft["id"], class_id=draft["classes"][0]["id"], video_id=draft["video_id"])
    is_page = not path.startswith("/api/")
    headers = {"accept": "text/html"} if is_page else {}
    response = await stranger.request(method, url, headers=headers, **(kwargs or {}))
    assert response.status_code == 404, response.text
    if is_page:
        assert "text/html" in response.headers["content-type"]
    after = (await user_client.get(f"/api/v1/datasets/{draft['id']}")).json()
    assert after == before
    keyframes = (await user_client.get(f"/api/v1/datasets/{draft['id']}/keyframes")).json()["keyframes"]
    assert len(keyframes) == 1


async def test_anonymous_is_refused(client, draft):
    assert (await client.get(f"/api/v1/datasets/{draft['id']}")).status_code == 401
    response = await client.get(f"/datasets/{draft['id']}", headers={"accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
