"""Billing: price lists, quotes, and the ledger that is every balance change.

Every change of a user's balance appends a `LedgerEntry` under the user's row lock
(src.quotas.service.lock_user), so two reservations racing for the same money admit one.
Reservations are per dataset and idempotent: confirming, releasing or settling a dataset
twice (a retried job) changes nothing the second time.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import BigInteger, cast, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from src.billing.exceptions import InsufficientBalance, InvalidLedgerEntry
from src.billing.models import BillingSetting, LedgerEntry, LedgerKind, PriceList
from src.quotas.service import lock_user
from src.units import money  # the one money format (the `money` filter of the pages)

# The price list used until an admin edits it (the migration writes the same row).
DEFAULT_PRICES = {
    "per_frame_cents": 1, "per_object_frame_cents": 0, "per_reviewed_frame_cents": 5,
    "minimum_cents": 100, "currency": "USD",
}
PRICE_FIELDS = tuple(DEFAULT_PRICES)


# --- price lists and quotes -------------------------------------------------------------

async def current_price_list(session: AsyncSession) -> PriceList:
    latest = select(PriceList).order_by(PriceList.version.desc()).limit(1)
    price_list = (await session.execute(latest)).scalar_one_or_none()
    if price_list is None:  # an empty table (fresh test database): start at version 1
        await session.execute(insert(PriceList).values(version=1, **DEFAULT_PRICES).on_conflict_do_nothing())
        price_list = (await session.execute(latest)).scalar_one()
    return price_list


async def get_price_list(session: AsyncSession, *, version: int) -> PriceList | None:
    return (await session.execute(select(PriceList).where(PriceList.version == version))).scalar_one_or_none()


async def price_history(session: AsyncSession, *, limit: int = 20) -> list[PriceList]:
    query = select(PriceList).order_by(PriceList.version.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def update_prices(session: AsyncSession, *, changes: dict[str, Any], admin_id: uuid.UUID) -> PriceList:
    """A new version with `changes` applied to the current one; old versions stay as they were."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('price_list'))"))
    current = await current_price_list(session)
    values = {name: getattr(current, name) for name in PRICE_FIELDS}
    values.update({name: value for name, value in changes.items() if name in PRICE_FIELDS and value is not None})
    new = PriceList(version=current.version + 1, created_by_id=admin_id, **values)
    session.add(new)
    await session.flush()
    return new


def price(price_list: PriceList, *, frames: int, object_frames: int, review_frames: int, qc_frames: int = 0) -> dict:
    """The itemised quote, in integer cents. Pure: the same inputs give the same quote.
    ``qc_frames``: reviewed frames a second person reviews again (double review), priced as
    reviewed frames on a line of their own (shown only when there are any)."""
    lines = [
        ("Delivered frames", frames, price_list.per_frame_cents),
        ("Object-frames (one box on one frame)", object_frames, price_list.per_object_frame_cents),
        ("Frames reviewed by a person", review_frames, price_list.per_reviewed_frame_cents),
    ]
    if qc_frames:
        lines.append(("Frames reviewed a second time (QC)", qc_frames, price_list.per_reviewed_frame_cents))
    items = [
        {"label": label, "quantity": quantity, "unit_cents": unit, "cents": quantity * unit}
        for label, quantity, unit in lines
    ]
    subtotal = sum(item["cents"] for item in items)
    return {
        "price_list_version": price_list.version,
        "currency": price_list.currency,
        "items": items,
        "subtotal_cents": subtotal,
        "minimum_cents": price_list.minimum_cents,
        "total_cents": max(subtotal, price_list.minimum_cents),
    }


# --- balances ------------------------------------------------------------------------------

async def balance_cents(session: AsyncSession, *, user_id: uuid.UUID) -> int:
    query = select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(LedgerEntry.user_id == user_id)
    return int((await session.execute(query)).scalar_one())


