"""arq wiring: a job enqueued through the app's pool runs in a burst worker on real Redis."""

from __future__ import annotations

import os

from arq.jobs import JobStatus
from arq.worker import Worker

from src.worker import redis_settings, shutdown, startup, task_functions


def burst_worker(redis_url: str) -> Worker:
    return Worker(
        functions=task_functions(),
        redis_settings=redis_settings(redis_url),
        on_startup=startup,
        on_shutdown=shutdown,
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
    )


async def test_health_job_runs_in_burst_worker(app, services):
    _, redis_url = services
    job = await app.state.redis.enqueue_job("health_job", "ping", _job_id="health:test")
    duplicate = await app.state.redis.enqueue_job("health_job", "ping", _job_id="health:test")
    assert duplicate is None  # deterministic job ids: enqueueing twice runs once
    worker = burst_worker(redis_url)
    try:
        await worker.main()
    finally:
        await worker.close()
    assert await job.status() == JobStatus.complete
    result = await job.result(timeout=5)
    assert result["note"] == "ping" and result["database"] is True
    assert result["pool_pid"] != os.getpid() and result["pool_pid"] != result["worker_pid"]
    assert worker.jobs_complete == 1 and worker.jobs_failed == 0
