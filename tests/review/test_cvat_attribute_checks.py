"""Attribute checks in a CVAT review: CVAT gets them as ordinary frames of the task (in the
task's predefined order, with the pre-annotated values), while our review jobs keep them marked."""

from __future__ import annotations

from tests.datasets.conftest import OPTIONS, run_worker
from tests.review.conftest import draft_walking
from tests.review.test_cvat_review import annotators  # noqa: F401  (CVAT usernames set)



async def test_cvat_gets_attribute_checks_as_ordinary_frames(app, user_client, annotators, services, cvat):  # noqa: F811
    anna, rob = annotators
    base = await draft_walking(app, user_client)
    options = {**OPTIONS, "review_budget": 0.05, "review_backend": "cvat", "review_attribute_share": 0.5}
    assert (await user_client.put(f"{base}/options", json=options)).status_code == 200
    assert (await user_client.post(f"{base}/confirm")).status_code == 202
    await run_worker(services[1])
    assert (await user_client.get(base)).json()["state"] == "in_review"

    jobs = (await anna.get("/api/v1/review/jobs")).json() + (await rob.get("/api/v1/review/jobs")).json()
    frames = sorted(f["video_frame"] for j in jobs for f in j["frames"])
    checks = sorted(f["video_frame"] for j in jobs for f in j["frames"] if f["attribute_check"])
    assert len(frames) == 6 and checks == [30, 60, 90]
    (task,) = cvat.tasks.values()
    assert cvat.task_frames(task["id"]) == [f"frame_{n:06d}.jpg" for n in frames]  # all six, nothing apart
    (person,) = [label for label in cvat.label_ids.values() if label["name"] == "person"]
    assert [a["name"] for a in person["attributes"]] == ["action"]
    values = [b["attributes"]["action"] for jid in cvat.jobs for frame in cvat.boxes(jid).values() for b in frame]
    assert len(values) == 6 and set(values) == {"walk"}  # each frame pre-annotated with the track's value
