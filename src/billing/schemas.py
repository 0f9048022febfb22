from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from src.billing.models import LedgerKind


class PriceListRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    per_frame_cents: int
    per_object_frame_cents: int
    per_reviewed_frame_cents: int
    minimum_cents: int
    currency: str
    created_at: datetime


class LedgerEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    kind: LedgerKind
    amount_cents: int
    balance_after_cents: int
    dataset_id: uuid.UUID | None
    reason: str | None


class LedgerPage(BaseModel):
    items: list[LedgerEntryRead]
    balance_cents: int
    page: int
    per_page: int


class BalanceRead(BaseModel):
    balance_cents: int
    currency: str
