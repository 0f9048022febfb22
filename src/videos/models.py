"""The `video` table: one uploaded or imported video, stored under an id-based path."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Enum, Float, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from src.database import Base, CreatedAtMixin


class VideoStatus(StrEnum):
    importing = "importing"  # URL import running
    ready = "ready"
    failed = "failed"  # URL import failed (message in `error`)


class Video(CreatedAtMixin, Base):
    __tablename__ = "video"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(255))
    status: Mapped[VideoStatus] = mapped_column(
        Enum(VideoStatus, name="video_status", native_enum=False, length=16), default=VideoStatus.ready
    )
    source_url: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    import_progress: Mapped[float] = mapped_column(Float, default=0.0)
    # URL import: the worker's last sign of life and the retries made so far (src/videos/tasks.py)
    heartbeat_at: Mapped[datetime | None]
    import_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    storage_key: Mapped[str | None] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    container: Mapped[str | None] = mapped_column(String(64))
    codec: Mapped[str | None] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    fps: Mapped[float | None] = mapped_column(Float)
    frame_count: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column(Float)
    ready_at: Mapped[datetime | None]
