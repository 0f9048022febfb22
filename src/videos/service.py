"""Videos: upload (streamed), URL import, probing, frames, listing and deletion.

Files live in storage under `videos/<id>/` (source, thumb.jpg); the uploaded name is only
a display name. Quotas (src.quotas) are checked before the body is read (Content-Length),
while it streams (byte limit), and in the transaction that inserts the row (count,
duration, storage) under a per-user lock. Two things come from the domains above, as
videos never import datasets: the usage the checks count (videos and datasets, a
`quotas.service.UsageOf`: `app.state.usage`, the worker's `ctx["usage"]`) and the datasets'
say in a delete (`src.videos.ports`).
"""

from __future__ import annotations

import asyncio
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import Request
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from src import pagination
from src.auth.models import Role, User
from src.database import on_commit, utcnow
from src.pagination import PageParams
from src.quotas import service as quota_service
from src.quotas.service import UsageOf
from src.storage import get_storage
from src.videos.exceptions import InvalidVideo, VideoNotFound
from src.videos.models import Video, VideoStatus
from src.videos.ports import BeforeDelete
from src.videos.upload import receive_file
from src.vision.types import VideoInfo

# OpenCV (src.vision.video, cv2) is imported where a file is decoded, not at import: the
# web process loads it on its first upload or frame, not at start.

THUMB_WIDTH = 320
JPEG_QUALITY = 90


def source_key(video_id: uuid.UUID) -> str:
    return f"videos/{video_id}/source"


def thumb_key(video_id: uuid.UUID) -> str:
    return f"videos/{video_id}/thumb.jpg"


def display_name(raw: str | None) -> str:
    """A safe display name from what the user sent: path parts and control characters dropped."""
    name = (raw or "").replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C")
    name = name.strip().strip(".") or "video"
    return name[:255]


MAX_FPS = 240.0  # above this a frame rate is a broken or hostile header, not a camera
MAX_ASPECT = 8.0  # longer side / shorter side (a 32:9 super-wide screen is 3.6)


def check_sanity(info: VideoInfo) -> None:
    """InvalidVideo for what decodes but is no video to annotate: absurd frame rates and
    extreme aspect ratios (each with its own message)."""
    if info.fps > MAX_FPS:
        raise InvalidVideo(f"The frame rate is {info.fps:g} fps; videos up to {MAX_FPS:g} fps are accepted "
                           "(a higher rate is a broken header or a slow-motion file: convert it first).")
    long_side, short_side = max(info.width, info.height), min(info.width, info.height)
    if short_side <= 0 or long_side / short_side > MAX_ASPECT:
        raise InvalidVideo(f"The picture is {info.width}x{info.height}, an aspect ratio of "
                           f"{long_side / max(short_side, 1):.0f}:1; at most {MAX_ASPECT:g}:1 is accepted.")


def probe_file(path: Path) -> VideoInfo:
    """Decode-probe a file and check it is sane; InvalidVideo with a message that does not leak
    server paths."""
    from src.vision.video import VideoProbeError, probe

    try:
        info = probe(path)
    except VideoProbeError as error:
        raise InvalidVideo(str(error).removeprefix(f"{path}: ").capitalize()) from error
    check_sanity(info)
    return info


def encode_jpeg(frame, quality: int = JPEG_QUALITY) -> bytes:
    import cv2

    ok, buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buffer.tobytes()


def _write_thumbnail(video_path: Path, thumb_path: Path) -> None:
    from src.vision.video import read_frame

    thumb_path.write_bytes(encode_jpeg(read_frame(video_path, 0, width=THUMB_WIDTH), 80))


def apply_probe(video: Video, info: VideoInfo) -> None:
    video.container, video.codec = info.container, info.codec
    video.width, video.height, video.fps = info.width, info.height, info.fps
    video.frame_count, video.duration_s = info.frames, info.duration_s


