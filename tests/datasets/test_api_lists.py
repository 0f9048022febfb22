"""Lists for scripts: `?page=&per_page=` with X-Total-Count and Link, filters, the old plain list
without `page`; a dataset deleted (files gone, ledger kept; refused while its job runs), and a
video deleted with its datasets (refused while one is being made)."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import login_cookie, register
from tests.datasets.conftest import CROSSING, make_draft
from tests.videos.conftest import stored_files, upload


async def test_video_and_dataset_lists_page_and_filter(user_client):
    first = (await upload(user_client, CROSSING / "video.mp4", name="alpha street.mp4")).json()
    second = (await upload(user_client, CROSSING / "video.mp4", name="beta_road.mp4")).json()
    everything = await user_client.get("/api/v1/videos")
    assert everything.status_code == 200 and [v["id"] for v in everything.json()] == [second["id"], first["id"]]
    assert everything.headers["x-total-count"] == "2" and "link" not in everything.headers

    page1 = await user_client.get("/api/v1/videos", params={"page": 1, "per_page": 1})
    assert [v["id"] for v in page1.json()] == [second["id"]]
    assert page1.headers["x-total-count"] == "2" and 'rel="next"' in page1.headers["link"]
    assert "page=2" in page1.headers["link"]
    page2 = await user_client.get("/api/v1/videos", params={"page": 2, "per_page": 1})
    assert [v["id"] for v in page2.json()] == [first["id"]] and "link" not in page2.headers
    assert (await user_client.get("/api/v1/videos", params={"page": 3, "per_page": 1})).json() == []

    assert [v["id"] for v in (await user_client.get("/api/v1/videos", params={"q": "ALPHA"})).json()] == [first["id"]]
    # % and _ are literal in q
    assert (await user_client.get("/api/v1/videos", params={"q": "%"})).json() == []
    assert [v["id"] for v in (await user_client.get("/api/v1/videos", params={"q": "a_r"})).json()] == [second["id"]]
    assert len((await user_client.get("/api/v1/videos", params={"status": "ready"})).json()) == 2
    assert (await user_client.get("/api/v1/videos", params={"status": "failed"})).json() == []

    one = await make_draft(user_client, name="north gate", video=first)
    two = await make_draft(user_client, name="south gate", video=second)
    listed = await user_client.get("/api/v1/datasets", params={"page": 1, "per_page": 10, "state": "draft"})
    assert {d["id"] for d in listed.json()} == {one["id"], two["id"]} and listed.headers["x-total-count"] == "2"
    by_video = await user_client.get("/api/v1/datasets", params={"video_id": first["id"]})
    assert [d["id"] for d in by_video.json()] == [one["id"]]
    assert [d["id"] for d in (await user_client.get("/api/v1/datasets", params={"q": "SOUTH"})).json()] == [two["id"]]
    assert (await user_client.get("/api/v1/datasets", params={"state": "ready"})).json() == []


async def test_list_bounds_and_filters_are_422(user_client):
    for url, params in [("/api/v1/videos", {"page": 0}), ("/api/v1/videos", {"per_page": 501}),
                        ("/api/v1/datasets", {"page": 288230376151711743}), ("/api/v1/datasets", {"state": "done"}),
                        ("/api/v1/models", {"state": "nope"}), ("/api/v1/review/jobs", {"stage": "acceptance"}),
                        ("/api/v1/review/jobs", {"dataset_id": "x"}), ("/api/v1/videos", {"q": "x" * 201})]:
        response = await user_client.get(url, params=params)
        assert response.status_code == 422, (url, params, response.text)
        assert isinstance(response.json()["detail"], list)
    jobs = await user_client.get("/api/v1/review/jobs", params={"page": 1, "per_page": 5, "stage": "annotation"})
    assert jobs.status_code == 200 and jobs.json() == [] and jobs.headers["x-total-count"] == "0"


async def test_model_list_pages_and_filters(app, user_client):
    from src.database import unit_of_work
    from src.detectors.models import Detector, DetectorKind, DetectorState

    async with unit_of_work(app.state.sessionmaker) as session:
        owner = (await session.execute(text("""SELECT id FROM "user" WHERE email = 'user@example.com'"""))).scalar_one()
        for i, state in enumerate([DetectorState.ready, DetectorState.ready, DetectorState.failed]):
            session.add(Detector(owner_id=owner, name=f"yolo-{i}", kind=DetectorKind.onnx, state=state, classes=["person"]))
    ready = await user_client.get("/api/v1/models", params={"state": "ready", "page": 1, "per_page": 1})
    assert ready.status_code == 200 and len(ready.json()) == 1 and ready.headers["x-total-count"] == "2"
    assert [m["name"] for m in (await user_client.get("/api/v1/models", params={"q": "-2"})).json()] == ["yolo-2"]
    assert len((await user_client.get("/api/v1/models")).json()) == 3


async def test_delete_dataset_refused_while_running(app, user_client, make_client):
    draft = await make_draft(user_client, name="to delete")
    other = make_client()
    await register(other, "other@example.com")
    await login_cookie(other, "other@example.com")
    assert (await other.delete(f"/api/v1/datasets/{draft['id']}")).status_code == 404  # not theirs

    async with app.state.engine.begin() as conn:
        await conn.execute(text("UPDATE dataset SET state = 'propagating' WHERE id = :id"), {"id": draft["id"]})
    running = await user_client.delete(f"/api/v1/datasets/{draft['id']}")
    assert running.status_code == 409 and "cancel it first" in running.json()["detail"]

    async with app.state.engine.begin() as conn:
        await conn.execute(text("UPDATE dataset SET state = 'cancelled' WHERE id = :id"), {"id": draft["id"]})
    deleted = await user_client.delete(f"/api/v1/datasets/{draft['id']}")
    assert deleted.status_code == 204
    assert (await user_client.get(f"/api/v1/datasets/{draft['id']}")).status_code == 404
    async with app.state.engine.connect() as conn:
        keyframes = (await conn.execute(text("SELECT count(*) FROM keyframe WHERE dataset_id = :id"),
                                        {"id": draft["id"]})).scalar_one()
    assert keyframes == 0
    assert (await user_client.delete(f"/api/v1/datasets/{draft['id']}")).status_code == 404


async def test_delete_video_refused_while_a_dataset_is_made(app, user_client):
    from src.config import get_settings

    storage_root = get_settings().storage_path
    draft = await make_draft(user_client, name="from this video")
    video_id = draft["video_id"]
    assert "from this video" in (await user_client.get(f"/videos/{video_id}")).text  # the video page lists it

    async with app.state.engine.begin() as conn:
        await conn.execute(text("UPDATE dataset SET state = 'building' WHERE id = :id"), {"id": draft["id"]})
    running = await user_client.delete(f"/api/v1/videos/{video_id}")
    assert running.status_code == 409
    assert running.json()["detail"] == "A dataset of this video is still being made; cancel it first."
    assert (await user_client.post(f"/videos/{video_id}/delete")).status_code == 409

    async with app.state.engine.begin() as conn:
        await conn.execute(text("UPDATE dataset SET state = 'ready' WHERE id = :id"), {"id": draft["id"]})
    delivered = storage_root / "datasets" / draft["id"] / "yolo.zip"
    delivered.parent.mkdir(parents=True)
    delivered.write_bytes(b"zip")
    assert (await user_client.delete(f"/api/v1/videos/{video_id}")).status_code == 204
    assert (await user_client.get(f"/api/v1/datasets/{draft['id']}")).status_code == 404
    assert stored_files(storage_root) == []  # the video's files and the dataset's
