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


async def test_after_review_only_the_spans_next_to_a_fix_are_propagated_again(app, make_client, services):
    """The first run keeps the engine's state; the run after the review propagates only track 1
    between the two keyframes around the fixed frame (timeline.json says which), and the delivered
    boxes are those of a whole propagation of the keyframes plus the fix."""
    import numpy as np

    from src.datasets.pipeline import seed_objects
    from src.vision.propagate import propagate
    from tests.datasets.conftest import first_box

    api = make_client()
    await register(api, "again@example.com")
    api.headers.update(await bearer(api, "again@example.com"))
    await top_up(app, "again@example.com", 100_000)
    dataset = await make_draft(api)
    url = f"/api/v1/datasets/{dataset['id']}"
    truth = load_otb(CROSSING / "groundtruth_rect.txt")
    person = lambda f: {"objects": [{"track_id": 1, "class": "person", "box": [float(v) for v in truth[f]]}]}  # noqa: E731
    for f in (60, 119):
        assert (await api.put(f"{url}/keyframes/{f}", json=person(f))).status_code == 200
    options = {**OPTIONS, "formats": ["coco"], "review_budget": 0.01, "review_by": "me"}  # one frame
    assert (await api.put(f"{url}/options", json=options)).status_code == 200
    assert (await api.post(f"{url}/confirm")).status_code == 202
    await run_worker(services[1])
    assert (await api.get(url)).json()["progress"]["percent"] == 65  # where the first run ended
    (job,) = (await api.get("/api/v1/review/jobs")).json()
    (frame,) = [f["video_frame"] for f in job["frames"]]
    span = [1, 0, 60] if frame < 60 else [1, 60, 119]  # between the keyframes around it
    fix = [float(v) for v in truth[frame]]
    fixed = await api.put(f"/api/v1/review/jobs/{job['id']}/frames/{frame}",
                          json={"decision": "fixed", "objects": [{"track_id": 1, "class": "person", "box": fix}]})
    assert fixed.status_code == 200, fixed.text
    assert (await api.post(f"/api/v1/review/jobs/{job['id']}/complete")).status_code == 200
    assert (await api.get(url)).json()["progress"]["percent"] == 75
    # the bar goes on from the review: never back to 0 (it once went 75 -> 0 -> 60 -> 100)
    import asyncio

    seen: list[float] = []

    async def watch():
        while True:
            seen.append((await api.get(url)).json()["progress"].get("percent", 0))
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    await run_worker(services[1])
    watcher.cancel()
    assert (await api.get(url)).json()["state"] == "ready"
    assert seen and min(seen) >= 75 and seen == sorted(seen), seen

    from src.datasets.service import artifact_key
    from src.storage import get_storage

    with get_storage().open(artifact_key(dataset["id"], "timeline.json")) as f:
        assert json.load(f)["propagated_spans"] == [span]  # not the whole video: 0-119
    archive = zipfile.ZipFile(io.BytesIO((await api.get(f"{url}/download?format=coco")).content))
    delivered = {f["frame"]: f["objects"] for f in json.loads(archive.read("manifest.json"))["frames"]}
    seeds = {0: [{"track_id": 1, "class": "person", "box": first_box(CROSSING)}], 60: person(60)["objects"],
             119: person(119)["objects"], frame: [{"track_id": 1, "class": "person", "box": fix}]}
    (whole,) = propagate(CROSSING / "video.mp4", seed_objects(seeds), budget=0, processes=False).tracks
    for f, objects in delivered.items():
        for o in objects:
            np.testing.assert_allclose(o["box"], whole.boxes[f], atol=0.01, err_msg=f"frame {f}")
    assert sum(len(objects) for objects in delivered.values()) == int(whole.present.sum())
