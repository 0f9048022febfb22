"""Price lists are versioned (a quote keeps its version); users see their own billing."""

from __future__ import annotations

import uuid

from src.billing import service as billing
from src.database import unit_of_work
from src.datasets.models import Dataset
from tests.quotas.factories import add_dataset


async def test_price_is_itemised_in_integer_cents(app):
    async with unit_of_work(app.state.sessionmaker) as session:
        price_list = await billing.current_price_list(session)
    quote = billing.price(price_list, frames=1000, object_frames=3000, review_frames=40)
    assert quote["price_list_version"] == 1 and quote["currency"] == "USD"
    assert [item["cents"] for item in quote["items"]] == [1000, 0, 200]
    assert quote["subtotal_cents"] == 1200 and quote["total_cents"] == 1200
    small = billing.price(price_list, frames=3, object_frames=0, review_frames=0)
    assert small["subtotal_cents"] == 3 and small["total_cents"] == price_list.minimum_cents == 100


async def test_quote_keeps_its_price_list_version_after_an_edit(app, admin_client, user_client):
    user_id = uuid.UUID((await user_client.get("/api/v1/users/me")).json()["id"])
    async with unit_of_work(app.state.sessionmaker) as session:
        quote = billing.price(await billing.current_price_list(session), frames=500, object_frames=0, review_frames=0)
    dataset_id = await add_dataset(app, user_id, quote_frames=500)
    async with unit_of_work(app.state.sessionmaker) as session:
        dataset = await session.get(Dataset, dataset_id)
        dataset.quote, dataset.quoted_cents = quote, quote["total_cents"]

    edited = await admin_client.put("/api/v1/admin/prices", json={"per_frame_cents": 3, "minimum_cents": 50})
    assert edited.status_code == 200 and edited.json()["version"] == 2 and edited.json()["per_frame_cents"] == 3
    assert (await user_client.get("/api/v1/billing/prices")).json()["version"] == 2

    async with unit_of_work(app.state.sessionmaker) as session:
        dataset = await session.get(Dataset, dataset_id)
        assert dataset.quote["price_list_version"] == 1 and dataset.quoted_cents == 500
        old = await billing.get_price_list(session, version=1)
        assert old.per_frame_cents == 1 and old.minimum_cents == 100
        new_quote = billing.price(await billing.current_price_list(session), frames=500, object_frames=0, review_frames=0)
    assert new_quote["price_list_version"] == 2 and new_quote["total_cents"] == 1500


async def test_user_sees_balance_ledger_and_usage(admin_client, user_client):
    user_id = (await user_client.get("/api/v1/users/me")).json()["id"]
    response = await admin_client.post(f"/api/v1/admin/users/{user_id}/balance", json={"amount_cents": 5000, "reason": "welcome"})
    assert response.status_code == 200 and response.json()["balance_cents"] == 5000
    assert (await user_client.get("/api/v1/billing/balance")).json() == {"balance_cents": 5000, "currency": "USD"}
    ledger = (await user_client.get("/api/v1/billing/ledger")).json()
    assert ledger["balance_cents"] == 5000
    assert [(e["kind"], e["amount_cents"], e["reason"]) for e in ledger["items"]] == [("top_up", 5000, "welcome")]
    usage = (await user_client.get("/api/v1/billing/usage")).json()
    assert usage["usage"]["videos"] == 0 and usage["quota"]["max_videos"] > 0
    page = await user_client.get("/billing", headers={"accept": "text/html"})
    assert page.status_code == 200 and "50.00 USD" in page.text and "welcome" in page.text and "Storage" in page.text


async def test_billing_needs_a_login(client):
    assert (await client.get("/api/v1/billing/balance")).status_code == 401
    assert (await client.get("/billing", follow_redirects=False)).headers["location"].startswith("/login")
