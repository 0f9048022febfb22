"""Admins manage users: changes take effect on the next request, the safety rules hold,
every action lands in the audit log, and the pages work with and without HTMX."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest

from src.admin import service as admin_service
from src.database import unit_of_work
from src.exceptions import Conflict
from tests.conftest import bearer, csrf_token, login_cookie, register, set_role


async def me(client):
    return (await client.get("/api/v1/users/me")).json()


async def test_role_change_and_deactivation_take_effect_on_the_next_request(admin_client, user_client):
    """A new role or a deactivation ends the user's sessions (issue 16, item 10): the next request
    with the old cookie is refused, and the next login has the new role."""
    user_id = (await me(user_client))["id"]
    assert (await user_client.get("/api/v1/admin/stats")).status_code == 403
    promoted = await admin_client.patch(f"/api/v1/admin/users/{user_id}", json={"role": "admin"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert (await user_client.get("/api/v1/admin/stats")).status_code == 401  # the old session ended
    await login_cookie(user_client, "user@example.com")
    assert (await user_client.get("/api/v1/admin/stats")).status_code == 200
    await admin_client.patch(f"/api/v1/admin/users/{user_id}", json={"role": "annotator"})
    await login_cookie(user_client, "user@example.com")
    assert (await user_client.get("/api/v1/admin/stats")).status_code == 403

    deactivated = await admin_client.patch(f"/api/v1/admin/users/{user_id}", json={"is_active": False})
    assert deactivated.json()["is_active"] is False
    assert (await user_client.get("/api/v1/users/me")).status_code == 401
    await admin_client.patch(f"/api/v1/admin/users/{user_id}", json={"is_active": True})
    assert (await user_client.get("/api/v1/users/me")).status_code == 401  # reactivation does not revive it
    await login_cookie(user_client, "user@example.com")
    assert (await user_client.get("/api/v1/users/me")).status_code == 200  # data and account are back


async def test_admin_cannot_demote_or_deactivate_themselves(admin_client):
    admin_id = (await me(admin_client))["id"]
    own_role = await admin_client.patch(f"/api/v1/admin/users/{admin_id}", json={"role": "user"})
    assert own_role.status_code == 409 and "your own admin role" in own_role.json()["detail"]
    own_active = await admin_client.patch(f"/api/v1/admin/users/{admin_id}", json={"is_active": False})
    assert own_active.status_code == 409 and "deactivate yourself" in own_active.json()["detail"]
    assert (await me(admin_client))["role"] == "admin"


async def test_last_admin_cannot_be_demoted_even_by_a_race(app, make_client):
    ids = []
    for email in ("one@example.com", "two@example.com"):
        ids.append(uuid.UUID((await register(make_client(), email))["id"]))
        await set_role(app, email, "admin")

    async def demote(actor, target) -> bool:
        try:
            async with unit_of_work(app.state.sessionmaker) as session:
                await admin_service.update_user(session, actor_id=actor, user_id=target, changes={"role": "user"})
                await asyncio.sleep(0.05)
            return True
        except Conflict as error:
            assert "last active administrator" in error.message
            return False

    # two admins demote each other at once: exactly one of them stays admin
    assert sorted(await asyncio.gather(demote(ids[0], ids[1]), demote(ids[1], ids[0]))) == [False, True]
    async with unit_of_work(app.state.sessionmaker) as session:
        rows, _ = await admin_service.list_users(session, role="admin")
    assert len(rows) == 1


async def test_list_search_paging_and_figures(admin_client, make_client):
    for n in range(3):
        await register(make_client(), f"search-{n}@example.com")
    page = (await admin_client.get("/api/v1/admin/users", params={"q": "search-", "per_page": 2})).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    second = (await admin_client.get("/api/v1/admin/users", params={"q": "search-", "per_page": 2, "page": 2})).json()
    assert len(second["items"]) == 1
    row = second["items"][0]
    assert {"storage_bytes", "datasets", "balance_cents", "last_login_at", "is_verified"} <= row.keys()


async def test_patch_quotas_cvat_and_balance_are_audited(admin_client, user_client):
    user_id = (await me(user_client))["id"]
    admin_id = (await me(admin_client))["id"]
    patched = await admin_client.patch(
        f"/api/v1/admin/users/{user_id}", json={"cvat_username": "ann", "quotas": {"max_videos": 3}}
    )
    assert patched.status_code == 200
    detail = (await admin_client.get(f"/api/v1/admin/users/{user_id}")).json()
    assert detail["cvat_username"] == "ann" and detail["quota"]["max_videos"] == 3
    assert detail["quota_overrides"]["max_videos"] == 3 and detail["quota_overrides"]["max_storage_bytes"] is None

    assert (await admin_client.post(f"/api/v1/admin/users/{user_id}/balance", json={"amount_cents": 100, "reason": " "})).status_code == 422
    assert (await admin_client.post(f"/api/v1/admin/users/{user_id}/balance", json={"amount_cents": 100})).status_code == 422
    below = await admin_client.post(f"/api/v1/admin/users/{user_id}/balance", json={"amount_cents": -1, "reason": "oops"})
    assert below.status_code == 422 and "below zero" in below.json()["detail"]
    assert (await admin_client.post(f"/api/v1/admin/users/{user_id}/balance", json={"amount_cents": 5000, "reason": "prepaid"})).json()["balance_cents"] == 5000
    assert (await admin_client.post(f"/api/v1/admin/users/{user_id}/balance", json={"amount_cents": -2000, "reason": "refunded by bank"})).json()["balance_cents"] == 3000

    audit = (await admin_client.get("/api/v1/admin/audit", params={"target_user_id": user_id})).json()["items"]
    assert [e["action"] for e in audit] == ["user.adjustment", "user.top_up", "user.update"]
    update = audit[-1]
    assert update["admin_id"] == admin_id and update["admin_email"] == "admin@example.com"
    assert update["before"]["cvat_username"] is None and update["after"]["cvat_username"] == "ann"
    assert update["after"]["quotas"]["max_videos"] == 3
    only_top_ups = (await admin_client.get("/api/v1/admin/audit", params={"action": "user.top_up", "admin_id": admin_id})).json()
    assert len(only_top_ups["items"]) == 1


async def test_admin_sends_a_password_reset_link(admin_client, user_client, client, caplog):
    caplog.set_level("INFO", logger="forge.mail")
    user_id = (await me(user_client))["id"]
    response = await admin_client.post(f"/api/v1/admin/users/{user_id}/reset-password")
    assert response.status_code == 202
    token = re.findall(r"reset-password\?token=(\S+)", caplog.text)[-1]
    assert (await client.post("/auth/reset-password", json={"token": token, "password": "brand-new-pass-7"})).status_code == 200
    await bearer(client, "user@example.com", "brand-new-pass-7")


async def test_defaults_and_stats(admin_client):
    put = await admin_client.put("/api/v1/admin/quota-defaults", json={"max_videos": 9, "concurrent_jobs": 4})
    assert put.status_code == 200 and put.json()["max_videos"] == 9 and put.json()["concurrent_jobs"] == 4
    assert (await admin_client.get("/api/v1/admin/quota-defaults")).json()["max_videos"] == 9
    stats = (await admin_client.get("/api/v1/admin/stats")).json()
    assert stats["datasets"]["queued"] == 0 and stats["users"]["admins"] == 1
    assert stats["workers"]["alive"] is False  # no worker runs in this test


async def test_pages_work_with_plain_forms_and_htmx(app, admin_client, user_client):
    user_id = (await me(user_client))["id"]
    token = await csrf_token(admin_client)
    listing = await admin_client.get("/admin/users", params={"q": "user@", "role": ""}, headers={"accept": "text/html"})
    assert listing.status_code == 200 and "user@example.com" in listing.text and "1 user<" in listing.text
    fragment = await admin_client.get("/admin/users", params={"q": "user@"}, headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and "user@example.com" in fragment.text

    plain = await admin_client.post(
        f"/admin/users/{user_id}/quotas", data={"csrf_token": token, "max_storage_bytes": "2.5", "max_videos": "7"},
        follow_redirects=False,
    )
    assert plain.status_code == 303
    detail = (await admin_client.get(f"/api/v1/admin/users/{user_id}")).json()
    assert detail["quota"]["max_storage_bytes"] == 2_500_000_000 and detail["quota"]["max_videos"] == 7

    swapped = await admin_client.post(
        f"/admin/users/{user_id}/balance", data={"amount_cents": "1234", "reason": "htmx"}, headers={"HX-Request": "true"}
    )
    assert swapped.status_code == 200 and "<html" not in swapped.text and "12.34 USD" in swapped.text
    refused = await admin_client.post(
        f"/admin/users/{user_id}/balance", data={"amount_cents": "-99999", "reason": "x"}, headers={"HX-Request": "true"}
    )
    assert refused.status_code == 422 and "below zero" in refused.text
    assert (await admin_client.get(f"/api/v1/admin/users/{user_id}")).json()["balance_cents"] == 1234

    admin_id = (await me(admin_client))["id"]
    own = await admin_client.post(
        f"/admin/users/{admin_id}/account", data={"role": "user", "is_active": "true"}, headers={"HX-Request": "true"}
    )
    assert own.status_code == 409 and "your own admin role" in own.text
    for path in ("/admin/jobs", "/admin/prices", "/admin/defaults", "/admin/audit"):
        page = await admin_client.get(path, headers={"accept": "text/html"})
        assert page.status_code == 200, path
    audit_page = await admin_client.get("/admin/audit", params={"action": "user.top_up"})
    assert "user.top_up" in audit_page.text and "htmx" in audit_page.text

    prices = await admin_client.post("/admin/prices", data={
        "per_frame_cents": "2", "per_object_frame_cents": "0", "per_reviewed_frame_cents": "5", "minimum_cents": "100",
        "currency": "eur"}, headers={"HX-Request": "true"})
    assert prices.status_code == 200 and "version 2" in prices.text
    assert (await admin_client.get("/api/v1/admin/prices")).json()["currency"] == "EUR"


@pytest.mark.parametrize(("field", "value", "api_value", "words"), [
    ("per_frame_cents", "-1", -1, "Per delivered frame (cents): enter a whole number of cents, 0 or more."),
    ("minimum_cents", "1.5", 1.5, "Minimum charge (cents): enter a whole number of cents, 0 or more."),
    ("per_reviewed_frame_cents", "", "", "Per reviewed frame (cents): enter a whole number of cents, 0 or more."),
    ("currency", "euro1", "EURO1", "Currency: a three-letter code such as USD or EUR."),
])
async def test_the_price_form_is_checked_by_the_api_schema(admin_client, field, value, api_value, words):
    """The form refuses what PUT /api/v1/admin/prices refuses (one schema), in the page's words,
    and no new price version is made."""
    form = {"per_frame_cents": "2", "per_object_frame_cents": "0", "per_reviewed_frame_cents": "5",
            "minimum_cents": "100", "currency": "USD", field: value}
    refused = await admin_client.post("/admin/prices", data=form, headers={"HX-Request": "true"})
    assert refused.status_code == 422 and words in refused.text
    assert (await admin_client.put("/api/v1/admin/prices", json={field: api_value})).status_code == 422
    assert (await admin_client.get("/api/v1/admin/prices")).json()["version"] == 1


async def test_the_defaults_form_refuses_a_bad_starting_balance(admin_client):
    refused = await admin_client.post("/admin/defaults", data={"starting_balance_cents": "-5"}, headers={"HX-Request": "true"})
    assert refused.status_code == 422 and "Starting balance: a whole number of cents, 0 or more." in refused.text
