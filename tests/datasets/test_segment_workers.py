"""Two workers as if on two machines: separate processes with their own local folders (scratch,
read cache), sharing only PostgreSQL, Redis and an S3-protocol store (moto's server on
loopback). A long video's segments are split between them; SIGKILL one mid-segment and the
other takes its segment over when the lease runs out: the dataset is the one a single worker
makes in one piece, label for label, with one charge, and nothing lands in a local storage folder.

With the learned tracker and a GPU worker there, the segments go to the GPU worker and the
CPU worker that coordinates leaves them to it; once the GPU worker has stopped, the CPU worker
takes the rest.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
import zipfile

import httpx
import pytest

from src.config import ROOT, get_settings
from src.gpu import gpu_workers
from tests.datasets.conftest import run_worker, top_up
from tests.datasets.test_worker_crash import WorkerProcess, _ledger_kinds, _wait
from tests.test_s3_storage import BUCKET, _objects, s3_endpoint, s3_settings  # noqa: F401 - fixtures
from tests.videos.conftest import stored_files, upload

FRAMES = 3000
KEYFRAMES = (0, 750, 1500, 2250)
LEASE_S = 4
WORKER_ENV = {"SEGMENT_MIN_FRAMES": "1000", "SEGMENT_WORK": "1500", "SEGMENT_LEASE_SECONDS": str(LEASE_S)}


async def _draft(client, video_id: str, truth, name: str, keyframes=KEYFRAMES) -> dict:
    draft = await client.post("/api/v1/datasets", json={"video_id": video_id, "name": name, "classes": ["box"]})
    assert draft.status_code == 201, draft.text
    dataset = draft.json()
    for f in keyframes:
        objects = [{"track_id": t, "class": "box", "box": [round(float(v), 1) for v in boxes[f]]} for t, boxes in truth.items()]
        put = await client.put(f"/api/v1/datasets/{dataset['id']}/keyframes/{f}", json={"objects": objects})
        assert put.status_code == 200, put.text
    options = {"sampling": {"mode": "every_n", "every_n": 25}, "split": {"train": 0.8, "valid": 0.2, "test": 0.0},
               "formats": ["yolo", "mot"], "review_budget": 0.0}
    assert (await client.put(f"/api/v1/datasets/{dataset['id']}/options", json=options)).status_code == 200
    confirm = await client.post(f"/api/v1/datasets/{dataset['id']}/confirm")
    assert confirm.status_code == 202, confirm.text
    return dataset


def _ready(dataset: dict) -> bool:
    return dataset["state"] == "ready"


async def _leases(redis) -> dict[str, str]:
    """segment key -> holder ("host:pid:job id") of every lease held now."""
    held = {}
    for key in await redis.keys("forge:segment:*:lease"):
        holder = await redis.get(key)
        if holder is not None:
            held[key.decode().split(":")[2]] = holder.decode()
    return held


async def _labels(client, dataset_id: str) -> dict[str, bytes]:
    found = {}
    for fmt in ("yolo", "mot"):
        response = await client.get(f"/api/v1/datasets/{dataset_id}/download", params={"format": fmt})
        if response.status_code == 307:  # a presigned redirect to the store
            async with httpx.AsyncClient() as outside:
                response = await outside.get(response.headers["location"])
        assert response.status_code == 200, response.text
        with zipfile.ZipFile(io.BytesIO(response.content)) as z:
            found |= {f"{fmt}/{n}": z.read(n) for n in z.namelist() if n.endswith(".txt")}
    return found


@pytest.mark.parametrize("chunk", [0, 400], ids=["whole passes", "chunks of 400 frames"])
async def test_two_workers_share_a_long_video_and_one_dies_mid_segment(app, user_client, services, s3_settings,
                                                                       tmp_path, monkeypatch, chunk):
    """With chunks, every pass (750 frames) is two chunks: the victim dies in one, and the
    survivor goes on from the checkpoint the chunk before left in the store."""
    from src.vision.synthetic import make_video

    path = tmp_path / "long.mp4"
    truth = await asyncio.to_thread(make_video, path, width=480, height=270, n_frames=FRAMES, n_objects=2, seed=11,
                                    object_size=(40, 70), max_speed=1.5, pan=0.2)
    video = await upload(user_client, path, "long.mp4")
    assert video.status_code == 201 and video.json()["frame_count"] == FRAMES, video.text
    video_id = video.json()["id"]
    await top_up(app, "user@example.com", 1_000_000)

    machines = {name: tmp_path / name for name in ("machine-a", "machine-b")}
    workers = [WorkerProcess(name, tmp_path, 300, {**WORKER_ENV, "VAR_DIR": str(folder),
                                                   "STORAGE_CACHE_DIR": str(folder / "cache"),
                                                   "SEGMENT_CHUNK_FRAMES": str(chunk)},
                             command=("-m", "src.cli", "worker"))  # `forge worker`, which logs what it does
               for name, folder in machines.items()]
    by_pid = {w.process.pid: w for w in workers}
    redis = app.state.redis
    dataset = await _draft(user_client, video_id, truth, "split")
    did = dataset["id"]
    try:
        # the coordinator (the dataset job) takes segments too; kill the other worker while it
        # holds one that is not stored yet
        coordinator = victim = held_key = None
        deadline = time.monotonic() + 120
        while victim is None:
            assert time.monotonic() < deadline, f"no segment taken by a second worker: {await _leases(redis)}\n" + \
                "\n".join(w.text()[-2000:] for w in workers)
            for key, holder in (await _leases(redis)).items():
                pid, job = int(holder.split(":")[1]), holder.split(":", 2)[2]
                if job.startswith("dataset:"):
                    coordinator = pid
                elif coordinator is not None and pid != coordinator and pid in by_pid:
                    victim, held_key = by_pid[pid], key
            for w in workers:
                assert w.process.poll() is None, w.text()[-3000:]
            state = (await user_client.get(f"/api/v1/datasets/{did}")).json()
            assert state["state"] not in ("failed", "cancelled", "ready"), (state["state"], state["error"])
            await asyncio.sleep(0.05)
        stored = f"forge/datasets/{did}/segments/{held_key}.npz"
        victim.kill()
        assert stored not in _objects(s3_settings), "the segment was done before the kill landed"
        survivor = next(w for w in workers if w is not victim)

        await _wait(user_client, did, _ready, 300, "the dataset to be ready", [survivor])
    finally:
        for w in workers:
            w.stop()

    # both machines ran segments; the survivor ran the one the victim was killed in
    assert "propagate_segment(" in survivor.text()  # it took segment jobs of its own too
    planned = re.search(rf"dataset {did}: propagating in \d+ segment jobs.*", "".join(w.text() for w in workers))
    assert planned and ("of them chunks of long passes" in planned.group(0)) == bool(chunk), planned
    assert f"segment {held_key} of dataset {did}" in survivor.text(), survivor.text()[-3000:]
    assert stored in _objects(s3_settings)
    assert await _ledger_kinds(app, did) == ["reservation", "release", "charge"]

    # the same dataset as one worker makes in one piece (this process's worker, no segments)
    monkeypatch.setattr(get_settings(), "segment_min_frames", 0)
    whole = await _draft(user_client, video_id, truth, "whole")
    await run_worker(services[1])
    assert (await user_client.get(f"/api/v1/datasets/{whole['id']}")).json()["state"] == "ready"
    split, one = await _labels(user_client, did), await _labels(user_client, whole["id"])
    assert len([n for n in one if n.startswith("yolo/")]) == FRAMES // 25
    assert split == one

    # nothing in a local storage folder: the test's, or either machine's
    for root in [get_settings().storage_path, *(folder / "storage" for folder in machines.values())]:
        assert not root.exists() or stored_files(root) == []


NANOTRACK = ROOT.parent / "shared" / "models" / "nanotrack-v2"


def _done_lines(worker: WorkerProcess, dataset_id: str) -> list[str]:
    """The worker's log lines for segments of the dataset it stored ("... done by HOLDER in ...")."""
    return [line for line in worker.text().splitlines() if f"of dataset {dataset_id} (frames" in line]


