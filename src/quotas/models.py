"""Quotas: the defaults for every user and each user's overrides.

A `user_quota` column left NULL follows the current default, so raising a default raises
it for everyone without an override. Usage is never stored: it is summed from the
video and dataset tables when needed (src.quotas.service.usage).
"""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, CheckConstraint, Float, ForeignKey, Integer, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from src.database import Base, CreatedAtMixin

QUOTA_FIELDS = (
    "max_storage_bytes", "max_videos", "max_video_duration_s", "max_video_bytes", "frames_per_month", "concurrent_jobs",
)


class QuotaDefault(CreatedAtMixin, Base):
    """One row (id = 1): the quotas of users without an override."""

    __tablename__ = "quota_default"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    max_storage_bytes: Mapped[int] = mapped_column(BigInteger)
    max_videos: Mapped[int] = mapped_column(Integer)
    max_video_duration_s: Mapped[float] = mapped_column(Float)
    max_video_bytes: Mapped[int] = mapped_column(BigInteger)
    frames_per_month: Mapped[int] = mapped_column(BigInteger)
    concurrent_jobs: Mapped[int] = mapped_column(Integer)


class UserQuota(CreatedAtMixin, Base):
    """One user's overrides; NULL means "the default"."""

    __tablename__ = "user_quota"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    max_storage_bytes: Mapped[int | None] = mapped_column(BigInteger)
    max_videos: Mapped[int | None] = mapped_column(Integer)
    max_video_duration_s: Mapped[float | None] = mapped_column(Float)
    max_video_bytes: Mapped[int | None] = mapped_column(BigInteger)
    frames_per_month: Mapped[int | None] = mapped_column(BigInteger)
    concurrent_jobs: Mapped[int | None] = mapped_column(Integer)
