"""Preview tracks over the API: the worker propagates the draft's keyframes before confirming;
the same keyframes reuse the stored preview, changed keyframes make a new one, and someone
else's draft is 404."""

from __future__ import annotations

from src.vision.metrics import iou, load_otb
from tests.conftest import login_cookie, register
from tests.datasets.conftest import CROSSING, first_box, make_draft, run_worker


async def test_preview_follows_the_object_and_is_cached_per_keyframe_set(app, user_client, make_client, services):
    dataset = await make_draft(user_client)
    url = f"/api/v1/datasets/{dataset['id']}/preview"
    assert (await user_client.get(url)).json()["state"] == "none"
    started = await user_client.post(url)
    assert started.status_code == 202 and started.json()["state"] == "queued"
    again = await user_client.post(url)
    assert again.json()["key"] == started.json()["key"]  # asked twice: one job
    await run_worker(services[1])
    ready = (await user_client.get(url, params={"start": 50, "stop": 70})).json()
    assert ready["state"] == "ready" and ready["frames"] == 120 and (ready["start"], ready["stop"]) == (50, 70)
    (track,) = ready["tracks"]
    assert track["track_id"] == 1 and len(track["boxes"]) == 20
    truth = load_otb(CROSSING / "groundtruth_rect.txt")
    ious = [iou(box, truth[50 + i]) for i, box in enumerate(track["boxes"]) if box]
    assert len(ious) >= 18 and sum(ious) / len(ious) > 0.5, ious  # near the ground truth mid-video

    # the same keyframes: the stored preview, no job; a new keyframe: a new key, queued
    reused = (await user_client.post(url)).json()
    assert reused == {"key": started.json()["key"], "state": "ready"}
    box = [float(v) for v in truth[60]]
    await user_client.put(f"/api/v1/datasets/{dataset['id']}/keyframes/60",
                          json={"objects": [{"track_id": 1, "class": "person", "box": box}]})
    changed = (await user_client.post(url)).json()
    assert changed["key"] != started.json()["key"] and changed["state"] == "queued"
    await run_worker(services[1])
    fresh = (await user_client.get(url, params={"start": 60, "stop": 61})).json()
    assert fresh["state"] == "ready" and 60 in fresh["keyframes"]
    assert iou(fresh["tracks"][0]["boxes"][0], truth[60]) > 0.95

    other = make_client()
    await register(other, "other@example.com")
    await login_cookie(other, "other@example.com")
    assert (await other.get(url)).status_code == 404
    assert (await other.post(url)).status_code == 404


async def test_a_superseded_preview_is_skipped(app, user_client, services):
    dataset = await make_draft(user_client)
    url = f"/api/v1/datasets/{dataset['id']}/preview"
    first = (await user_client.post(url)).json()
    box = first_box(CROSSING)
    await user_client.put(f"/api/v1/datasets/{dataset['id']}/keyframes/0",
                          json={"objects": [{"track_id": 1, "class": "person", "box": [box[0] + 2, *box[1:]]}]})
    second = (await user_client.post(url)).json()
    assert second["key"] != first["key"]
    await run_worker(services[1])
    from src.datasets.preview import store_key
    from src.storage import get_storage

    assert not get_storage().exists(store_key(dataset["id"], first["key"]))  # skipped: keyframes changed
    assert (await user_client.get(url)).json()["state"] == "ready"


async def test_nothing_to_preview_says_so(user_client):
    from tests.datasets.conftest import upload

    video = (await upload(user_client, CROSSING / "video.mp4")).json()
    draft = (await user_client.post("/api/v1/datasets", json={"video_id": video["id"], "name": "x", "classes": ["person"]})).json()
    answer = (await user_client.post(f"/api/v1/datasets/{draft['id']}/preview")).json()
    assert answer["state"] == "empty" and "Draw a box" in answer["message"]


async def test_the_quote_counts_object_frames_from_the_preview(app, user_client, services):
    dataset = await make_draft(user_client)
    url = f"/api/v1/datasets/{dataset['id']}"
    # the person is gone from frame 90 on: the preview stops there, an upper bound would not
    await user_client.put(f"{url}/keyframes/90", json={"objects": [{"track_id": 1, "gone": True}]})
    before = (await user_client.get(f"{url}/quote")).json()
    assert not before["from_preview"] and before["object_frames"] == 120
    await user_client.post(f"{url}/preview")
    await run_worker(services[1])
    after = (await user_client.get(f"{url}/quote")).json()
    assert after["from_preview"] and after["object_frames"] <= 90 < before["object_frames"]
    assert after["total_cents"] <= before["total_cents"]


