"""Rows for quota and billing tests, written straight to the database."""

from __future__ import annotations

import uuid
from datetime import datetime

from src.database import unit_of_work, utcnow
from src.datasets.models import Dataset, DatasetState
from src.videos.models import Video, VideoStatus
from tests.conftest import register


async def new_user(client, email: str) -> uuid.UUID:
    return uuid.UUID((await register(client, email))["id"])


async def add_video(app, owner_id: uuid.UUID, *, size_bytes: int = 0, status: VideoStatus = VideoStatus.ready) -> uuid.UUID:
    async with unit_of_work(app.state.sessionmaker) as session:
        video = Video(owner_id=owner_id, display_name="clip.mp4", status=status, size_bytes=size_bytes, duration_s=10.0)
        session.add(video)
        await session.flush()
        return video.id


async def add_dataset(
    app,
    owner_id: uuid.UUID,
    *,
    state: DatasetState = DatasetState.draft,
    size_bytes: int = 0,
    quote_frames: int | None = None,
    delivered_frames: int | None = None,
    confirmed_at: datetime | None = None,
) -> uuid.UUID:
    video_id = await add_video(app, owner_id)
    async with unit_of_work(app.state.sessionmaker) as session:
        dataset = Dataset(
            owner_id=owner_id, video_id=video_id, name="set", state=state, size_bytes=size_bytes,
            quote={"frames": quote_frames} if quote_frames is not None else None,
            delivered_frames=delivered_frames,
            confirmed_at=confirmed_at or (utcnow() if state != DatasetState.draft else None),
        )
        session.add(dataset)
        await session.flush()
        return dataset.id
