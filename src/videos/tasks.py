"""arq jobs of the videos domain: import by URL, and the sweep that restarts stale imports.

An import beats a heartbeat (`video.heartbeat_at`) while it runs. When its worker dies, or
PostgreSQL or Redis drop in the middle of it, the heartbeat stops; `requeue_stale_imports`
(every minute, and at worker start) starts a new try of each import silent for
JOB_STALE_SECONDS, up to JOB_MAX_TRIES tries, then fails it with a message. Each try has its
number (`video.import_attempts`): a try that is not the current one leaves the video alone.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from datetime import timedelta

from arq.jobs import Job, JobStatus
from sqlalchemy import update

from src import outages
from src.config import get_settings
from src.database import on_commit, unit_of_work, utcnow
from src.exceptions import DomainError
from src.quotas import service as quota_service
from src.storage import get_storage
from src.videos import service
from src.videos.models import Video, VideoStatus
from src.videos.url_import import check_page_import, download, download_with_ytdlp
from src.jobs import job_session, repeating, run_cpu

log = logging.getLogger("forge.videos")


def heartbeat_interval_s() -> float:
    """A few beats per stale period, so one missed write never makes a live import stale."""
    return max(0.2, min(30.0, get_settings().job_stale_seconds / 5))


async def _current(session, video_id: uuid.UUID, attempt: int) -> Video | None:
    """The video, locked, if it is still importing and this try is the current one."""
    video = await session.get(Video, video_id, with_for_update=True, populate_existing=True)
    if video is None or video.status != VideoStatus.importing or video.import_attempts != attempt:
        return None
    return video


async def _mark_failed(ctx: dict, video_id: uuid.UUID, attempt: int, message: str) -> None:
    async with job_session(ctx) as session:
        video = await _current(session, video_id, attempt)
        if video is not None:
            video.status, video.error = VideoStatus.failed, message


async def _beat(ctx: dict, video_id: uuid.UUID, attempt: int) -> bool:
    """Refresh the heartbeat; False once this try is no longer the current one."""
    async with unit_of_work(ctx["sessionmaker"]) as session:
        result = await session.execute(
            update(Video).where(Video.id == video_id, Video.status == VideoStatus.importing,
                                Video.import_attempts == attempt).values(heartbeat_at=utcnow()))
        return result.rowcount > 0


async def import_video(ctx: dict, video_id: str, attempt: int = 0) -> str:
    """Download, probe and store an imported video; idempotent (a finished import, or one a
    later try has taken over, is left alone)."""
    vid = uuid.UUID(video_id)
    async with job_session(ctx) as session:
        video = await _current(session, vid, attempt)
        if video is None:
            return "skipped"
        video.heartbeat_at = utcnow()
        url, owner_id = video.source_url, video.owner_id
        limit = await quota_service.upload_byte_limit(session, user_id=owner_id, usage=ctx["usage"])

    storage = get_storage()
    temp = storage.temp_file()
    last = 0.0
    # a missed beat is logged and retried; the stale-import sweep judges a try gone silent
    beating = repeating(heartbeat_interval_s(), lambda: _beat(ctx, vid, attempt), f"heartbeat of import {vid}")

    async def progress(done: int, total: int | None) -> None:
        nonlocal last
        if total and time.monotonic() - last > 1.0:
            last = time.monotonic()
            async with unit_of_work(ctx["sessionmaker"]) as s:
                row = await s.get(Video, vid)
                if row is not None and row.import_attempts == attempt:
                    row.import_progress = round(done / total, 3)

    try:
        async with beating:
            content_type = await download(url, temp, limit=limit, progress=progress)
            if content_type == "text/html":
                check_page_import(url)
                await run_cpu(ctx, download_with_ytdlp, url, temp, limit=limit)
            info = await run_cpu(ctx, service.probe_file, temp)
            async with job_session(ctx) as session:
                video = await _current(session, vid, attempt)
                if video is None:
                    return "skipped"
                video.import_progress = 1.0
                await service.store_probed_file(session, video=video, path=temp, info=info,
                                                size=temp.stat().st_size, usage=ctx["usage"])
        return "ready"
    except DomainError as error:
        await _mark_failed(ctx, vid, attempt, error.message)
        return "failed"
    except Exception as error:  # noqa: BLE001 - any network error ends as a readable failure
        if unavailable := outages.outage_of(error):
            # Our own database or Redis went away, not the link: no "download failed" for the
            # user. The heartbeat stops with this try, and the stale-import sweep starts another.
            log.warning("import %s try %s stopped: %s unavailable (%s)", vid, attempt, unavailable, error)
            raise
        await _mark_failed(ctx, vid, attempt, f"The download failed ({error.__class__.__name__}). Check the link and try again.")
        return "failed"
    finally:
        temp.unlink(missing_ok=True)


async def requeue_stale_imports(ctx: dict) -> int:
    """Start a new try of each import silent for JOB_STALE_SECONDS (its worker died, or the
    database or Redis dropped during it, or its job was never enqueued); after JOB_MAX_TRIES
    tries, fail it with a message. An import whose job is still waiting in the queue is left
    to it. Returns how many tries were started."""
    settings = get_settings()
    cutoff = utcnow() - timedelta(seconds=settings.job_stale_seconds)
    requeued = 0
    async with job_session(ctx) as session:
        for video in await service.stale_imports(session, cutoff=cutoff):
            waiting = Job(service.import_job_id(video.id, video.import_attempts), ctx["redis"])
            if await waiting.status() in (JobStatus.queued, JobStatus.deferred):
                continue  # not started yet (a busy worker): not stale
            attempt = service.retry_or_fail_import(video, max_tries=settings.job_max_tries)
            if attempt is None:
                log.warning("import %s failed: stale after %s tries", video.id, video.import_attempts + 1)
                continue
            # after the commit: a job must find its try number written (if this enqueue fails,
            # the try is stale in its turn and the next sweep starts another)
            on_commit(session, functools.partial(ctx["redis"].enqueue_job, "import_video", str(video.id), attempt,
                                                 _job_id=service.import_job_id(video.id, attempt)))
            log.info("import %s: stale, try %s started", video.id, attempt + 1)
            requeued += 1
    return requeued
