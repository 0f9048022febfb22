"""The audit log: `record` one row per admin action; `entries` reads it back, filtered."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from src.admin.models import AuditEntry
from src.auth.models import User


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
