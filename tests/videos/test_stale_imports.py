"""Imports never stay `importing` for ever: an import whose job was lost (Redis dropped its
queue) or whose worker died mid-download is started again by the stale-import sweep and
finishes; after JOB_MAX_TRIES tries it is failed with a message; a live import (fresh
heartbeat) is left alone. Real HTTP server, real database and Redis, real burst worker."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
import uuid
from datetime import timedelta
from functools import partial

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from src.config import get_settings
from src.database import utcnow
from src.videos import service
from src.videos.tasks import import_video, requeue_stale_imports
from tests.conftest import SHARED_DATA
from tests.test_worker import burst_worker

VIDEO = "otb_crossing/video.mp4"


class SlowHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files in small pieces, `delay` seconds apart (0: at once)."""

    delay = 0.0

    def copyfile(self, source, outputfile):
        while chunk := source.read(4096):
            outputfile.write(chunk)
            outputfile.flush()
            time.sleep(type(self).delay)

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server():
    handler = type("Handler", (SlowHandler,), {"delay": 0.0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(SHARED_DATA / "sequences")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


@pytest.fixture
def fast_staleness(monkeypatch):
    """One second without a heartbeat is stale (the default is minutes); local links allowed."""
    monkeypatch.setattr(get_settings(), "job_stale_seconds", 1)
    monkeypatch.setattr(get_settings(), "url_import_allowed_hosts", "127.0.0.1")


def _ctx(app) -> dict:
    return {"sessionmaker": app.state.sessionmaker, "redis": app.state.redis, "usage": app.state.usage}


async def _row(app, video_id: str) -> dict:
    async with app.state.engine.connect() as conn:
        row = (await conn.execute(text("SELECT status, error, import_attempts, heartbeat_at FROM video WHERE id = :id"),
                                  {"id": uuid.UUID(video_id)})).mappings().one()
    return dict(row)


async def _run_worker(redis_url: str) -> None:
    worker = burst_worker(redis_url)
    try:
        await worker.main()
    finally:
        await worker.close()


async def _lose_the_queue(redis_url: str) -> None:
    """Redis came back without its data (or was down when the job was enqueued)."""
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    await redis.aclose()


async def test_import_whose_job_was_lost_is_started_again(app, user_client, slow_server, fast_staleness, services):
    base, _ = slow_server
    response = await user_client.post("/api/v1/videos/import", json={"url": f"{base}/{VIDEO}"})
    assert response.status_code == 202, response.text
    video_id = response.json()["id"]
    await _lose_the_queue(services[1])
    await _run_worker(services[1])  # nothing to run: without the sweep it stays importing for ever
    assert (await _row(app, video_id))["status"] == "importing"

    await asyncio.sleep(1.2)
    assert await requeue_stale_imports(_ctx(app)) == 1
    assert (await _row(app, video_id))["import_attempts"] == 1
    assert await requeue_stale_imports(_ctx(app)) == 0  # queued again: not stale any more
    await _run_worker(services[1])

    done = (await user_client.get(f"/api/v1/videos/{video_id}")).json()
    assert done["status"] == "ready" and done["frame_count"] > 0, done
    # the first try, if its job turned up now, leaves the finished import alone
    assert await import_video(_ctx(app), video_id, 0) == "skipped"
    await asyncio.sleep(1.2)
    assert await requeue_stale_imports(_ctx(app)) == 0  # ready imports are never swept


async def test_worker_dying_mid_download_is_retried_and_finishes(app, user_client, slow_server, fast_staleness, services):
    base, handler = slow_server
    handler.delay = 0.1  # about 3 s for the whole file
    response = await user_client.post("/api/v1/videos/import", json={"url": f"{base}/{VIDEO}"})
    video_id = response.json()["id"]
    await _lose_the_queue(services[1])  # as if a worker had taken the job off the queue

    running = asyncio.create_task(import_video(_ctx(app), video_id, 0))  # the worker's job
    await asyncio.sleep(0.5)
    first_beat = (await _row(app, video_id))["heartbeat_at"]
    await asyncio.sleep(1.5)  # longer than the stale period: a live import keeps beating
    assert (await _row(app, video_id))["heartbeat_at"] > first_beat
    assert await requeue_stale_imports(_ctx(app)) == 0
    assert not running.done()

    running.cancel()  # the worker dies in the middle of the download
    with pytest.raises(asyncio.CancelledError):
        await running
    assert (await _row(app, video_id))["status"] == "importing"

    handler.delay = 0.0
    await asyncio.sleep(1.2)
    assert await requeue_stale_imports(_ctx(app)) == 1
    await _run_worker(services[1])
    done = (await user_client.get(f"/api/v1/videos/{video_id}")).json()
    assert done["status"] == "ready", done
    assert (await _row(app, video_id))["import_attempts"] == 1


async def test_import_stale_too_often_is_failed_with_a_message(app, user_client, slow_server, fast_staleness, services):
    base, _ = slow_server
    response = await user_client.post("/api/v1/videos/import", json={"url": f"{base}/{VIDEO}"})
    video_id = response.json()["id"]
    await _lose_the_queue(services[1])
    last_try = get_settings().job_max_tries - 1
    async with app.state.engine.begin() as conn:
        await conn.execute(text("UPDATE video SET import_attempts = :n, heartbeat_at = :t WHERE id = :id"),
                           {"n": last_try, "t": utcnow() - timedelta(seconds=5), "id": uuid.UUID(video_id)})

    assert await requeue_stale_imports(_ctx(app)) == 0
    video = (await user_client.get(f"/api/v1/videos/{video_id}")).json()
    assert video["status"] == "failed", video
    assert video["error"] == service.STALE_IMPORT_MESSAGE
    page = await user_client.get("/videos", headers={"Accept": "text/html"})
    assert "The import stopped several times" in page.text


async def test_queued_import_is_not_taken_for_stale(app, user_client, slow_server, fast_staleness, services):
    """A job still waiting in the queue (a busy worker) is not duplicated."""
    base, _ = slow_server
    response = await user_client.post("/api/v1/videos/import", json={"url": f"{base}/{VIDEO}"})
    video_id = response.json()["id"]
    await asyncio.sleep(1.2)
    assert await requeue_stale_imports(_ctx(app)) == 0
    assert (await _row(app, video_id))["import_attempts"] == 0
    await _run_worker(services[1])
    assert (await _row(app, video_id))["status"] == "ready"
