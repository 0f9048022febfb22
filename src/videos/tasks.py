"""arq jobs of the videos domain: import by URL."""

from __future__ import annotations

import time
import uuid

from src.database import unit_of_work
from src.exceptions import DomainError
from src.quotas import service as quota_service
from src.storage import get_storage
from src.videos import service
from src.videos.models import Video, VideoStatus
from src.videos.url_import import check_page_import, download, download_with_ytdlp
from src.jobs import job_session, run_cpu


async def _mark_failed(ctx: dict, video_id: uuid.UUID, message: str) -> None:
    async with job_session(ctx) as session:
        video = await session.get(Video, video_id)
        if video is not None:
            video.status, video.error = VideoStatus.failed, message


async def import_video(ctx: dict, video_id: str) -> str:
    """Download, probe and store an imported video; idempotent (a finished import is left alone)."""
    vid = uuid.UUID(video_id)
    async with job_session(ctx) as session:
        video = await session.get(Video, vid)
        if video is None or video.status != VideoStatus.importing:
            return "skipped"
        url, owner_id = video.source_url, video.owner_id
        limit = await quota_service.upload_byte_limit(session, user_id=owner_id)

    storage = get_storage()
    temp = storage.temp_file()
    last = 0.0

    async def progress(done: int, total: int | None) -> None:
        nonlocal last
        if total and time.monotonic() - last > 1.0:
            last = time.monotonic()
            async with unit_of_work(ctx["sessionmaker"]) as s:
                row = await s.get(Video, vid)
                if row is not None:
                    row.import_progress = round(done / total, 3)

    try:
        content_type = await download(url, temp, limit=limit, progress=progress)
        if content_type == "text/html":
            check_page_import(url)
            await run_cpu(ctx, download_with_ytdlp, url, temp, limit=limit)
        info = await run_cpu(ctx, service.probe_file, temp)
        async with job_session(ctx) as session:
            video = await session.get(Video, vid)
            video.import_progress = 1.0
            await service.store_probed_file(session, video=video, path=temp, info=info, size=temp.stat().st_size)
        return "ready"
    except DomainError as error:
        await _mark_failed(ctx, vid, error.message)
        return "failed"
    except Exception as error:  # noqa: BLE001 - any network error ends as a readable failure
        await _mark_failed(ctx, vid, f"The download failed ({error.__class__.__name__}). Check the link and try again.")
        return "failed"
    finally:
        temp.unlink(missing_ok=True)
