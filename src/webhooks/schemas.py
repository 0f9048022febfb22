from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventName = Literal["dataset.ready", "dataset.failed", "dataset.needs_review"]
ALL_EVENTS: list[EventName] = ["dataset.ready", "dataset.failed", "dataset.needs_review"]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000, description="http(s) URL on a public address")
    events: list[EventName] = Field(default_factory=lambda: list(ALL_EVENTS), min_length=1, max_length=3)
    description: str = Field("", max_length=200)


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    events: list[str]
    description: str
    active: bool
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(description="the HMAC-SHA256 key of X-Forge-Signature: shown this once")


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
