"""What admins do: users (role, activation, CVAT link, quotas, balance, password reset),
the platform's defaults and prices, and accepting a QC pair in review. Every change is
written to the audit log with the state before and after, in the same transaction as the
change itself."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from src.admin import audit
from src.auth import service as auth_service
from src.auth.models import Role, User
from src.auth.users import UserManager
from src.billing import service as billing_service
from src.billing.models import PriceList
from src.billing.service import PRICE_FIELDS
from src.datasets import service as dataset_service
from src.datasets.models import Dataset
from src.exceptions import Conflict, NotFound
from src.quotas import service as quota_service
from src.quotas.models import QUOTA_FIELDS
from src.review import service as review_service
from src.videos.models import Video


class UserNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No user with this id.")


async def get_user_or_raise(session: AsyncSession, *, user_id: uuid.UUID, lock: bool = False) -> User:
    user = await session.get(User, user_id, with_for_update=lock, populate_existing=lock)
    if user is None:
        raise UserNotFound()
    return user


# --- reading ---------------------------------------------------------------------------------

async def list_users(
    session: AsyncSession, *, q: str = "", role: Role | None = None, page: int = 1, per_page: int = 25
) -> tuple[list[dict[str, Any]], int]:
    """One page of users (e-mail or CVAT name contains `q`), with storage, datasets and balance."""
    where = []
    if q.strip():
        pattern = f"%{q.strip()}%"
        where.append(or_(User.email.ilike(pattern), User.cvat_username.ilike(pattern)))
    if role:
        where.append(User.role == role)
    total = (await session.execute(select(func.count()).select_from(User).where(*where))).scalar_one()
    query = select(User).where(*where).order_by(User.created_at.desc(), User.email)
    users = list((await session.execute(query.limit(per_page).offset((page - 1) * per_page))).scalars())
    return await _with_figures(session, users), total


async def _with_figures(session: AsyncSession, users: list[User]) -> list[dict[str, Any]]:
    ids = [user.id for user in users]
    video_bytes = dict((await session.execute(
        select(Video.owner_id, func.sum(Video.size_bytes)).where(Video.owner_id.in_(ids)).group_by(Video.owner_id)
    )).all())
    dataset_figures = {owner: (size, count) for owner, size, count in await session.execute(
        select(Dataset.owner_id, func.sum(Dataset.size_bytes), func.count())
        .where(Dataset.owner_id.in_(ids)).group_by(Dataset.owner_id)
    )}
    balances = await billing_service.balances(session, user_ids=ids)
    rows = []
    for user in users:
        dataset_bytes, datasets = dataset_figures.get(user.id, (0, 0))
        rows.append({
            **{name: getattr(user, name) for name in (
                "id", "email", "role", "is_active", "is_verified", "created_at", "last_login_at", "cvat_username")},
            "storage_bytes": int(video_bytes.get(user.id) or 0) + int(dataset_bytes or 0),
            "datasets": datasets,
            "balance_cents": balances[user.id],
        })
    return rows


async def user_detail(session: AsyncSession, *, user_id: uuid.UUID) -> dict[str, Any]:
    user = await get_user_or_raise(session, user_id=user_id)
    (row,) = await _with_figures(session, [user])
    usage = await dataset_service.usage(session, user_id=user_id)
    return {
        **row,
        "quota": await quota_service.effective_quota(session, user_id=user_id),
        "quota_overrides": await quota_service.overrides(session, user_id=user_id),
        "usage": vars(usage),
    }


# --- users -----------------------------------------------------------------------------------

def _account(user: User) -> dict[str, Any]:
    return {"role": str(user.role), "is_active": user.is_active, "cvat_username": user.cvat_username}


async def _other_active_admins(session: AsyncSession, *, besides: uuid.UUID) -> int:
    """Locks every active admin (in id order, so two admins demoting each other cannot
    deadlock) and counts those other than `besides`."""
    query = select(User.id).where(User.role == Role.admin, User.is_active).order_by(User.id).with_for_update()
    return sum(1 for admin_id in (await session.execute(query)).scalars() if admin_id != besides)


async def update_user(
    session: AsyncSession, *, actor_id: uuid.UUID, user_id: uuid.UUID, changes: dict[str, Any]
) -> User:
    """Apply `changes` (role, is_active, cvat_username, quotas: only the keys present)."""
    role, active = changes.get("role"), changes.get("is_active")
    takes_admin_away = (role is not None and role != Role.admin) or active is False
    if takes_admin_away:
        others = await _other_active_admins(session, besides=user_id)
    user = await get_user_or_raise(session, user_id=user_id, lock=True)
    before = {**_account(user), "quotas": await quota_service.overrides(session, user_id=user_id)}

    if takes_admin_away and user.role == Role.admin and user.is_active:
        if user.id == actor_id:
            what = "remove your own admin role" if role not in (None, Role.admin) else "deactivate yourself"
            raise Conflict(f"You cannot {what}; ask another administrator to do it.")
        if others == 0:
            raise Conflict(f"{user.email} is the last active administrator; make another user an admin first.")

    if (role is not None and role != user.role) or (active is not None and active != user.is_active):
        auth_service.end_sessions(user)  # a new role or a deactivation ends the user's sessions and tokens
    if role is not None:
        user.role = role
    if active is not None:
        user.is_active = active
    if "cvat_username" in changes:
        user.cvat_username = (changes["cvat_username"] or "").strip() or None
    if changes.get("quotas") is not None:
        await quota_service.set_overrides(session, user_id=user_id, changes=changes["quotas"])
    await session.flush()

    after = {**_account(user), "quotas": await quota_service.overrides(session, user_id=user_id)}
    if after != before:
        await audit.record(
            session, admin_id=actor_id, action="user.update", target_user_id=user_id, before=before, after=after
        )
    return user


async def change_balance(
    session: AsyncSession, *, actor_id: uuid.UUID, user_id: uuid.UUID, amount_cents: int, reason: str
) -> dict[str, Any]:
    """A positive amount is a top-up; a negative one an adjustment (never below zero)."""
    await get_user_or_raise(session, user_id=user_id)
    before = await billing_service.balance_cents(session, user_id=user_id)
    change = billing_service.top_up if amount_cents > 0 else billing_service.adjust
    entry = await change(session, user_id=user_id, amount_cents=amount_cents, reason=reason, admin_id=actor_id)
    after = await billing_service.balance_cents(session, user_id=user_id)
    await audit.record(
        session, admin_id=actor_id, action=f"user.{entry.kind}", target_user_id=user_id,
        before={"balance_cents": before},
        after={"balance_cents": after, "amount_cents": amount_cents, "reason": entry.reason},
    )
    return {"user_id": user_id, "balance_cents": after, "entry_id": entry.id}


async def send_password_reset(
    session: AsyncSession, user_manager: UserManager, *, actor_id: uuid.UUID, user_id: uuid.UUID,
    request: Request | None = None,
) -> None:
    """Mail the user a reset link (to the log when no SMTP is set); their password is unchanged until used."""
    user = await get_user_or_raise(session, user_id=user_id)
    if not user.is_active:
        raise Conflict(f"{user.email} is deactivated; activate the account before sending a reset link.")
    await user_manager.forgot_password(user, request)
    await audit.record(session, admin_id=actor_id, action="user.reset_password", target_user_id=user_id)


# --- review --------------------------------------------------------------------------------------

async def accept_qc_pair(session: AsyncSession, redis, *, admin: User, qc_job_id: int) -> review_service.AcceptedPair:
    """The review page's "Accept both": the QC job and the primary job(s) it checks are
    accepted whatever their agreement (review's `accept_pair`), audited as `review.accept_both`."""
    accepted = await review_service.accept_pair(session, redis, qc_job_id=qc_job_id, admin=admin)
    await audit.record(
        session, admin_id=admin.id, action="review.accept_both", target=f"dataset:{accepted.dataset_id}",
        after={"qc_job_id": accepted.qc_job_id, "accepted_job_ids": accepted.accepted_job_ids,
               "agreement": accepted.agreement},
    )
    return accepted


# --- platform settings -------------------------------------------------------------------------

def price_list_dict(price_list: PriceList) -> dict[str, Any]:
    return {"version": price_list.version, **{name: getattr(price_list, name) for name in PRICE_FIELDS}}


async def update_prices(session: AsyncSession, *, actor_id: uuid.UUID, changes: dict[str, Any]) -> PriceList:
    before = price_list_dict(await billing_service.current_price_list(session))
    new = await billing_service.update_prices(session, changes=changes, admin_id=actor_id)
    after = price_list_dict(new)
    await audit.record(
        session, admin_id=actor_id, action="prices.update", target=f"price_list:{new.version}", before=before, after=after
    )
    return new


async def defaults(session: AsyncSession) -> dict[str, Any]:
    quota = await quota_service.defaults(session)
    return {**vars(quota), "starting_balance_cents": await billing_service.starting_balance_cents(session)}


async def update_defaults(session: AsyncSession, *, actor_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Quota defaults (for users without an override) and the starting balance of new accounts."""
    before = await defaults(session)
    await quota_service.update_defaults(session, changes={k: v for k, v in changes.items() if k in QUOTA_FIELDS})
    if changes.get("starting_balance_cents") is not None:
        await billing_service.set_starting_balance(session, cents=changes["starting_balance_cents"])
    after = await defaults(session)
    if after != before:
        await audit.record(session, admin_id=actor_id, action="defaults.update", before=before, after=after)
    return after
