"""The audit log: `record` one row per admin action; `entries` reads it back, filtered;
`changes` says what an entry changed, field by field, in words."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from src.admin.models import AuditEntry
from src.auth.models import User
from src.units import human_bytes, human_duration, money


async def record(
    session: AsyncSession,
    *,
    admin_id: uuid.UUID,
    action: str,
    target_user_id: uuid.UUID | None = None,
    target: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        admin_id=admin_id, action=action, target_user_id=target_user_id, target=target, before=before, after=after
    )
    session.add(entry)
    await session.flush()
    return entry


async def entries(
    session: AsyncSession,
    *,
    admin_id: uuid.UUID | None = None,
    action: str | None = None,
    target_user_id: uuid.UUID | None = None,
    page: int = 1,
    per_page: int = 50,
) -> list[dict[str, Any]]:
    """Newest first, each with the admin's and the target's e-mail."""
    admin, target = aliased(User), aliased(User)
    query = (
        select(AuditEntry, admin.email.label("admin_email"), target.email.label("target_email"))
        .outerjoin(admin, admin.id == AuditEntry.admin_id)
        .outerjoin(target, target.id == AuditEntry.target_user_id)
        .order_by(AuditEntry.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    )
    if admin_id:
        query = query.where(AuditEntry.admin_id == admin_id)
    if action:
        query = query.where(AuditEntry.action == action)
    if target_user_id:
        query = query.where(AuditEntry.target_user_id == target_user_id)
    rows = []
    for entry, admin_email, target_email in await session.execute(query):
        row = {column.key: getattr(entry, column.key) for column in AuditEntry.__table__.columns}
        rows.append({**row, "admin_email": admin_email, "target_email": target_email})
    return rows


async def actions(session: AsyncSession) -> list[str]:
    query = select(AuditEntry.action).distinct().order_by(AuditEntry.action)
    return list((await session.execute(query)).scalars())


# --- reading an entry ------------------------------------------------------------------------

# Field names as the admin pages call them; the rest are made readable from the name.
FIELD_LABELS = {
    "role": "Role", "is_active": "Active", "cvat_username": "CVAT user name",
    "balance_cents": "Balance", "amount_cents": "Amount", "reason": "Reason",
    "state": "State", "attempts": "Tries", "error": "Error",
    "version": "Price list version", "per_frame_cents": "Per delivered frame",
    "per_object_frame_cents": "Per object-frame", "per_reviewed_frame_cents": "Per reviewed frame",
    "minimum_cents": "Minimum charge", "currency": "Currency", "starting_balance_cents": "Starting balance",
    "max_storage_bytes": "Storage", "max_videos": "Videos", "max_video_bytes": "Size per video",
    "max_video_duration_s": "Duration per video", "frames_per_month": "Delivered frames per month",
    "concurrent_jobs": "Concurrent jobs", "quotas": "Quota", "qc_job_id": "QC job",
    "accepted_job_ids": "Jobs accepted", "agreement": "Agreement",
}
ACTION_LABELS = {
    "user.update": "Account changed", "user.top_up": "Balance topped up", "user.adjustment": "Balance adjusted",
    "user.reset_password": "Reset link sent", "prices.update": "Prices changed", "defaults.update": "Defaults changed",
    "job.retry": "Job retried", "job.cancel": "Job cancelled", "review.accept_both": "QC pair accepted",
}
_ABSENT = object()


def action_label(action: str) -> str:
    return ACTION_LABELS.get(action) or action.replace(".", " ").replace("_", " ").capitalize()


def _label(path: tuple[str, ...]) -> str:
    words = [FIELD_LABELS.get(key) or key.removesuffix("_cents").removesuffix("_bytes").replace("_", " ").capitalize()
             for key in path]
    return ": ".join(words)


def _flatten(value: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(value, dict):
        flat: dict[tuple[str, ...], Any] = {}
        for key, item in value.items():
            flat |= _flatten(item, (*path, str(key)))
        return flat
    return {path: value}


def _text(path: tuple[str, ...], value: Any, currency: str) -> str:
    key = path[-1] if path else ""
    if value is _ABSENT:
        return ""
    if value is None:
        return "default" if path[:1] == ("quotas",) else "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if key.endswith("_cents"):
            return money(int(value), currency)
        if key.endswith("_bytes"):
            return human_bytes(value)
        if key.endswith("_s"):
            return human_duration(value)
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, list):
        return "; ".join(", ".join(f"{k} {v}" for k, v in item.items()) if isinstance(item, dict) else str(item)
                         for item in value) or "none"
    return str(value)


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None, *, currency: str = "USD") -> list[dict[str, str]]:
    """The fields an entry changed, readable: `[{"field": "Quota: Storage", "before": "5 GB",
    "after": "20 GB"}, ...]`. Nested values (the quota overrides) are compared field by field
    and unchanged fields are left out; a field only in `after` (an amount, a reason) is listed
    with an empty before. Sizes, money and durations are written as the pages write them."""
    old, new = _flatten(before or {}), _flatten(after or {})
    rows = []
    for path in dict.fromkeys([*old, *new]):
        a, b = old.get(path, _ABSENT), new.get(path, _ABSENT)
        if a == b:
            continue
        rows.append({"field": _label(path), "before": _text(path, a, currency), "after": _text(path, b, currency)})
    return rows
