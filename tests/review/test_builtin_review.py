"""The built-in review loop through the API: hard frames -> annotator fixes and completes ->
reviewer rejects once, then accepts -> re-propagation -> the corrections are in the export."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from src.vision.metrics import load_otb
from tests.datasets.conftest import CROSSING, OPTIONS, make_draft, run_worker, top_up


async def _dataset_in_review(app, user_client, services) -> dict:
    await top_up(app, "user@example.com", 100_000)
    dataset = await make_draft(user_client)
    await user_client.put(f"/api/v1/datasets/{dataset['id']}/options", json={**OPTIONS, "review_budget": 0.05})
    assert (await user_client.post(f"/api/v1/datasets/{dataset['id']}/confirm")).status_code == 202
    await run_worker(services[1])
    state = (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()
    assert state["state"] == "in_review", state
    return dataset


async def test_full_builtin_review_loop(app, user_client, annotators, services):
    anna, rob = annotators
    dataset = await _dataset_in_review(app, user_client, services)
    assert (await user_client.get("/api/v1/review/jobs")).json() == []  # the team reviews: nothing for the owner

    jobs = (await anna.get("/api/v1/review/jobs")).json()
    assert len(jobs) == 1 and jobs[0]["stage"] == "annotation"
    job = jobs[0]
    assert (await user_client.get(f"/api/v1/review/jobs/{job['id']}")).status_code == 404
    frames = [f["video_frame"] for f in job["frames"]]
    assert len(frames) == 6 and 0 not in frames  # 5% of 120 delivered frames, never the keyframe
    assert job["url"] == f"/review/jobs/{job['id']}"
    assert (await rob.get("/api/v1/review/jobs")).json() == []  # nothing to validate yet

    truth = load_otb(CROSSING / "groundtruth_rect.txt")
    fixed = frames[:2]
    for frame in fixed:
        box = [float(v) for v in truth[frame]]
        response = await anna.put(f"/api/v1/review/jobs/{job['id']}/frames/{frame}",
                                  json={"decision": "fixed", "objects": [{"track_id": 1, "class": "person", "box": box}]})
        assert response.status_code == 200, response.text
    bad = await anna.put(f"/api/v1/review/jobs/{job['id']}/frames/{frames[2]}",
                         json={"decision": "fixed", "objects": [{"track_id": 1, "class": "car", "box": [1, 1, 50, 50]}]})
    assert bad.status_code == 422 and "Unknown class" in bad.json()["detail"]
    assert (await anna.post(f"/api/v1/review/jobs/{job['id']}/complete")).json()["stage"] == "validation"

    # the annotator cannot validate their own job; a second annotator can
    own = await anna.post(f"/api/v1/review/jobs/{job['id']}/validate", json={"accept": True})
    assert own.status_code == 403
    assert len((await rob.get("/api/v1/review/jobs")).json()) == 1
    rejected = await rob.post(f"/api/v1/review/jobs/{job['id']}/validate",
                              json={"accept": False, "issue": "Frame 3 box is too loose"})
    assert rejected.json()["stage"] == "annotation"
    back = (await anna.get(f"/api/v1/review/jobs/{job['id']}")).json()
    assert back["issue"] == "Frame 3 box is too loose"
    assert (await anna.post(f"/api/v1/review/jobs/{job['id']}/complete")).status_code == 200
    accepted = await rob.post(f"/api/v1/review/jobs/{job['id']}/validate", json={"accept": True})
    assert accepted.json()["stage"] == "acceptance"
    assert (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()["state"] == "building"

    await run_worker(services[1])
    done = (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()
    assert done["state"] == "ready", done
    assert done["charged_cents"] <= done["quoted_cents"]
    zipped = await user_client.get(f"/api/v1/datasets/{dataset['id']}/download", params={"format": "coco"})
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(zipped.content)).read("manifest.json"))
    by_frame = {f["frame"]: f for f in manifest["frames"]}
    for frame in fixed:
        assert by_frame[frame]["source"] == "reviewed"
        assert by_frame[frame]["objects"][0]["box"] == pytest.approx([float(v) for v in truth[frame]], abs=0.5)
    assert {f for f, item in by_frame.items() if item["source"] == "reviewed"} == set(frames)


async def test_rejecting_a_frame_drops_it_and_validation_needs_a_reason(app, user_client, annotators, services):
    anna, rob = annotators
    dataset = await _dataset_in_review(app, user_client, services)
    job = (await anna.get("/api/v1/review/jobs")).json()[0]
    dropped = job["frames"][0]["video_frame"]
    await anna.put(f"/api/v1/review/jobs/{job['id']}/frames/{dropped}", json={"decision": "rejected"})
    await anna.post(f"/api/v1/review/jobs/{job['id']}/complete")
    no_reason = await rob.post(f"/api/v1/review/jobs/{job['id']}/validate", json={"accept": False})
    assert no_reason.status_code == 422
    await rob.post(f"/api/v1/review/jobs/{job['id']}/validate", json={"accept": True})
    await run_worker(services[1])
    done = (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()
    assert done["state"] == "ready" and done["delivered_frames"] == 119


async def _job_row(app, job_id: int) -> dict:
    from sqlalchemy import text

    async with app.state.engine.connect() as conn:
        row = await conn.execute(text("SELECT stage, reviewer_id, issue, updated_at FROM review_job WHERE id = :id"),
                                 {"id": job_id})
        return dict(row.mappings().one())


async def test_a_refused_validation_on_the_page_changes_nothing(app, user_client, annotators, admin_client, services):
    """An admin who rejects without a reason on the review page is refused, in the page, and is
    not recorded as the job's reviewer: the designated reviewer can still validate (issue 19:
    the page once committed what the service had changed before it refused)."""
    anna, rob = annotators
    await _dataset_in_review(app, user_client, services)
    job = (await anna.get("/api/v1/review/jobs")).json()[0]
    assert (await anna.post(f"/api/v1/review/jobs/{job['id']}/complete")).status_code == 200
    before = await _job_row(app, job["id"])
    assert before["stage"] == "validation" and before["reviewer_id"] is not None  # rob, designated

    page = await admin_client.post(f"/review/jobs/{job['id']}/validate", data={"accept": "false", "issue": "  "},
                                   headers={"accept": "text/html"})
    assert await _job_row(app, job["id"]) == before  # the old page recorded the admin as the reviewer
    assert page.status_code == 422, page.text
    assert "Say what is wrong" in page.text and 'id="review-panel"' in page.text  # the job page, with the message

    accepted = await rob.post(f"/review/jobs/{job['id']}/validate", data={"accept": "true"}, headers={"accept": "text/html"})
    assert accepted.status_code == 303 and accepted.headers["location"].endswith("/review")
    assert (await _job_row(app, job["id"]))["stage"] == "acceptance"


def test_jobs_are_dealt_to_whoever_has_the_fewest_waiting():
    from src.review.service import deal

    first, second, third = "anna", "rob", "eve"  # in account order
    assert deal([first, second, third], 4, {first: 2}) == [second, third, second, third]
    assert deal([first, second], 3, {}) == [first, second, first]  # equals take turns, oldest first
    assert deal([], 2, {}) == []


async def test_a_second_task_goes_to_the_annotator_with_nothing_waiting(app, user_client, annotators, services):
    """One job per dataset: the first to the longest-standing annotator, the next to the other
    one (dealt by account age alone, both went to the first)."""
    anna, rob = annotators
    await _dataset_in_review(app, user_client, services)
    await _dataset_in_review(app, user_client, services)
    mine = [(await person.get("/api/v1/review/jobs")).json() for person in (anna, rob)]
    assert [len(jobs) for jobs in mine] == [1, 1], mine
