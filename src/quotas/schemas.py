from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class QuotaRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    max_storage_bytes: int
    max_videos: int
    max_video_duration_s: float
    max_video_bytes: int
    frames_per_month: int
    concurrent_jobs: int


class QuotaDefaultsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    """Every field is optional: only the fields sent change."""

    max_storage_bytes: int | None = Field(None, ge=0)
    max_videos: int | None = Field(None, ge=0)
    max_video_duration_s: float | None = Field(None, ge=0)
    max_video_bytes: int | None = Field(None, ge=0)
    frames_per_month: int | None = Field(None, ge=0)
    concurrent_jobs: int | None = Field(None, ge=0)


class UserQuotaUpdate(QuotaDefaultsUpdate):
    """A field sent as null clears the override (the user follows the default again)."""


class UsageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    storage_bytes: int
    videos: int
    frames_this_month: int
    running_jobs: int