@pytest.mark.skipif(not (NANOTRACK / "nanotrack_head_sim.onnx").exists(), reason="shared NanoTrack model missing")
async def test_learned_tracker_segments_go_to_the_gpu_worker_and_fall_back_when_it_stops(app, user_client, tmp_path):
    from src.vision.synthetic import make_video

    frames, keyframes = 1500, (0, 500, 1000)
    path = tmp_path / "long.mp4"
    truth = await asyncio.to_thread(make_video, path, width=480, height=270, n_frames=frames, n_objects=1, seed=5,
                                    object_size=(50, 80), max_speed=1.5, pan=0.2)
    video = await upload(user_client, path, "long.mp4")
    assert video.status_code == 201, video.text
    await top_up(app, "user@example.com", 1_000_000)

    # The web's settings say nothing of the learned tracker, so the dataset job itself goes to
    # the CPU worker (as one queued before the GPU worker started would); the workers track with it.
    env = {"SEGMENT_MIN_FRAMES": "1000", "SEGMENT_WORK": "1000", "SEGMENT_LEASE_SECONDS": str(LEASE_S),
           "TRACKER_MODEL_DIR": str(NANOTRACK)}
    cpu = WorkerProcess("cpu-worker", tmp_path, 300, env, command=("-m", "src.cli", "worker"))
    gpu = WorkerProcess("gpu-worker", tmp_path, 300, env, command=("-m", "src.cli", "worker", "--gpu", "0"))
    redis = app.state.redis
    try:
        deadline = time.monotonic() + 90
        while not await gpu_workers(redis):
            assert time.monotonic() < deadline and gpu.process.poll() is None, gpu.text()[-3000:]
            await asyncio.sleep(0.2)
        did = (await _draft(user_client, video.json()["id"], truth, "learned", keyframes))["id"]

        # the GPU worker stores the first segment; the coordinating CPU worker has run none
        deadline = time.monotonic() + 180
        while not _done_lines(gpu, did):
            assert time.monotonic() < deadline, f"no segment done by the GPU worker:\n{gpu.text()[-3000:]}"
            for w in (cpu, gpu):
                assert w.process.poll() is None, w.text()[-3000:]
            state = (await user_client.get(f"/api/v1/datasets/{did}")).json()
            assert state["state"] not in ("failed", "cancelled", "ready"), (state["state"], state["error"])
            await asyncio.sleep(0.1)
        assert f"dataset:{did}" in cpu.text()  # the coordinator is the CPU worker
        assert _done_lines(cpu, did) == [], "the CPU worker took a segment while a GPU worker was there"
        assert "on the GPU workers" in cpu.text(), cpu.text()[-3000:]
        gpu.terminate()  # a clean stop withdraws its advertisement at once
        assert await gpu_workers(redis) == 0
        by_gpu = len(_done_lines(gpu, did))

        await _wait(user_client, did, _ready, 240, "the dataset to be ready", [cpu])
    finally:
        for w in (cpu, gpu):
            w.stop()
    log = cpu.text()
    assert f"dataset {did}: tracks made by the nanotrack-v2 engine" in log, log[-3000:]
    total = int(re.search(rf"dataset {did}: propagating in (\d+) segment jobs", log).group(1))
    assert total >= 3, log[-3000:]
    # the CPU worker ran what the GPU worker left, and each segment was stored once
    assert _done_lines(cpu, did), log[-3000:]
    assert by_gpu + len(_done_lines(cpu, did)) == total, (by_gpu, _done_lines(cpu, did))
    assert await _ledger_kinds(app, did) == ["reservation", "release", "charge"]