async def test_a_fix_in_place_re_propagates_only_the_neighbouring_segments(app, user_client, services):
    """Keyframes on 0 and 100, then a box moved on 50: the job runs the engine on frames
    0-100 of that track only (the span between its unchanged keyframes) on top of the stored
    preview, and the tracks equal a preview made from scratch with the same keyframes."""
    truth = load_otb(CROSSING / "groundtruth_rect.txt")
    dataset = await make_draft(user_client)
    url = f"/api/v1/datasets/{dataset['id']}"
    person = lambda f, dx=0.0: {"objects": [{"track_id": 1, "class": "person",  # noqa: E731
                                             "box": [float(truth[f][0]) + dx, *map(float, truth[f][1:])]}]}
    await user_client.put(f"{url}/keyframes/100", json=person(100))
    first = (await user_client.post(f"{url}/preview")).json()
    await run_worker(services[1])
    assert (await user_client.get(f"{url}/preview", params={"stop": 0})).json()["spans"] is None  # the whole video

    await user_client.put(f"{url}/keyframes/50", json=person(50, dx=4.0))
    fixed = (await user_client.post(f"{url}/preview")).json()
    assert fixed["base"] == first["key"]
    # what the editor marks while the job runs is what it runs
    from src.datasets.pipeline import preview_spans
    from src.datasets.preview import reuse_key, store_key
    from src.storage import get_storage
    from src.vision.video import probe

    keyframes = (await user_client.get(f"{url}/keyframes")).json()["keyframes"]
    seeds = {k["frame"]: k["objects"] for k in keyframes}
    reuse = str(get_storage().local_path(reuse_key(dataset["id"], first["key"])))
    assert preview_spans(reuse, seeds, probe(CROSSING / "video.mp4"), None) == [[1, 0, 100]]
    await run_worker(services[1])
    spliced = (await user_client.get(f"{url}/preview")).json()
    assert spliced["state"] == "ready" and spliced["spans"] == [[1, 0, 100]]
    assert spliced["tracks"][0]["boxes"][50] == [round(float(truth[50][0]) + 4, 1), *(round(float(v), 1) for v in truth[50][1:])]
    # the preview it was built on is deleted once this one is stored; this one stays
    storage = get_storage()
    assert not storage.exists(store_key(dataset["id"], first["key"])) and not storage.exists(reuse_key(dataset["id"], first["key"]))
    assert storage.exists(store_key(dataset["id"], fixed["key"])) and storage.exists(reuse_key(dataset["id"], fixed["key"]))

    video = (await user_client.get(f"/api/v1/videos/{dataset['video_id']}")).json()
    scratch = await make_draft(user_client, name="from scratch", video=video)
    other = f"/api/v1/datasets/{scratch['id']}"
    await user_client.put(f"{other}/keyframes/100", json=person(100))
    await user_client.put(f"{other}/keyframes/50", json=person(50, dx=4.0))
    assert (await user_client.post(f"{other}/preview")).json()["base"] is None
    await run_worker(services[1])
    whole = (await user_client.get(f"{other}/preview")).json()
    assert whole["spans"] is None
    assert whole["tracks"] == spliced["tracks"] and whole["hard_frames"] == spliced["hard_frames"]


async def test_changing_the_keyframes_stops_a_running_preview(app, user_client, services, tmp_path):
    """A long preview is running when a keyframe moves: that job stops within seconds
    (result "cancelled", nothing stored for its keys), and the preview of the new keyframes
    finishes."""
    import asyncio
    import time

    from arq.jobs import Job

    from src.datasets.preview import store_key
    from src.storage import get_storage
    from src.vision.synthetic import make_video
    from tests.datasets.conftest import upload
    from tests.test_worker import burst_worker

    path = tmp_path / "long.mp4"
    truth = await asyncio.to_thread(make_video, path, width=640, height=360, n_frames=1500, n_objects=2, seed=3,
                                    codec="h264")
    video = (await upload(user_client, path)).json()
    draft = (await user_client.post("/api/v1/datasets", json={"video_id": video["id"], "name": "long",
                                                              "classes": ["person"]})).json()
    url = f"/api/v1/datasets/{draft['id']}"
    objects = lambda dx: {"objects": [{"track_id": t, "class": "person",  # noqa: E731
                                       "box": [float(g[0][0]) + dx, *map(float, g[0][1:])]} for t, g in truth.items()]}
    await user_client.put(f"{url}/keyframes/0", json=objects(0.0))
    first = (await user_client.post(f"{url}/preview")).json()

    worker = burst_worker(services[1])
    running = asyncio.ensure_future(worker.main())
    try:
        deadline = time.monotonic() + 60
        while True:
            state = (await user_client.get(f"{url}/preview", params={"stop": 0})).json()
            if state["state"] == "running" and state["done"] > 0:
                break
            assert state["state"] in ("queued", "running") and time.monotonic() < deadline, state
            await asyncio.sleep(0.1)
        await user_client.put(f"{url}/keyframes/0", json=objects(3.0))
        changed_at = time.time()
        second = (await user_client.post(f"{url}/preview")).json()
        assert second["key"] != first["key"] and second["state"] == "queued"
        await asyncio.wait_for(running, 180)
    finally:
        await worker.close()
    redis = app.state.redis
    stopped = await Job(f"preview:{draft['id']}:{first['key']}", redis).result_info()
    finished = await Job(f"preview:{draft['id']}:{second['key']}", redis).result_info()
    assert stopped.result == "cancelled" and finished.result == "ready"
    took = stopped.finish_time.timestamp() - changed_at
    whole = (finished.finish_time - finished.start_time).total_seconds()
    print(f"stopped {took:.1f} s after the change; a whole run: {whole:.1f} s")
    assert took < 5.0 and took < whole / 2, (took, whole)  # it stopped, it did not run to the end
    assert not get_storage().exists(store_key(draft["id"], first["key"]))
    ready = (await user_client.get(f"{url}/preview", params={"stop": 1})).json()
    assert ready["state"] == "ready" and ready["key"] == second["key"]
