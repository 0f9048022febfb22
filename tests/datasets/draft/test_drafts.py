"""Dataset drafts over the API: create, read, only drafts editable."""

from __future__ import annotations

from sqlalchemy import text

from tests.datasets.draft.conftest import create_draft


async def set_state(app, dataset_id: str, state: str) -> None:
    async with app.state.engine.begin() as conn:
        await conn.execute(text("UPDATE dataset SET state = :s WHERE id = :id"), {"s": state, "id": dataset_id})


async def test_create_and_read_draft(user_client, uploaded_video):
    body = {"video_id": uploaded_video["id"], "name": "  Site   cameras ", "classes": [" helmet ", "person"]}
    response = await user_client.post("/api/v1/datasets", json=body)
    assert response.status_code == 201, response.text
    draft = response.json()
    assert draft["name"] == "Site cameras"
    assert draft["state"] == "draft"
    assert draft["video_id"] == uploaded_video["id"]
    assert draft["keyframes"] == []
    assert [(c["name"], c["position"]) for c in draft["classes"]] == [("helmet", 0), ("person", 1)]
    assert all(c["color"].startswith("#") and len(c["color"]) == 7 for c in draft["classes"])
    assert draft["classes"][0]["color"] != draft["classes"][1]["color"]

    again = await user_client.get(f"/api/v1/datasets/{draft['id']}")
    assert again.status_code == 200
    assert {key: again.json()[key] for key in draft} == draft  # the job adds fields of its own


async def test_draft_on_unknown_or_foreign_video_is_404(user_client, make_client):
    from tests.conftest import login_cookie, register
    from tests.datasets.draft.conftest import upload_video

    other = make_client()
    await register(other, "other@example.com")
    await login_cookie(other, "other@example.com")
    video = await upload_video(other)
    response = await user_client.post("/api/v1/datasets", json={"video_id": video["id"], "name": "x"})
    assert response.status_code == 404


async def test_draft_with_bad_classes_writes_nothing(user_client, uploaded_video):
    body = {"video_id": uploaded_video["id"], "name": "dup", "classes": ["helmet", "HELMET"]}
    response = await user_client.post("/api/v1/datasets", json=body)
    assert response.status_code == 409
    assert "already a class named 'HELMET'" in response.json()["detail"]
    body = {"video_id": uploaded_video["id"], "name": "   ", "classes": []}
    response = await user_client.post("/api/v1/datasets", json=body)
    assert response.status_code == 422
    assert "name must be 1 to 200 characters" in response.json()["detail"]


async def test_only_drafts_are_editable(app, user_client, draft):
    await set_state(app, draft["id"], "queued")
    base = f"/api/v1/datasets/{draft['id']}"
    class_id = draft["classes"][0]["id"]
    attempts = [
        user_client.post(f"{base}/classes", json={"name": "car"}),
        user_client.patch(f"{base}/classes/{class_id}", json={"name": "hat"}),
        user_client.delete(f"{base}/classes/{class_id}"),
        user_client.put(f"{base}/keyframes/0", json={"objects": []}),
        user_client.delete(f"{base}/keyframes/0"),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 409, response.text
        assert response.json()["detail"] == "Only drafts can be edited; this dataset is queued."
    assert (await user_client.get(base)).json()["state"] == "queued"


async def test_admin_sees_any_draft(admin_client, draft):
    response = await admin_client.get(f"/api/v1/datasets/{draft['id']}")
    assert response.status_code == 200
    assert response.json()["id"] == draft["id"]


async def test_second_draft_on_same_video(user_client, uploaded_video):
    first = await create_draft(user_client, uploaded_video["id"], name="one")
    second = await create_draft(user_client, uploaded_video["id"], name="two")
    assert first["id"] != second["id"]
