from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, HttpUrl

from src.videos.models import VideoStatus


class VideoRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    display_name: str
    status: VideoStatus
    error: str | None
    import_progress: float
    source_url: str | None
    size_bytes: int
    container: str | None
    codec: str | None
    width: int | None
    height: int | None
    fps: float | None
    frame_count: int | None
    duration_s: float | None
    created_at: datetime
    ready_at: datetime | None


class VideoImport(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    url: HttpUrl
    name: str | None = None