async def test_the_coordinator_dies_and_its_successor_reuses_the_stored_segments(app, user_client, tmp_path):
    """SIGKILL the worker that runs the dataset job itself (the coordinator) once segments are
    stored: the dataset's heartbeat goes stale, a restarted worker's sweep hands the dataset to a
    new job, and that coordinator runs only the segments not stored yet; the dataset is the one
    made in one piece, with one charge."""
    from src.vision.synthetic import make_video

    stale = 10
    path = tmp_path / "long.mp4"
    truth = await asyncio.to_thread(make_video, path, width=480, height=270, n_frames=FRAMES, n_objects=2, seed=11,
                                    object_size=(40, 70), max_speed=1.5, pan=0.2)
    video = await upload(user_client, path, "long.mp4")
    assert video.status_code == 201, video.text
    video_id = video.json()["id"]
    await top_up(app, "user@example.com", 1_000_000)

    workers = [WorkerProcess(name, tmp_path, stale, WORKER_ENV, command=("-m", "src.cli", "worker"))
               for name in ("worker-a", "worker-b")]
    by_pid = {w.process.pid: w for w in workers}
    redis = app.state.redis
    did = (await _draft(user_client, video_id, truth, "split"))["id"]
    try:
        coordinator = None
        deadline = time.monotonic() + 180
        while coordinator is None or not await redis.keys("forge:segment:*:done"):
            assert time.monotonic() < deadline, "no segment stored:\n" + "\n".join(w.text()[-2000:] for w in workers)
            for holder in (await _leases(redis)).values():
                if holder.split(":", 2)[2].startswith("dataset:"):
                    coordinator = by_pid[int(holder.split(":")[1])]
            state = (await user_client.get(f"/api/v1/datasets/{did}")).json()
            assert state["state"] in ("queued", "propagating"), (state["state"], state["error"])
            await asyncio.sleep(0.05)
        coordinator.kill()
        stored_before = len(await redis.keys("forge:segment:*:done"))
        total = int(re.search(r"propagating in (\d+) segment jobs", coordinator.text()).group(1))
        assert stored_before < total, "every segment was stored before the kill landed"
        await asyncio.sleep(stale + 1)  # a supervisor restarts a dead worker with a backoff
        restarted = WorkerProcess("worker-a-restarted", tmp_path, stale, WORKER_ENV, command=("-m", "src.cli", "worker"))
        workers.append(restarted)
        alive = [w for w in workers if w is not coordinator]

        await _wait(user_client, did, _ready, 300, "the dataset to be ready", alive)
    finally:
        for w in workers:
            w.stop()

    # the successor (a new job id from the sweep) reused what was stored before the kill
    logs = "\n".join(w.text() for w in alive)
    reused = [int(n) for n in re.findall(rf"dataset {did}: propagating in {total} segment jobs \((\d+) stored already\)",
                                         logs)]
    assert reused and reused[-1] >= stored_before, logs[-3000:]
    assert f"dataset:{did}:retry1" in logs, logs[-3000:]
    assert await _ledger_kinds(app, did) == ["reservation", "release", "charge"]

    # One piece, by a worker of its own: the killed job stays in arq's queue as "in progress"
    # until its timeout (then it runs, finds the dataset held or done and skips), so a burst
    # worker here would wait for it.
    whole = (await _draft(user_client, video_id, truth, "whole"))["id"]
    one = WorkerProcess("one-piece", tmp_path, stale, {**WORKER_ENV, "SEGMENT_MIN_FRAMES": "0"})
    try:
        await _wait(user_client, whole, _ready, 300, "the one-piece dataset to be ready", [one])
    finally:
        one.stop()
    assert await _labels(user_client, did) == await _labels(user_client, whole)