async def balances(session: AsyncSession, *, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    query = (
        select(LedgerEntry.user_id, func.sum(LedgerEntry.amount_cents))
        .where(LedgerEntry.user_id.in_(user_ids)).group_by(LedgerEntry.user_id)
    )
    found = {user_id: int(total) for user_id, total in await session.execute(query)}
    return {user_id: found.get(user_id, 0) for user_id in user_ids}


async def ledger(session: AsyncSession, *, user_id: uuid.UUID, limit: int = 50, offset: int = 0) -> list[dict]:
    """The user's rows, newest first, each with the balance right after it."""
    running = cast(func.sum(LedgerEntry.amount_cents).over(order_by=LedgerEntry.id), BigInteger)
    inner = select(LedgerEntry, running.label("balance_after_cents")).where(LedgerEntry.user_id == user_id).subquery()
    query = select(inner).order_by(inner.c.id.desc()).limit(limit).offset(offset)
    return [dict(row._mapping) for row in await session.execute(query)]


async def _append(session: AsyncSession, **values: Any) -> LedgerEntry:
    entry = LedgerEntry(**values)
    session.add(entry)
    await session.flush()
    return entry


def _reason(reason: str | None) -> str:
    if not reason or not reason.strip():
        raise InvalidLedgerEntry("A reason is required for every top-up or adjustment.")
    return reason.strip()


async def top_up(
    session: AsyncSession, *, user_id: uuid.UUID, amount_cents: int, reason: str, admin_id: uuid.UUID | None
) -> LedgerEntry:
    if amount_cents <= 0:
        raise InvalidLedgerEntry("A top-up must be a positive amount; use an adjustment to take money away.")
    reason = _reason(reason)
    await lock_user(session, user_id=user_id)
    return await _append(
        session, user_id=user_id, kind=LedgerKind.top_up, amount_cents=amount_cents, reason=reason, admin_id=admin_id
    )


async def adjust(
    session: AsyncSession, *, user_id: uuid.UUID, amount_cents: int, reason: str, admin_id: uuid.UUID | None
) -> LedgerEntry:
    """A correction either way; it may not take the balance below zero."""
    if amount_cents == 0:
        raise InvalidLedgerEntry("An adjustment of zero changes nothing.")
    reason = _reason(reason)
    await lock_user(session, user_id=user_id)
    balance = await balance_cents(session, user_id=user_id)
    if balance + amount_cents < 0:
        raise InvalidLedgerEntry(
            f"This adjustment would take the balance below zero: the balance is {money(balance)}, "
            f"the adjustment {money(amount_cents)}."
        )
    return await _append(
        session, user_id=user_id, kind=LedgerKind.adjustment, amount_cents=amount_cents, reason=reason, admin_id=admin_id
    )


async def starting_balance_cents(session: AsyncSession) -> int:
    setting = await session.get(BillingSetting, 1)
    return setting.starting_balance_cents if setting else 0


async def set_starting_balance(session: AsyncSession, *, cents: int) -> int:
    if cents < 0:
        raise InvalidLedgerEntry("The starting balance cannot be negative.")
    await session.execute(
        insert(BillingSetting).values(id=1, starting_balance_cents=cents)
        .on_conflict_do_update(index_elements=["id"], set_={"starting_balance_cents": cents})
    )
    return cents


async def grant_starting_balance(session: AsyncSession, *, user_id: uuid.UUID) -> None:
    """Called once when an account is registered: a `top_up` of the configured amount."""
    cents = await starting_balance_cents(session)
    if cents > 0:
        await _append(session, user_id=user_id, kind=LedgerKind.top_up, amount_cents=cents, reason="Starting balance")


# --- reservations and charges (called by the dataset service) ---------------------------------

async def _dataset_owner(session: AsyncSession, dataset_id: uuid.UUID) -> uuid.UUID | None:
    query = select(LedgerEntry.user_id).where(LedgerEntry.dataset_id == dataset_id).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def _dataset_sum(session: AsyncSession, dataset_id: uuid.UUID, *kinds: LedgerKind) -> int | None:
    """The sum of the dataset's rows of these kinds; None when there are none."""
    query = select(func.sum(LedgerEntry.amount_cents)).where(
        LedgerEntry.dataset_id == dataset_id, LedgerEntry.kind.in_(kinds)
    )
    total = (await session.execute(query)).scalar_one()
    return None if total is None else int(total)


async def reserved_cents(session: AsyncSession, *, dataset_id: uuid.UUID) -> int:
    """What is reserved for the dataset and not yet released (positive)."""
    return -(await _dataset_sum(session, dataset_id, LedgerKind.reservation, LedgerKind.release) or 0)


async def reserve(session: AsyncSession, *, user_id: uuid.UUID, dataset_id: uuid.UUID, amount_cents: int) -> None:
    await lock_user(session, user_id=user_id)
    if await reserved_cents(session, dataset_id=dataset_id) > 0:
        return  # already reserved (a second confirm, a retried job)
    balance = await balance_cents(session, user_id=user_id)
    if balance < amount_cents:
        currency = (await current_price_list(session)).currency
        raise InsufficientBalance(
            f"Your balance is {money(balance, currency)} and this dataset costs {money(amount_cents, currency)}; "
            "ask an administrator to top up your balance."
        )
    await _append(
        session, user_id=user_id, kind=LedgerKind.reservation, amount_cents=-amount_cents, dataset_id=dataset_id
    )


async def release(session: AsyncSession, *, dataset_id: uuid.UUID) -> None:
    """Give back what is still reserved for the dataset (cancelled, failed); idempotent."""
    user_id = await _dataset_owner(session, dataset_id)
    if user_id is None:
        return
    await lock_user(session, user_id=user_id)
    reserved = await reserved_cents(session, dataset_id=dataset_id)
    if reserved > 0:
        await _append(session, user_id=user_id, kind=LedgerKind.release, amount_cents=reserved, dataset_id=dataset_id)


async def settle(session: AsyncSession, *, dataset_id: uuid.UUID, final_cents: int) -> int:
    """Release the reservation and charge min(final_cents, reserved). A second call returns
    the first charge and writes nothing."""
    user_id = await _dataset_owner(session, dataset_id)
    if user_id is None:
        return 0
    await lock_user(session, user_id=user_id)
    charged = await _dataset_sum(session, dataset_id, LedgerKind.charge)
    if charged is not None:
        return -charged
    reserved = await reserved_cents(session, dataset_id=dataset_id)
    if reserved <= 0:
        return 0
    charge = min(max(final_cents, 0), reserved)
    await _append(session, user_id=user_id, kind=LedgerKind.release, amount_cents=reserved, dataset_id=dataset_id)
    await _append(session, user_id=user_id, kind=LedgerKind.charge, amount_cents=-charge, dataset_id=dataset_id)
    return charge


async def refund(
    session: AsyncSession, *, dataset_id: uuid.UUID, amount_cents: int, reason: str, admin_id: uuid.UUID | None
) -> LedgerEntry:
    """Give back part or all of a dataset's charge (never more than was charged)."""
    reason = _reason(reason)
    user_id = await _dataset_owner(session, dataset_id)
    if user_id is None:
        raise InvalidLedgerEntry("This dataset was never charged.")
    await lock_user(session, user_id=user_id)
    charged = -(await _dataset_sum(session, dataset_id, LedgerKind.charge) or 0)
    refunded = await _dataset_sum(session, dataset_id, LedgerKind.refund) or 0
    if amount_cents <= 0 or refunded + amount_cents > charged:
        raise InvalidLedgerEntry(
            f"A refund must be positive and at most what is left of the charge ({money(charged - refunded)})."
        )
    return await _append(
        session, user_id=user_id, kind=LedgerKind.refund, amount_cents=amount_cents,
        dataset_id=dataset_id, reason=reason, admin_id=admin_id,
    )
