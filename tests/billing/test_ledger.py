"""The ledger: balance is the sum, reservations are released or settled once, admins'
changes need a reason and never take a balance below zero, races admit one."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select

from src.auth.models import User
from src.billing import service as billing
from src.billing.exceptions import InsufficientBalance, InvalidLedgerEntry
from src.billing.models import LedgerEntry
from src.cli import create_admin
from src.database import unit_of_work
from tests.conftest import csrf_token, register
from tests.quotas.factories import new_user


async def run(app, fn, **kwargs):
    async with unit_of_work(app.state.sessionmaker) as session:
        return await fn(session, **kwargs)


async def ledger_sum(app, user_id) -> int:
    async with unit_of_work(app.state.sessionmaker) as session:
        query = select(func.sum(LedgerEntry.amount_cents)).where(LedgerEntry.user_id == user_id)
        return int((await session.execute(query)).scalar_one() or 0)


@pytest.fixture
async def funded(app, client):
    user_id = await new_user(client, "payer@example.com")
    await run(app, billing.top_up, user_id=user_id, amount_cents=1000, reason="test money", admin_id=None)
    return user_id


async def test_reserve_release_and_settle(app, funded):
    first, second = uuid.uuid4(), uuid.uuid4()
    await run(app, billing.reserve, user_id=funded, dataset_id=first, amount_cents=600)
    await run(app, billing.reserve, user_id=funded, dataset_id=first, amount_cents=600)  # idempotent
    assert await run(app, billing.balance_cents, user_id=funded) == 400
    with pytest.raises(InsufficientBalance, match=r"Your balance is 4.00 USD and this dataset costs 5.00 USD; ask an administrator to top up") as caught:
        await run(app, billing.reserve, user_id=funded, dataset_id=second, amount_cents=500)
    assert caught.value.status_code == 402

    await run(app, billing.release, dataset_id=first)
    await run(app, billing.release, dataset_id=first)  # idempotent
    assert await run(app, billing.balance_cents, user_id=funded) == 1000

    await run(app, billing.reserve, user_id=funded, dataset_id=second, amount_cents=500)
    assert await run(app, billing.settle, dataset_id=second, final_cents=900) == 500  # never more than reserved
    assert await run(app, billing.settle, dataset_id=second, final_cents=100) == 500  # second settle: the first charge
    assert await run(app, billing.balance_cents, user_id=funded) == 500
    assert await ledger_sum(app, funded) == 500
    kinds = [row["kind"] for row in await run(app, billing.ledger, user_id=funded)]
    assert kinds == ["charge", "release", "reservation", "release", "reservation", "top_up"]


async def test_settle_below_the_reservation_gives_the_rest_back(app, funded):
    dataset_id = uuid.uuid4()
    await run(app, billing.reserve, user_id=funded, dataset_id=dataset_id, amount_cents=800)
    assert await run(app, billing.settle, dataset_id=dataset_id, final_cents=300) == 300
    assert await run(app, billing.balance_cents, user_id=funded) == 700
    await run(app, billing.release, dataset_id=dataset_id)  # nothing left to release
    assert await run(app, billing.balance_cents, user_id=funded) == 700
    rows = await run(app, billing.ledger, user_id=funded)
    assert rows[0]["balance_after_cents"] == 700 and rows[-1]["balance_after_cents"] == 1000


async def test_adjustments_need_a_reason_and_stop_at_zero(app, funded):
    for reason in ("", "   "):
        with pytest.raises(InvalidLedgerEntry, match="reason is required"):
            await run(app, billing.adjust, user_id=funded, amount_cents=-10, reason=reason, admin_id=None)
        with pytest.raises(InvalidLedgerEntry, match="reason is required"):
            await run(app, billing.top_up, user_id=funded, amount_cents=10, reason=reason, admin_id=None)
    with pytest.raises(InvalidLedgerEntry, match="below zero"):
        await run(app, billing.adjust, user_id=funded, amount_cents=-1001, reason="too much", admin_id=None)
    await run(app, billing.adjust, user_id=funded, amount_cents=-1000, reason="all of it", admin_id=None)
    assert await run(app, billing.balance_cents, user_id=funded) == 0 == await ledger_sum(app, funded)


async def test_refund_at_most_the_charge(app, funded):
    dataset_id = uuid.uuid4()
    await run(app, billing.reserve, user_id=funded, dataset_id=dataset_id, amount_cents=400)
    await run(app, billing.settle, dataset_id=dataset_id, final_cents=400)
    await run(app, billing.refund, dataset_id=dataset_id, amount_cents=300, reason="bad frames", admin_id=None)
    with pytest.raises(InvalidLedgerEntry, match="at most"):
        await run(app, billing.refund, dataset_id=dataset_id, amount_cents=101, reason="again", admin_id=None)
    assert await run(app, billing.balance_cents, user_id=funded) == 900


async def test_two_concurrent_reservations_admit_one(app, client):
    user_id = await new_user(client, "race-pay@example.com")
    await run(app, billing.top_up, user_id=user_id, amount_cents=500, reason="enough for one", admin_id=None)

    async def reserve() -> bool:
        try:
            async with unit_of_work(app.state.sessionmaker) as session:
                await billing.reserve(session, user_id=user_id, dataset_id=uuid.uuid4(), amount_cents=500)
                await asyncio.sleep(0.05)  # hold the transaction open while the other one tries
            return True
        except InsufficientBalance:
            return False

    assert sorted(await asyncio.gather(reserve(), reserve())) == [False, True]
    assert await run(app, billing.balance_cents, user_id=user_id) == 0


async def _register_on_the_page(client, email: str) -> None:
    data = {"email": email, "password": "correct-horse-9", "csrf_token": await csrf_token(client)}
    response = await client.post("/register", data=data)
    assert response.is_redirect, response.text


async def _create_admin(client, email: str) -> None:
    await create_admin(email, "correct-horse-9")  # `forge create-admin` (and `forge up`)


async def _user_id(session, *, email: str) -> uuid.UUID:
    return (await session.execute(select(User.id).where(User.email == email))).scalar_one()


@pytest.mark.parametrize("create", [register, _register_on_the_page, _create_admin], ids=["api", "page", "cli"])
async def test_starting_balance_is_a_top_up_on_registration(app, client, admin_client, create):
    """Every way an account is made: auth runs the steps the frame gave it (src/main.py, src/cli.py)."""
    response = await admin_client.put("/api/v1/admin/quota-defaults", json={"starting_balance_cents": 250})
    assert response.status_code == 200 and response.json()["starting_balance_cents"] == 250
    await create(client, "newbie@example.com")
    user_id = await run(app, _user_id, email="newbie@example.com")
    rows = await run(app, billing.ledger, user_id=user_id)
    assert [(r["kind"], r["amount_cents"], r["reason"]) for r in rows] == [("top_up", 250, "Starting balance")]
