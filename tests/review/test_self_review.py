"""A solo user reviews their own dataset with nothing but a bearer token: no annotator, no
admin. The owner is dealt the jobs, sees exactly their frames, and completing is accepting."""

from __future__ import annotations

import io
import json
import zipfile

import httpx

from src.vision.metrics import load_otb
from tests.conftest import bearer, register, set_role
from tests.datasets.conftest import CROSSING, OPTIONS, make_draft, run_worker, top_up


async def test_a_script_takes_its_dataset_from_confirm_to_ready_reviewing_it_itself(app, make_client, services):
    api = make_client()
    await register(api, "solo@example.com")
    api.headers.update(await bearer(api, "solo@example.com"))
    annotator = make_client()
    await register(annotator, "anna@example.com")
    await set_role(app, "anna@example.com", "annotator")  # an annotator team exists, but is not asked
    annotator.headers.update(await bearer(annotator, "anna@example.com"))
    await top_up(app, "solo@example.com", 100_000)

    dataset = await make_draft(api)
    url = f"/api/v1/datasets/{dataset['id']}"
    options = {**OPTIONS, "review_budget": 0.05, "review_by": "me"}
    assert (await api.put(f"{url}/options", json=options)).status_code == 200
    assert (await api.post(f"{url}/confirm")).status_code == 202
    await run_worker(services[1])
    assert (await api.get(url)).json()["state"] == "in_review"

    (job,) = (await api.get("/api/v1/review/jobs")).json()
    assert (await annotator.get("/api/v1/review/jobs")).json() == []
    assert (await annotator.get(f"/api/v1/review/jobs/{job['id']}")).status_code == 404
    frames = [f["video_frame"] for f in job["frames"]]
    image = await api.get(f"/api/v1/review/jobs/{job['id']}/frames/{frames[0]}/image")
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    from src.review.service import MOTION_CONTEXT

    not_in_job = next(n for n in range(120) if all(abs(n - f) > MOTION_CONTEXT for f in frames))
    assert (await api.get(f"/api/v1/review/jobs/{job['id']}/frames/{not_in_job}/image")).status_code == 404
    beside = frames[0] + 1  # the frames around a hard frame show its motion
    assert (await api.get(f"/api/v1/review/jobs/{job['id']}/frames/{beside}/image")).status_code == 200
    assert (await annotator.get(f"/api/v1/review/jobs/{job['id']}/frames/{frames[0]}/image")).status_code == 404

    truth = [float(v) for v in load_otb(CROSSING / "groundtruth_rect.txt")[frames[0]]]
    fixed = await api.put(f"/api/v1/review/jobs/{job['id']}/frames/{frames[0]}",
                          json={"decision": "fixed", "objects": [{"track_id": 1, "class": "person", "box": truth}]})
    assert fixed.status_code == 200, fixed.text
    # accepting a fixed frame keeps the fix; only "pending" (revert) drops it
    again = await api.put(f"/api/v1/review/jobs/{job['id']}/frames/{frames[0]}", json={"decision": "accepted"})
    (first,) = [f for f in again.json()["frames"] if f["video_frame"] == frames[0]]
    assert first["decision"] == "fixed" and first["corrected"][0]["box"] == [round(v, 2) for v in truth]

    done = await api.post(f"/api/v1/review/jobs/{job['id']}/complete")
    assert done.json()["stage"] == "acceptance"  # the owner's completion is the acceptance
    assert (await api.get(url)).json()["state"] == "building"
    await run_worker(services[1])
    ready = (await api.get(url)).json()
    assert ready["state"] == "ready", ready
    archive = zipfile.ZipFile(io.BytesIO((await api.get(f"{url}/download?format=coco")).content))
    manifest = {f["frame"]: f for f in json.loads(archive.read("manifest.json"))["frames"]}
    assert manifest[frames[0]]["source"] == "reviewed"


async def test_reverting_a_fix_goes_back_to_the_proposal(app, make_client, services):
    api = make_client()
    await register(api, "solo@example.com")
    api.headers.update(await bearer(api, "solo@example.com"))
    await top_up(app, "solo@example.com", 100_000)
    dataset = await make_draft(api)
    url = f"/api/v1/datasets/{dataset['id']}"
    await api.put(f"{url}/options", json={**OPTIONS, "review_budget": 0.05, "review_by": "me"})
    await api.post(f"{url}/confirm")
    await run_worker(services[1])
    (job,) = (await api.get("/api/v1/review/jobs")).json()
    frame = job["frames"][0]["video_frame"]
    box = [10.0, 10.0, 40.0, 60.0]
    await api.put(f"/api/v1/review/jobs/{job['id']}/frames/{frame}",
                  json={"decision": "fixed", "objects": [{"track_id": 1, "class": "person", "box": box}]})
    reverted = await api.put(f"/api/v1/review/jobs/{job['id']}/frames/{frame}", json={"decision": "pending"})
    (row,) = [f for f in reverted.json()["frames"] if f["video_frame"] == frame]
    assert row["decision"] == "pending" and row["corrected"] is None


async def test_cvat_is_refused_where_none_is_configured(user_client, app):
    await top_up(app, "user@example.com", 100_000)
    dataset = await make_draft(user_client)
    url = f"/api/v1/datasets/{dataset['id']}"
    await user_client.put(f"{url}/options", json={**OPTIONS, "review_budget": 0.05, "review_backend": "cvat"})
    refused = await user_client.post(f"{url}/confirm")
    assert refused.status_code == 422 and "CVAT is not configured" in refused.json()["detail"]
    assert (await user_client.get(url)).json()["state"] == "draft"
    balance = (await user_client.get("/api/v1/billing/balance")).json()
    assert balance["balance_cents"] == 100_000, balance
