"""GPU workers (issue 21 item 4, src/gpu.py): jobs that want a GPU go to a GPU worker while
one is advertised, to the ordinary workers otherwise, and none waits for a GPU that went away.
Real Redis; the second test starts `forge worker --gpu 0` as its own process (on this CPU-only
machine the CUDA provider falls back to the CPU: the routing is what is tested)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from arq import create_pool
from arq.constants import default_queue_name

from src.config import ROOT, get_settings
from src.gpu import (ADVERTS, GPU_QUEUE, GPU_SEGMENT_QUEUE, SEGMENT_QUEUE, advertise, gpu_workers, release_gpu_jobs,
                     routing, segment_queue, withdraw)
from src.jobs import redis_settings
from tests.datasets.conftest import make_draft, top_up

NANOTRACK = ROOT.parent / "shared" / "models" / "nanotrack-v2"


@pytest.fixture
async def pool(services):
    redis = routing(await create_pool(redis_settings(services[1])))
    yield redis
    await redis.aclose()


async def _queue_of(redis, job_id: str) -> str | None:
    for queue in (default_queue_name, GPU_QUEUE, SEGMENT_QUEUE, GPU_SEGMENT_QUEUE):
        if await redis.zscore(queue, job_id) is not None:
            return queue
    return None


async def test_jobs_that_want_a_gpu_go_to_gpu_workers_only_while_one_is_there(pool, monkeypatch):
    await pool.enqueue_job("train_detector", "m1", _job_id="train-1")
    assert await _queue_of(pool, "train-1") == default_queue_name  # no GPU worker: the CPU workers train

    await advertise(pool, "gpu-host:1")
    assert await gpu_workers(pool) == 1
    await pool.enqueue_job("train_detector", "m2", _job_id="train-2")
    await pool.enqueue_job("health_job", _job_id="health-1")
    await pool.enqueue_job("build_dataset", "d1", _job_id="dataset-1")
    assert await _queue_of(pool, "train-2") == GPU_QUEUE
    assert await _queue_of(pool, "health-1") == default_queue_name  # wants no GPU
    assert await _queue_of(pool, "dataset-1") == default_queue_name  # the built-in tracker: CPU
    monkeypatch.setattr(get_settings(), "tracker_model_dir", str(NANOTRACK))
    await pool.enqueue_job("build_dataset", "d2", _job_id="dataset-2")
    assert await _queue_of(pool, "dataset-2") == GPU_QUEUE  # the learned tracker uses the GPU
    await pool.enqueue_job("build_dataset", "d3", _job_id="dataset-3", _queue_name=default_queue_name)
    assert await _queue_of(pool, "dataset-3") == default_queue_name  # an explicit queue is kept

    # a long video's segments: the learned tracker's to the GPU workers, the built-in one's to all
    assert await segment_queue(pool, learned=True) == GPU_SEGMENT_QUEUE
    assert await segment_queue(pool, learned=False) == SEGMENT_QUEUE
    await pool.enqueue_job("propagate_segment", "s1", _job_id="segment-1",
                           _queue_name=await segment_queue(pool, learned=True))

    # while a GPU worker is there its jobs wait for it; once it is gone they go to the CPU workers
    ctx = {"redis": pool}
    assert await release_gpu_jobs(ctx) == 0 and await _queue_of(pool, "train-2") == GPU_QUEUE
    score = await pool.zscore(GPU_QUEUE, "train-2")
    await withdraw(pool, "gpu-host:1")
    assert await segment_queue(pool, learned=True) == SEGMENT_QUEUE
    assert await release_gpu_jobs(ctx) == 3
    assert await _queue_of(pool, "train-2") == default_queue_name == await _queue_of(pool, "dataset-2")
    assert await pool.zscore(default_queue_name, "train-2") == score  # same place in the queue
    assert await _queue_of(pool, "segment-1") == SEGMENT_QUEUE  # a segment stays a segment
    assert await pool.zcard(GPU_QUEUE) == 0 == await pool.zcard(GPU_SEGMENT_QUEUE)

    # a GPU worker that died without withdrawing counts until its advertisement expires
    await advertise(pool, "gpu-host:2", ttl=0.5)
    assert await gpu_workers(pool) == 1
    await asyncio.sleep(0.7)
    assert await gpu_workers(pool) == 0
    await advertise(pool, "gpu-host:3")
    assert await pool.zscore(ADVERTS, "gpu-host:2") is None  # expired ones are swept


def _gpu_worker(log_path) -> subprocess.Popen:
    env = {**os.environ, "TRACKER_MODEL_DIR": str(NANOTRACK), "WORKER_PROCESSES": "1", "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as out:  # DATABASE_URL, REDIS_URL, VAR_DIR: set by tests/conftest.py
        return subprocess.Popen([sys.executable, "-m", "src.cli", "worker", "--gpu", "0"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


async def _until(predicate, timeout: float, what: str, worker: subprocess.Popen, log_path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        assert worker.poll() is None, log_path.read_text(errors="replace")[-3000:]
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}:\n{log_path.read_text(errors='replace')[-3000:]}")


@pytest.mark.skipif(not (NANOTRACK / "nanotrack_head_sim.onnx").exists(), reason="shared NanoTrack model missing")
async def test_a_gpu_worker_takes_a_learned_tracker_dataset_and_withdraws_when_it_stops(
        app, user_client, pool, monkeypatch, tmp_path):
    monkeypatch.setattr(get_settings(), "tracker_model_dir", str(NANOTRACK))  # the web's view of the setting
    log_path = tmp_path / "gpu-worker.log"
    worker = _gpu_worker(log_path)
    try:
        await _until(lambda: gpu_workers(pool), 90, "the GPU worker to advertise itself", worker, log_path)
        await top_up(app, "user@example.com", 100_000)
        dataset = await make_draft(user_client)
        options = {"sampling": {"mode": "every_n", "every_n": 10}, "split": {"train": 0.8, "valid": 0.2, "test": 0.0},
                   "formats": ["yolo"], "review_budget": 0.0}
        assert (await user_client.put(f"/api/v1/datasets/{dataset['id']}/options", json=options)).status_code == 200
        assert (await user_client.post(f"/api/v1/datasets/{dataset['id']}/confirm")).status_code == 202

        async def ready() -> bool:
            return (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()["state"] == "ready"

        # no ordinary worker runs in this test: only the GPU worker can have built it
        await _until(ready, 180, "the dataset to be ready", worker, log_path)
        log = log_path.read_text(errors="replace")
        assert "GPU worker" in log and "no CUDA device found" in log, log[-3000:]
        assert f"dataset:{dataset['id']}" in log and "nanotrack-v2" in log, log[-3000:]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert await gpu_workers(pool) == 0  # withdrawn on a clean stop: new GPU jobs go to the CPU workers
    await pool.enqueue_job("train_detector", "m3", _job_id="train-3")
    assert await _queue_of(pool, "train-3") == default_queue_name


@pytest.mark.skipif(not (NANOTRACK / "nanotrack_head_sim.onnx").exists(), reason="shared NanoTrack model missing")
async def test_learned_segments_wait_for_a_gpu_worker_only_so_long(app, user_client, pool, services, monkeypatch,
                                                                    tmp_path, caplog):
    """A GPU worker is advertised but never takes anything (busy, or stuck): after
    SEGMENT_GPU_WAIT_SECONDS the CPU worker's dataset run takes its learned-tracker segments."""
    from src.vision.synthetic import make_video
    from tests.datasets.conftest import run_worker
    from tests.datasets.test_segment_workers import _draft
    from tests.videos.conftest import upload

    path = tmp_path / "long.mp4"
    truth = await asyncio.to_thread(make_video, path, width=320, height=240, n_frames=1500, n_objects=1, seed=5,
                                    object_size=(40, 70), max_speed=1.5, pan=0.2)
    video = await upload(user_client, path, "long.mp4")
    assert video.status_code == 201, video.text
    await top_up(app, "user@example.com", 1_000_000)
    dataset = await _draft(user_client, video.json()["id"], truth, "waits", (0, 500, 1000))  # queued for the CPU workers

    settings = get_settings()
    for name, value in {"tracker_model_dir": str(NANOTRACK), "segment_min_frames": 1000, "segment_work": 1000,
                        "segment_gpu_wait_seconds": 3}.items():
        monkeypatch.setattr(settings, name, value)
    await advertise(pool, "busy-gpu-host:1", ttl=600)
    try:
        started = time.monotonic()
        with caplog.at_level("INFO", logger="forge"):
            await asyncio.wait_for(run_worker(services[1]), 240)  # its advertisement alone would last 600 s
    finally:
        await withdraw(pool, "busy-gpu-host:1")
    state = (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()
    assert state["state"] == "ready", (state["state"], state["error"])
    waited = [r.getMessage() for r in caplog.records if "no GPU worker took it in 3 s" in r.getMessage()]
    assert len(waited) >= 3, [r.getMessage() for r in caplog.records if r.name.startswith("forge")][-20:]
    assert any("on the GPU workers" in r.getMessage() for r in caplog.records)  # they were queued for the GPU
    assert time.monotonic() - started >= 3
