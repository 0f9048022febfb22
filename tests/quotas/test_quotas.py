"""Each quota refuses exactly at its limit, with a message naming it; usage is summed
from the video and dataset tables (datasets.service.usage, the checks' `usage`); concurrent
checks admit exactly the limit."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from src.database import unit_of_work
from src.datasets import service as dataset_service
from src.datasets.models import DatasetState
from src.quotas import service as quotas
from src.quotas.exceptions import QuotaExceeded
from src.videos.models import Video, VideoStatus
from tests.quotas.factories import add_dataset, add_video, new_user

GB = 1_000_000_000


async def set_quota(app, user_id, **values):
    async with unit_of_work(app.state.sessionmaker) as session:
        await quotas.set_overrides(session, user_id=user_id, changes=values)


async def check_video(app, user_id, *, size_bytes=1, duration_s=1.0):
    async with unit_of_work(app.state.sessionmaker) as session:
        await quotas.check_new_video(session, user_id=user_id, size_bytes=size_bytes, duration_s=duration_s,
                                     usage=dataset_service.usage)


async def check_confirm(app, user_id, *, frames):
    async with unit_of_work(app.state.sessionmaker) as session:
        await quotas.check_dataset_confirm(session, user_id=user_id, frames=frames, usage=dataset_service.usage)


async def test_usage_is_summed_from_the_tables(app, client):
    user_id = await new_user(client, "usage@example.com")
    await add_video(app, user_id, size_bytes=300)
    await add_video(app, user_id, size_bytes=50, status=VideoStatus.failed)
    await add_dataset(app, user_id, state=DatasetState.propagating, size_bytes=7, quote_frames=100)
    await add_dataset(app, user_id, state=DatasetState.ready, size_bytes=3, quote_frames=999, delivered_frames=40)
    await add_dataset(app, user_id, state=DatasetState.cancelled, quote_frames=1000)
    await add_dataset(app, user_id, state=DatasetState.ready, delivered_frames=500,
                      confirmed_at=quotas.month_start() - timedelta(seconds=1))  # last month
    async with unit_of_work(app.state.sessionmaker) as session:
        used = await dataset_service.usage(session, user_id=user_id)
    # every dataset brings its own (0-byte) video; failed videos are not counted
    assert used == quotas.Usage(storage_bytes=360, videos=5, frames_this_month=140, running_jobs=1)


async def test_video_count_quota(app, client):
    user_id = await new_user(client, "count@example.com")
    await set_quota(app, user_id, max_videos=2)
    await add_video(app, user_id)
    await check_video(app, user_id)  # 1 of 2: fine
    await add_video(app, user_id)
    with pytest.raises(QuotaExceeded, match=r"Video quota reached: 2 of 2 videos; delete a video or ask an administrator") as caught:
        await check_video(app, user_id)
    assert caught.value.status_code == 422 and caught.value.quota == "max_videos"


async def test_video_size_and_duration_quotas(app, client):
    user_id = await new_user(client, "size@example.com")
    await set_quota(app, user_id, max_video_bytes=2 * GB, max_video_duration_s=600)
    await check_video(app, user_id, size_bytes=2 * GB, duration_s=600)  # exactly at the limits
    with pytest.raises(QuotaExceeded, match="Video too large: 2 GB; the limit per video is 2 GB") as caught:
        await check_video(app, user_id, size_bytes=2 * GB + 1)
    assert caught.value.status_code == 413
    with pytest.raises(QuotaExceeded, match=r"Video too long: 10 min 1 s; the limit is 10 min\. Trim") as caught:
        await check_video(app, user_id, duration_s=601)
    assert caught.value.status_code == 422


async def test_storage_quota(app, client):
    user_id = await new_user(client, "storage@example.com")
    await set_quota(app, user_id, max_storage_bytes=2 * GB)
    await add_video(app, user_id, size_bytes=1_900_000_000)
    await check_video(app, user_id, size_bytes=100_000_000)  # exactly fills it
    with pytest.raises(QuotaExceeded, match=r"Storage quota reached: 1.9 GB of 2 GB used .*delete videos or ask an administrator for more") as caught:
        await check_video(app, user_id, size_bytes=100_000_001)
    assert caught.value.status_code == 413
    async with unit_of_work(app.state.sessionmaker) as session:
        assert await quotas.upload_byte_limit(session, user_id=user_id, usage=dataset_service.usage) == 100_000_000


async def test_frames_per_month_and_concurrent_jobs(app, client):
    user_id = await new_user(client, "frames@example.com")
    await set_quota(app, user_id, frames_per_month=1000, concurrent_jobs=1)
    await add_dataset(app, user_id, state=DatasetState.ready, delivered_frames=600)
    await check_confirm(app, user_id, frames=400)
    with pytest.raises(QuotaExceeded, match="Monthly frame quota reached: 600 of 1,000 frames used this month and this dataset needs 401"):
        await check_confirm(app, user_id, frames=401)
    await add_dataset(app, user_id, state=DatasetState.queued, quote_frames=100)
    with pytest.raises(QuotaExceeded, match="Concurrent job limit reached: 1 of 1 jobs running") as caught:
        await check_confirm(app, user_id, frames=1)
    assert caught.value.quota == "concurrent_jobs" and caught.value.status_code == 422


async def test_confirm_refused_when_storage_is_full(app, client):
    user_id = await new_user(client, "full@example.com")
    await set_quota(app, user_id, max_storage_bytes=1000)
    await add_video(app, user_id, size_bytes=1000)
    with pytest.raises(QuotaExceeded, match="Storage quota reached: 1 KB of 1 KB used"):
        await check_confirm(app, user_id, frames=1)


async def test_overrides_fall_back_to_defaults(app, client):
    user_id = await new_user(client, "defaults@example.com")
    async with unit_of_work(app.state.sessionmaker) as session:
        await quotas.update_defaults(session, changes={"max_videos": 7})
        await quotas.set_overrides(session, user_id=user_id, changes={"concurrent_jobs": 9})
        quota = await quotas.effective_quota(session, user_id=user_id)
    assert quota.max_videos == 7 and quota.concurrent_jobs == 9
    async with unit_of_work(app.state.sessionmaker) as session:
        await quotas.set_overrides(session, user_id=user_id, changes={"concurrent_jobs": None})
        assert (await quotas.effective_quota(session, user_id=user_id)).concurrent_jobs == quotas.BUILT_IN_DEFAULTS.concurrent_jobs


async def test_twenty_concurrent_uploads_admit_exactly_the_limit(app, client):
    user_id = await new_user(client, "race@example.com")
    await set_quota(app, user_id, max_videos=5)

    async def upload() -> bool:
        try:
            async with unit_of_work(app.state.sessionmaker) as session:
                await quotas.check_new_video(session, user_id=user_id, size_bytes=10, duration_s=1.0,
                                             usage=dataset_service.usage)
                await asyncio.sleep(0.01)  # widen the window between the check and the insert
                session.add(Video(owner_id=user_id, display_name="v", size_bytes=10))
            return True
        except QuotaExceeded:
            return False

    results = await asyncio.gather(*(upload() for _ in range(20)))
    assert sum(results) == 5
    async with unit_of_work(app.state.sessionmaker) as session:
        assert (await dataset_service.usage(session, user_id=user_id)).videos == 5
