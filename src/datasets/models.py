"""The `dataset` table: a draft on a video, then a priced job, then delivered files."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from src.database import Base, CreatedAtMixin


class DatasetState(StrEnum):
    draft = "draft"
    queued = "queued"
    propagating = "propagating"
    in_review = "in_review"
    building = "building"
    ready = "ready"
    failed = "failed"
    cancelled = "cancelled"


ACTIVE_STATES = (DatasetState.queued, DatasetState.propagating, DatasetState.in_review, DatasetState.building)


class Dataset(CreatedAtMixin, Base):
    __tablename__ = "dataset"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    video_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("video.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[DatasetState] = mapped_column(
        Enum(DatasetState, name="dataset_state", native_enum=False, length=16), default=DatasetState.draft, index=True
    )
    # Creation options (sampling, split, formats, review budget, review backend), see datasets.schemas.
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The confirmed quote (itemised, with the price-list version it was made with).
    quote: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    quoted_cents: Mapped[int | None] = mapped_column(BigInteger)
    charged_cents: Mapped[int | None] = mapped_column(BigInteger)
    delivered_frames: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # {"stage", "percent", "frames_done", "frames_total", "eta_s"}; survives restarts.
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(120))
    # Ownership of the job (src/datasets/tasks.py): the arq job id entitled to run it, and the
    # token of the run that holds it now. A run whose token is no longer this one stops.
    run_job_id: Mapped[str | None] = mapped_column(String(120))
    run_token: Mapped[str | None] = mapped_column(String(32))
    heartbeat_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
