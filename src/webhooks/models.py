"""Outgoing webhooks: the URLs users register, and every delivery of an event to one."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from src.database import Base, CreatedAtMixin


class WebhookEvent(StrEnum):
    dataset_ready = "dataset.ready"
    dataset_failed = "dataset.failed"
    dataset_needs_review = "dataset.needs_review"
    ping = "ping"  # sent by POST /api/v1/webhooks/{id}/ping only


class DeliveryState(StrEnum):
    pending = "pending"  # not sent yet, or waiting for its next try
    delivered = "delivered"  # the receiver answered 2xx
    failed = "failed"  # every try failed, or the URL is no longer allowed


class Webhook(CreatedAtMixin, Base):
    __tablename__ = "webhook"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    # The HMAC-SHA256 key of the signatures; kept (it signs every delivery), shown once.
    secret: Mapped[str] = mapped_column(String(64))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class WebhookDelivery(CreatedAtMixin, Base):
    __tablename__ = "webhook_delivery"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    webhook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    # The JSON body sent, byte for byte the same on every try (its signature covers it).
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[DeliveryState] = mapped_column(
        Enum(DeliveryState, name="delivery_state", native_enum=False, length=16), default=DeliveryState.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
