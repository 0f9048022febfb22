"""Quotas: what a user may use, and the checks the video and dataset services call inside
their own transaction. What a user uses now is summed by the domains that own the figures
(videos and datasets sit above quotas): the checks are handed that sum, a `UsageOf`
(`datasets.service.usage`, which sees both; the domains below datasets get it from the host:
`app.state.usage`, set by src.main.create_app, and the worker's `ctx["usage"]`).

Every check first locks the user's row (`lock_user`) and only then sums the usage, so the
check and the insert that follows it are serialised per user: 20 concurrent uploads against
a limit of 5 admit 5.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from src.quotas.exceptions import QuotaExceeded
from src.quotas.models import QUOTA_FIELDS, QuotaDefault, UserQuota
from src.units import human_bytes, human_duration  # noqa: F401 - the quota messages' words, re-exported

ASK_ADMIN = "ask an administrator for more"


@dataclass
class Quota:
    max_storage_bytes: int
    max_videos: int
    max_video_duration_s: float
    max_video_bytes: int
    frames_per_month: int
    concurrent_jobs: int


@dataclass
class Usage:
    storage_bytes: int
    videos: int
    frames_this_month: int
    running_jobs: int


class UsageOf(Protocol):
    async def __call__(self, session: AsyncSession, *, user_id: uuid.UUID) -> Usage:
        """What the user uses now, summed from the tables of the domains that own the figures."""


# Used until an admin saves the defaults (the migration writes the same row).
BUILT_IN_DEFAULTS = Quota(
    max_storage_bytes=10_000_000_000,
    max_videos=50,
    max_video_duration_s=3600.0,
    max_video_bytes=2_000_000_000,
    frames_per_month=100_000,
    concurrent_jobs=2,
)


# --- reading -------------------------------------------------------------------------

async def defaults(session: AsyncSession) -> Quota:
    row = await session.get(QuotaDefault, 1)
    if row is None:
        return Quota(**asdict(BUILT_IN_DEFAULTS))
    return Quota(**{name: getattr(row, name) for name in QUOTA_FIELDS})


async def overrides(session: AsyncSession, *, user_id: uuid.UUID) -> dict[str, int | float | None]:
    row = await session.get(UserQuota, user_id)
    return {name: getattr(row, name) if row else None for name in QUOTA_FIELDS}


async def effective_quota(session: AsyncSession, *, user_id: uuid.UUID) -> Quota:
    quota = await defaults(session)
    for name, value in (await overrides(session, user_id=user_id)).items():
        if value is not None:
            setattr(quota, name, value)
    return quota


def month_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


# --- changing (admin) ------------------------------------------------------------------

async def update_defaults(session: AsyncSession, *, changes: dict) -> Quota:
    row = await session.get(QuotaDefault, 1, with_for_update=True)
    if row is None:
        row = QuotaDefault(id=1, **asdict(BUILT_IN_DEFAULTS))
        session.add(row)
    for name, value in changes.items():
        if name in QUOTA_FIELDS and value is not None:
            setattr(row, name, value)
    await session.flush()
    return await defaults(session)


async def set_overrides(session: AsyncSession, *, user_id: uuid.UUID, changes: dict) -> dict:
    """Set (value) or clear (None) the user's overrides named in `changes`."""
    row = await session.get(UserQuota, user_id, with_for_update=True)
    if row is None:
        row = UserQuota(user_id=user_id)
        session.add(row)
    for name, value in changes.items():
        if name in QUOTA_FIELDS:
            setattr(row, name, value)
    await session.flush()
    return await overrides(session, user_id=user_id)


# --- checks (called by the video and dataset services) ---------------------------------

async def lock_user(session: AsyncSession, *, user_id: uuid.UUID) -> None:
    """Serialise every quota and balance check of one user within the caller's transaction."""
    await session.execute(text('SELECT id FROM "user" WHERE id = :id FOR UPDATE'), {"id": user_id})


async def upload_byte_limit(session: AsyncSession, *, user_id: uuid.UUID, usage: UsageOf) -> int:
    """How many bytes an upload may have right now (no lock: only to cut a stream early)."""
    quota = await effective_quota(session, user_id=user_id)
    used = await usage(session, user_id=user_id)
    return max(0, min(quota.max_video_bytes, quota.max_storage_bytes - used.storage_bytes))


async def check_new_video(
    session: AsyncSession, *, user_id: uuid.UUID, size_bytes: int, duration_s: float, usage: UsageOf
) -> None:
    await lock_user(session, user_id=user_id)
    quota = await effective_quota(session, user_id=user_id)
    used = await usage(session, user_id=user_id)
    if used.videos + 1 > quota.max_videos:
        raise QuotaExceeded(
            f"Video quota reached: {used.videos} of {quota.max_videos} videos; delete a video or {ASK_ADMIN}.",
            quota="max_videos",
        )
    if size_bytes > quota.max_video_bytes:
        raise QuotaExceeded(
            f"Video too large: {human_bytes(size_bytes)}; the limit per video is {human_bytes(quota.max_video_bytes)}. "
            f"Upload a smaller file or {ASK_ADMIN}.",
            quota="max_video_bytes", status_code=413,
        )
    if duration_s > quota.max_video_duration_s:
        raise QuotaExceeded(
            f"Video too long: {human_duration(duration_s)}; the limit is {human_duration(quota.max_video_duration_s)}. "
            f"Trim the video or {ASK_ADMIN}.",
            quota="max_video_duration_s",
        )
    if used.storage_bytes + size_bytes > quota.max_storage_bytes:
        raise QuotaExceeded(
            f"Storage quota reached: {human_bytes(used.storage_bytes)} of {human_bytes(quota.max_storage_bytes)} used "
            f"and this video needs {human_bytes(size_bytes)}; delete videos or {ASK_ADMIN}.",
            quota="max_storage_bytes", status_code=413,
        )


async def check_dataset_confirm(session: AsyncSession, *, user_id: uuid.UUID, frames: int, usage: UsageOf) -> None:
    await lock_user(session, user_id=user_id)
    quota = await effective_quota(session, user_id=user_id)
    used = await usage(session, user_id=user_id)
    if used.frames_this_month + frames > quota.frames_per_month:
        raise QuotaExceeded(
            f"Monthly frame quota reached: {used.frames_this_month:,} of {quota.frames_per_month:,} frames used "
            f"this month and this dataset needs {frames:,}; choose fewer frames, wait for next month or {ASK_ADMIN}.",
            quota="frames_per_month",
        )
    if used.running_jobs + 1 > quota.concurrent_jobs:
        raise QuotaExceeded(
            f"Concurrent job limit reached: {used.running_jobs} of {quota.concurrent_jobs} jobs running; "
            f"wait for one to finish or {ASK_ADMIN}.",
            quota="concurrent_jobs",
        )
    if used.storage_bytes >= quota.max_storage_bytes:
        raise QuotaExceeded(
            f"Storage quota reached: {human_bytes(used.storage_bytes)} of {human_bytes(quota.max_storage_bytes)} used; "
            f"delete videos or datasets or {ASK_ADMIN}.",
            quota="max_storage_bytes",
        )