def stored_probe(video: Video) -> VideoInfo | None:
    """What ``apply_probe`` stored, back as a VideoInfo (None while the video has none, e.g.
    an import still running)."""
    if not (video.frame_count and video.fps and video.width and video.height):
        return None
    return VideoInfo(frames=video.frame_count, fps=video.fps, width=video.width, height=video.height,
                     codec=video.codec or "", container=video.container or "",
                     duration_s=video.duration_s or video.frame_count / video.fps)


async def store_probed_file(
    session: AsyncSession, *, video: Video, path: Path, info: VideoInfo, size: int, usage: UsageOf
) -> Video:
    """Quota check under the user lock, then move the file into place and mark the video ready."""
    await quota_service.check_new_video(
        session, user_id=video.owner_id, size_bytes=size, duration_s=info.duration_s, usage=usage)
    storage = get_storage()
    apply_probe(video, info)
    video.size_bytes = size
    video.storage_key = source_key(video.id)
    video.status, video.ready_at, video.error = VideoStatus.ready, utcnow(), None
    session.add(video)
    await session.flush()
    thumb = storage.temp_file(".jpg")
    try:
        await asyncio.to_thread(_write_thumbnail, path, thumb)  # from the local copy, before it moves
        # Into the store (an upload in parts when it is S3), off the event loop.
        await asyncio.to_thread(storage.put_file, video.storage_key, path)
        await asyncio.to_thread(storage.put_file, thumb_key(video.id), thumb)
    finally:
        thumb.unlink(missing_ok=True)
    return video


async def upload(session: AsyncSession, request: Request, *, user: User, usage: UsageOf) -> Video:
    """Stream the request's `file` to disk, probe it, check quotas, store it. Nothing is kept on error."""
    storage = get_storage()
    limit = await quota_service.upload_byte_limit(session, user_id=user.id, usage=usage)
    temp = storage.temp_file()
    video_id = uuid.uuid4()
    try:
        received = await receive_file(request, temp, limit=limit)
        info = await asyncio.to_thread(probe_file, temp)
        video = Video(id=video_id, owner_id=user.id, display_name=display_name(received.filename))
        return await store_probed_file(session, video=video, path=temp, info=info, size=received.size, usage=usage)
    except BaseException:
        temp.unlink(missing_ok=True)
        storage.delete_prefix(f"videos/{video_id}")
        raise


async def get_for_user(session: AsyncSession, *, video_id: uuid.UUID, user: User) -> Video:
    video = await session.get(Video, video_id)
    if video is None or (video.owner_id != user.id and user.role != Role.admin):
        raise VideoNotFound()
    return video


async def get_or_raise(session: AsyncSession, *, video_id: uuid.UUID) -> Video:
    """The video whatever its owner: for callers that have authorised access another way
    (a reviewer reading the frames of a job dealt to them)."""
    video = await session.get(Video, video_id)
    if video is None or video.storage_key is None:
        raise VideoNotFound()
    return video


async def get_ready_for_user(session: AsyncSession, *, video_id: uuid.UUID, user: User) -> Video:
    video = await get_for_user(session, video_id=video_id, user=user)
    if video.status != VideoStatus.ready:
        raise VideoNotFound()
    return video


@dataclass(frozen=True)
class VideoUsage:
    """A user's videos as the quotas count them."""

    size_bytes: int  # of every video, failed ones included
    count: int  # of the videos not failed


async def usage(session: AsyncSession, *, user_id: uuid.UUID) -> VideoUsage:
    """The videos' part of the user's quota usage (the whole: datasets.service.usage)."""
    size_bytes, count = (await session.execute(
        select(func.coalesce(func.sum(Video.size_bytes), 0), func.count().filter(Video.status != VideoStatus.failed))
        .where(Video.owner_id == user_id)
    )).one()
    return VideoUsage(size_bytes=int(size_bytes), count=count)


async def list_for_owner(session: AsyncSession, *, user: User) -> list[Video]:
    query = select(Video).where(Video.owner_id == user.id).order_by(Video.created_at.desc())
    return list((await session.scalars(query)).all())


