from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from src.auth.models import Role
from src.quotas.schemas import QuotaDefaultsUpdate, QuotaRead, UserQuotaUpdate


class AdminUserRow(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    is_active: bool
    is_verified: bool
    created_at: datetime
    last_login_at: datetime | None
    cvat_username: str | None
    storage_bytes: int
    datasets: int
    balance_cents: int


class UserPage(BaseModel):
    items: list[AdminUserRow]
    total: int
    page: int
    per_page: int


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    """Only the fields sent change; `cvat_username: null` unlinks, a quota sent as null
    follows the default again."""

    role: Role | None = None
    is_active: bool | None = None
    cvat_username: str | None = Field(None, max_length=150)
    quotas: UserQuotaUpdate | None = None


class UserDetail(AdminUserRow):
    quota: QuotaRead
    quota_overrides: dict[str, int | float | None]
    usage: dict[str, int]


class BalanceChange(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    amount_cents: int = Field(..., description="positive: top-up; negative: adjustment (not below a zero balance)")
    reason: str = Field(..., min_length=1, max_length=500)

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason is required")
        return value.strip()


class BalanceRead(BaseModel):
    user_id: uuid.UUID
    balance_cents: int
    entry_id: int


class PricesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    per_frame_cents: int | None = Field(None, ge=0)
    per_object_frame_cents: int | None = Field(None, ge=0)
    per_reviewed_frame_cents: int | None = Field(None, ge=0)
    minimum_cents: int | None = Field(None, ge=0)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")


class DefaultsRead(QuotaRead):
    starting_balance_cents: int


class DefaultsUpdate(QuotaDefaultsUpdate):
    starting_balance_cents: int | None = Field(None, ge=0)


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    admin_id: uuid.UUID | None
    admin_email: str | None
    action: str
    target_user_id: uuid.UUID | None
    target_email: str | None
    target: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditRead]
    page: int
    per_page: int
