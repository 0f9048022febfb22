"""Review in CVAT, against the CVAT double driven by the real cvat-sdk: task creation with the
hard frames and pre-annotations, the stage mapping, webhooks, the poll, and CVAT outages."""

from __future__ import annotations

import io
import json
import uuid
import socket
import zipfile

import pytest

from src.vision.metrics import load_otb
from tests.conftest import login_cookie, register, set_role
from tests.datasets.conftest import CROSSING, OPTIONS, make_draft, run_worker, top_up
from tests.review.conftest import WEBHOOK_SECRET


async def _set_cvat_username(app, email: str, name: str) -> None:
    from sqlalchemy import text

    async with app.state.engine.begin() as conn:
        await conn.execute(text('UPDATE "user" SET cvat_username = :n WHERE email = :e'), {"n": name, "e": email})


@pytest.fixture
async def annotators(app, make_client):
    clients = []
    for email, cvat_name in (("anna@example.com", "anna"), ("rob@example.com", "rob")):
        c = make_client()
        await register(c, email)
        await set_role(app, email, "annotator")
        await _set_cvat_username(app, email, cvat_name)
        await login_cookie(c, email)
        clients.append(c)
    return clients


async def _in_cvat_review(app, user_client, services, budget: float = 0.05, **extra) -> dict:
    await top_up(app, "user@example.com", 100_000)
    dataset = await make_draft(user_client)
    options = {**OPTIONS, "review_budget": budget, "review_backend": "cvat", **extra}
    assert (await user_client.put(f"/api/v1/datasets/{dataset['id']}/options", json=options)).status_code == 200
    assert (await user_client.post(f"/api/v1/datasets/{dataset['id']}/confirm")).status_code == 202
    await run_worker(services[1])  # propagate -> hard frames -> cvat_create_task
    assert (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()["state"] == "in_review"
    return dataset


async def _webhook(client, cvat, cvat_job_id: int, *, secret: str | None = None, drop_signature: bool = False):
    body, headers = cvat.webhook_delivery(cvat_job_id, secret=secret)
    if drop_signature:
        headers.pop("X-Signature-256")
    return await client.post("/api/v1/review/cvat/webhook", content=body, headers=headers)


async def _job(app, job_id: int):
    from src.database import unit_of_work
    from src.review.models import ReviewJob

    async with unit_of_work(app.state.sessionmaker) as session:
        return await session.get(ReviewJob, job_id)


async def test_full_cvat_review_loop(app, client, user_client, annotators, services, cvat):
    anna, rob = annotators
    dataset = await _in_cvat_review(app, user_client, services)
    review = (await user_client.get(f"/api/v1/review/datasets/{dataset['id']}")).json()
    assert review["backend"] == "cvat" and review["state"] == "open" and review["message"] is None

    # one CVAT task with exactly the hard frames, in predefined order, with the proposals as boxes
    (task,) = cvat.tasks.values()
    assert task["sorting_method"] == "predefined"
    jobs = (await anna.get("/api/v1/review/jobs")).json() + (await rob.get("/api/v1/review/jobs")).json()
    frames = sorted(f["video_frame"] for j in jobs for f in j["frames"])
    assert len(frames) == 6 and 0 not in frames
    assert cvat.task_frames(task["id"]) == [f"frame_{n:06d}.jpg" for n in frames]
    assert len(cvat.jobs) == 2 and len(cvat.webhooks) == 1
    # CVAT's jobs are ours, frame for frame (job_file_mapping): 4 hard frames, then 2
    assert sorted((j["start_frame"], j["stop_frame"]) for j in cvat.jobs.values()) == [(0, 3), (4, 5)]
    hook = next(iter(cvat.webhooks.values()))
    assert hook["target_url"].endswith("/api/v1/review/cvat/webhook") and hook["secret"] == WEBHOOK_SECRET
    assert set(hook["events"]) == {"update:job", "update:task"}
    # jobs dealt to the annotators' CVAT accounts; "Open" leads to the CVAT job
    by_id = {j["id"]: j for j in jobs}
    assert len(by_id) == 2 and len(jobs) == 2
    assert {cvat.users[j["assignee"]]["username"] for j in cvat.jobs.values()} == {"anna", "rob"}
    for job in by_id.values():
        assert job["url"].startswith(cvat.url + "/tasks/")
        proposed = {f["task_frame"]: f["proposed"] for f in job["frames"]}
        cvat_job_id = int(job["url"].rsplit("/", 1)[1])
        boxes = cvat.boxes(cvat_job_id)
        for task_frame, objects in proposed.items():
            assert [b["group"] for b in boxes[task_frame]] == [o["track_id"] for o in objects]
            assert boxes[task_frame][0]["points"] == pytest.approx(objects[0]["box"], abs=0.01)

    # anna fixes two boxes in her first job, completes it in CVAT; the webhook brings it to validation
    truth = load_otb(CROSSING / "groundtruth_rect.txt")
    first = min(by_id.values(), key=lambda j: j["id"])
    cvat_job = int(first["url"].rsplit("/", 1)[1])
    fixed = first["frames"][:2]
    for f in fixed:
        cvat.set_boxes(cvat_job, f["task_frame"], [("person", [float(v) for v in truth[f["video_frame"]]], 1)])
    cvat.set_job(cvat_job, state="completed")
    response = await _webhook(client, cvat, cvat_job)
    assert response.status_code == 202 and response.json()["status"] == "scheduled"
    await run_worker(services[1])
    assert (await _job(app, first["id"])).stage == "validation"
    assert cvat.jobs[cvat_job]["stage"] == "validation"
    assert cvat.users[cvat.jobs[cvat_job]["assignee"]]["username"] == "rob"  # the second annotator reviews

    # rob rejects once with an issue; the issue text reaches our job and anna's list
    cvat.add_issue(cvat_job, "Frame 2: box too loose")
    cvat.set_job(cvat_job, state="rejected")
    await _webhook(client, cvat, cvat_job)
    await run_worker(services[1])
    back = (await anna.get(f"/api/v1/review/jobs/{first['id']}")).json()
    assert back["stage"] == "annotation" and back["issue"] == "Frame 2: box too loose"
    assert cvat.jobs[cvat_job]["stage"] == "annotation"
    page = await anna.get("/review")
    assert page.status_code == 200 and "Frame 2: box too loose" in page.text
    # the dataset's name opens the job as well as the Open button (on a phone the button is off-screen)
    assert page.text.count(f'href="/review/jobs/{first["id"]}/open"') == 2, page.text

    # anna completes again, rob accepts; the other job is accepted untouched (found by the poll only)
    cvat.set_job(cvat_job, state="completed")
    await _webhook(client, cvat, cvat_job)
    await run_worker(services[1])
    cvat.set_job(cvat_job, stage="acceptance", state="completed")
    other = next(j for j in cvat.jobs if j != cvat_job)
    cvat.set_job(other, stage="acceptance", state="completed")
    await _webhook(client, cvat, cvat_job)
    replay = await _webhook(client, cvat, cvat_job)  # a replayed delivery changes nothing
    assert replay.status_code == 202
    await run_worker(services[1])
    assert (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()["state"] == "in_review"
    await app.state.redis.enqueue_job("cvat_poll")
    await run_worker(services[1])  # poll: imports the other job -> resume -> re-propagate -> build
    done = (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()
    assert done["state"] == "ready", done

    first_job = (await rob.get(f"/api/v1/review/jobs/{first['id']}"))
    frames_now = {f["video_frame"]: f for f in (await _frames(app, first["id"]))}
    assert {frames_now[f["video_frame"]]["decision"] for f in fixed} == {"fixed"}
    assert all(frames_now[f["video_frame"]]["decision"] == "accepted" for f in first["frames"][2:])
    assert first_job.status_code in (200, 404)
    for fmt in ("coco", "yolo", "cvat", "ava"):
        zipped = await user_client.get(f"/api/v1/datasets/{dataset['id']}/download", params={"format": fmt})
        assert zipped.status_code == 200, fmt
        manifest = json.loads(zipfile.ZipFile(io.BytesIO(zipped.content)).read("manifest.json"))
        by_frame = {f["frame"]: f for f in manifest["frames"]}
        for f in fixed:
            item = by_frame[f["video_frame"]]
            assert item["source"] == "reviewed", fmt
            assert item["objects"][0]["box"] == pytest.approx([float(v) for v in truth[f["video_frame"]]], abs=0.5)


async def _frames(app, job_id: int) -> list[dict]:
    from src.database import unit_of_work
    from src.review import service

    async with unit_of_work(app.state.sessionmaker) as session:
        return [{"video_frame": f.video_frame, "decision": f.decision.value, "corrected": f.corrected}
                for f in await service.frames_of_job(session, job_id=job_id)]


async def test_webhook_signatures_unknown_jobs_and_replays(app, client, user_client, annotators, services, cvat):
    await _in_cvat_review(app, user_client, services)
    cvat_job = min(cvat.jobs)
    cvat.set_job(cvat_job, state="completed")
    assert (await _webhook(client, cvat, cvat_job, secret="wrong")).status_code == 401
    assert (await _webhook(client, cvat, cvat_job, drop_signature=True)).status_code == 401
    await run_worker(services[1])
    ours = next(j for j in (await annotators[0].get("/api/v1/review/jobs")).json() + (await annotators[1].get("/api/v1/review/jobs")).json()
                if j["url"].endswith(f"/jobs/{cvat_job}"))
    assert ours["stage"] == "annotation"  # nothing changed
    unknown = cvat.add_user("nobody")  # any id CVAT might send that we do not know
    body = json.dumps({"event": "update:job", "job": {"id": 9999 + unknown["id"]}}).encode()
    import hashlib
    import hmac

    signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = await client.post("/api/v1/review/cvat/webhook", content=body, headers={"X-Signature-256": signature})
    assert response.status_code == 202 and response.json()["status"] == "ignored"
    for _ in range(3):  # a replayed delivery: the same sync, once in effect
        assert (await _webhook(client, cvat, cvat_job)).status_code == 202
    await run_worker(services[1])
    assert (await _job(app, ours["id"])).stage == "validation"
    cvat.set_job(cvat_job, stage="acceptance", state="completed")
    for _ in range(2):
        await _webhook(client, cvat, cvat_job)
        await run_worker(services[1])
    assert (await _job(app, ours["id"])).stage == "acceptance"
    assert sum(1 for m, p in cvat.requests if m == "GET" and p == f"/api/jobs/{cvat_job}/annotations/") == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_cvat_unreachable_during_creation_and_import(app, client, user_client, annotators, services, cvat, monkeypatch):
    from src.config import get_settings

    settings = get_settings()
    monkeypatch.setattr(settings, "cvat_url", f"http://127.0.0.1:{_closed_port()}")
    dataset = await _in_cvat_review(app, user_client, services)
    review = (await user_client.get(f"/api/v1/review/datasets/{dataset['id']}")).json()
    assert review["state"] == "creating" and review["message"] == "CVAT is unreachable; retrying every minute."
    assert cvat.tasks == {}
    await app.state.redis.enqueue_job("cvat_retry")
    await run_worker(services[1])  # still down: still creating, nothing lost
    assert (await user_client.get(f"/api/v1/review/datasets/{dataset['id']}")).json()["state"] == "creating"

    monkeypatch.setattr(settings, "cvat_url", cvat.url)  # CVAT is back
    await app.state.redis.enqueue_job("cvat_retry")
    await run_worker(services[1])
    review = (await user_client.get(f"/api/v1/review/datasets/{dataset['id']}")).json()
    assert review["state"] == "open" and review["message"] is None
    assert len(cvat.tasks) == 1 and len(cvat.task_frames(next(iter(cvat.tasks)))) == 6
    await app.state.redis.enqueue_job("cvat_retry")
    await run_worker(services[1])
    assert len(cvat.tasks) == 1  # the retry is idempotent

    for job in cvat.jobs:
        cvat.set_job(job, stage="acceptance", state="completed")
    monkeypatch.setattr(settings, "cvat_url", f"http://127.0.0.1:{_closed_port()}")  # down during import
    await app.state.redis.enqueue_job("cvat_poll")
    await run_worker(services[1])
    review = (await user_client.get(f"/api/v1/review/datasets/{dataset['id']}")).json()
    assert review["message"] == "CVAT is unreachable; retrying every minute." and review["jobs"]["acceptance"] == 0
    monkeypatch.setattr(settings, "cvat_url", cvat.url)
    await app.state.redis.enqueue_job("cvat_poll")
    await run_worker(services[1])
    review = (await user_client.get(f"/api/v1/review/datasets/{dataset['id']}")).json()
    assert review["message"] is None and review["state"] == "done"
    assert (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()["state"] == "ready"


async def test_open_reassign_and_agreement(app, user_client, admin_client, annotators, services, cvat):
    anna, rob = annotators
    dataset = await _in_cvat_review(app, user_client, services)
    job = (await anna.get("/api/v1/review/jobs")).json()[0]
    cvat_job = int(job["url"].rsplit("/", 1)[1])
    opened = await anna.get(f"/review/jobs/{job['id']}/open")
    assert opened.status_code == 303 and opened.headers["location"] == f"{cvat.url}/tasks/{next(iter(cvat.tasks))}/jobs/{cvat_job}"
    mine = await user_client.get("/review")  # the owner has no job of the team's to see
    assert mine.status_code == 200 and f"/review/jobs/{job['id']}" not in mine.text
    assert (await user_client.get(f"/review/jobs/{job['id']}")).status_code == 404

    rob_id = (await rob.get("/api/v1/users/me")).json()["id"]
    assert (await anna.post(f"/api/v1/review/jobs/{job['id']}/assign", json={"user_id": rob_id})).status_code == 403
    moved = await admin_client.post(f"/api/v1/review/jobs/{job['id']}/assign", json={"user_id": rob_id})
    assert moved.status_code == 200 and moved.json()["assignee_id"] == rob_id
    assert cvat.users[cvat.jobs[cvat_job]["assignee"]]["username"] == "rob"
    assert job["id"] in {j["id"] for j in (await rob.get("/api/v1/review/jobs")).json()}

    for j in cvat.jobs:
        cvat.set_job(j, stage="acceptance", state="completed")
    await app.state.redis.enqueue_job("cvat_poll")
    await run_worker(services[1])
    url = f"/api/v1/admin/review/agreement?dataset_id={dataset['id']}"
    assert (await user_client.get(url)).status_code == 403
    pairs = (await admin_client.get(url)).json()["pairs"]
    assert {p["a"] for p in pairs} == {"engine"} and sum(p["frames"] for p in pairs) == 6
    assert all(p["box_f1"] == 1.0 and p["label_kappa"] == 1.0 for p in pairs)  # nothing was changed in CVAT


async def test_double_review_in_cvat(app, client, user_client, annotators, services, cvat):
    """QC on CVAT: the QC copies of half the hard frames are jobs of their own in the same CVAT
    task, dealt to the other annotator; when a pair is completed its agreement is measured, and
    a pair that agrees is accepted here and in CVAT without a validator."""
    from src.database import unit_of_work
    from src.review import service as review_service

    dataset = await _in_cvat_review(app, user_client, services, double_review_share=0.5, auto_accept_agreement=0.9)
    (task,) = cvat.tasks.values()
    names = cvat.task_frames(task["id"])
    primary_names = [n for n in names if not n.endswith("_qc.jpg")]
    qc_names = [n for n in names if n.endswith("_qc.jpg")]
    assert len(primary_names) == 6 and names[:6] == primary_names
    # half the hard frames, spread over them, once more as QC copies: 4 + 2 primary frames, 2 + 1 QC
    assert qc_names == [primary_names[i].replace(".jpg", "_qc.jpg") for i in (1, 3, 5)]
    spans = sorted((j["start_frame"], j["stop_frame"]) for j in cvat.jobs.values())
    assert spans == [(0, 3), (4, 5), (6, 7), (8, 8)]
    by_start = {j["start_frame"]: j for j in cvat.jobs.values()}
    who = {start: cvat.users[j["assignee"]]["username"] for start, j in by_start.items()}
    assert who[6] != who[0] and who[8] != who[4]  # a QC copy never goes to the frame's own annotator
    assert cvat.boxes(by_start[6]["id"])[6] == cvat.boxes(by_start[0]["id"])[1]  # the same proposals

    # everyone completes in CVAT without a change: each pair agrees fully
    for job in cvat.jobs.values():
        cvat.set_job(job["id"], state="completed")
    await app.state.redis.enqueue_job("cvat_poll")
    await run_worker(services[1])
    assert {j["stage"] for j in cvat.jobs.values()} == {"acceptance"}
    done = (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()
    assert done["state"] == "ready", done
    async with unit_of_work(app.state.sessionmaker) as session:
        review = await review_service.get_task(session, dataset_id=uuid.UUID(dataset["id"]))
        figures = review.agreement
    assert len(figures["jobs"]) == 2 and all(row["box_f1"] == 1.0 for row in figures["jobs"])
    assert len(figures["auto_accepted"]) == 4


async def test_an_admin_accepting_a_cvat_qc_pair_moves_it_in_cvat(app, client, user_client, admin_client, annotators,
                                                                  services, cvat):
    await _in_cvat_review(app, user_client, services, double_review_share=0.5, auto_accept_agreement=0.9)
    by_start = {j["start_frame"]: j for j in cvat.jobs.values()}
    qc_job = by_start[6]["id"]  # the QC copies of primary frames 1 and 3
    cvat.set_boxes(qc_job, 6, [("person", [2.0, 2.0, 30.0, 60.0], 1)])  # the second opinion disagrees
    for start in (0, 6):
        cvat.set_job(by_start[start]["id"], state="completed")
    await app.state.redis.enqueue_job("cvat_poll")
    await run_worker(services[1])
    assert {by_start[s]["stage"] for s in (0, 6)} == {"validation"}  # not accepted: they disagree

    (row,) = (await admin_client.get("/api/v1/admin/review")).json()
    pair = next(p for p in row["agreement"]["jobs"] if p["ready"])
    assert pair["box_f1"] < 1 and not pair["auto_accepted"]
    response = await admin_client.post(f"/api/v1/admin/review/qc-jobs/{pair['qc_job_id']}/accept")
    assert response.status_code == 200, response.text
    await run_worker(services[1])  # cvat_accept_jobs
    assert {by_start[s]["stage"] for s in (0, 6)} == {"acceptance"}
    assert {by_start[s]["stage"] for s in (4, 8)} == {"annotation"}  # the other pair is untouched