async def search_for_owner(
    session: AsyncSession, *, user: User, page: PageParams, status: VideoStatus | None = None, q: str | None = None,
) -> tuple[list[Video], int]:
    """A page of the owner's videos (newest first), by status and part of the name; and the total."""
    query = select(Video).where(Video.owner_id == user.id)
    if status is not None:
        query = query.where(Video.status == status)
    if q:
        query = query.where(pagination.contains(Video.display_name, q))
    return await pagination.fetch(session, query.order_by(Video.created_at.desc(), Video.id), page)


async def frame_jpeg(video: Video, *, n: int, width: int | None) -> bytes:
    """Frame n (0-based, exact) as JPEG, optionally scaled to `width` px."""
    if video.frame_count is None or not 0 <= n < video.frame_count:
        raise VideoNotFound()
    if width is not None and not 16 <= width <= 8192:
        raise InvalidVideo("width must be between 16 and 8192 pixels.")
    key = video.storage_key

    def work() -> bytes:
        from src.vision.video import read_frame

        path = get_storage().local_path(key)  # a remote store: this machine's cached copy
        return encode_jpeg(read_frame(path, n, width=width if width and width < video.width else None))

    try:
        return await asyncio.to_thread(work)
    except IndexError as error:
        raise VideoNotFound() from error


async def delete(session: AsyncSession, *, video: Video, before_delete: BeforeDelete) -> list[str]:
    """Delete a video with its drafts and datasets; `before_delete` (the datasets' say:
    datasets.service.before_video_delete) refuses while a dataset job runs.

    Returns the storage prefixes to remove once the transaction has committed."""
    dataset_prefixes = await before_delete(session, video_id=video.id)
    await session.delete(video)
    await session.flush()
    return [f"videos/{video.id}", *dataset_prefixes]


def delete_files(prefixes: list[str]) -> None:
    storage = get_storage()
    for prefix in prefixes:
        storage.delete_prefix(prefix)


async def request_import(
    session: AsyncSession, redis, *, user: User, url: str, name: str | None, usage: UsageOf
) -> Video:
    """Create an `importing` video and enqueue its download (job id `import:<video_id>`; if
    the enqueue never happens, Redis being down, the stale-import sweep starts it)."""
    from src.videos.url_import import check_url

    await check_url(url)
    await quota_service.check_new_video(session, user_id=user.id, size_bytes=0, duration_s=0.0, usage=usage)
    fallback = url.rstrip("/").split("/")[-1].split("?")[0]
    video = Video(
        owner_id=user.id, display_name=display_name(name or fallback), status=VideoStatus.importing, source_url=url
    )
    session.add(video)
    await session.flush()
    on_commit(session, lambda: redis.enqueue_job("import_video", str(video.id), _job_id=import_job_id(video.id, 0)))
    return video


STALE_IMPORT_MESSAGE = ("The import stopped several times (the worker, the database or the job queue went away "
                        "while it ran). Nothing was charged; import the link again.")


def import_job_id(video_id: uuid.UUID, attempt: int) -> str:
    """The arq job id of an import's try (`import:<id>`, then `import:<id>:<attempt>`)."""
    return f"import:{video_id}" if attempt == 0 else f"import:{video_id}:{attempt}"


async def stale_imports(session: AsyncSession, *, cutoff: datetime) -> list[Video]:
    """Imports with no heartbeat since `cutoff` (or none at all, created before it), locked;
    rows another sweep holds are skipped."""
    query = select(Video).where(
        Video.status == VideoStatus.importing,
        or_(Video.heartbeat_at < cutoff, Video.heartbeat_at.is_(None) & (Video.created_at < cutoff)),
    ).with_for_update(skip_locked=True)
    return list((await session.scalars(query)).all())


def retry_or_fail_import(video: Video, *, max_tries: int) -> int | None:
    """A stale import's next try (its attempt number), or None once it has had `max_tries`:
    then it is failed with a message."""
    if video.import_attempts + 1 >= max_tries:
        video.status, video.error = VideoStatus.failed, STALE_IMPORT_MESSAGE
        return None
    video.import_attempts += 1
    video.heartbeat_at = utcnow()  # give the new try time to start
    return video.import_attempts
