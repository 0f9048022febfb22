"""Every refusal a page form can get renders its message in the page, never a 500, and
leaves what is stored unchanged: bad options, price changed, quota, balance (in the journey
test), a state conflict from a second tab, a duplicate class, a file that is not a video."""

from __future__ import annotations

import httpx
import pytest

from tests.datasets.conftest import top_up
from tests.e2e.test_journeys import Canvas, Person, register, saved, upload_and_draft, xyxy  # noqa: F401
from tests.e2e.test_journeys import browser  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


async def _admin_api(live_server: str, app) -> httpx.AsyncClient:
    from tests.conftest import set_role
    from tests.e2e.test_editor_browser import PASSWORD

    api = httpx.AsyncClient(base_url=live_server, timeout=30)
    assert (await api.post("/auth/register", json={"email": "ops@example.com", "password": PASSWORD})).status_code == 201
    await set_role(app, "ops@example.com", "admin")
    token = (await api.post("/auth/jwt/login", data={"username": "ops@example.com", "password": PASSWORD})).json()
    api.headers["Authorization"] = f"Bearer {token['access_token']}"
    return api


async def _state(app, email: str) -> str:
    from sqlalchemy import text

    async with app.state.engine.begin() as conn:
        return (await conn.execute(text(
            'SELECT d.state FROM dataset d JOIN "user" u ON u.id = d.owner_id WHERE u.email = :e'), {"e": email})).scalar_one()


async def _no_server_error(page) -> None:
    assert "Internal Server Error" not in await page.content()


async def test_every_create_page_refusal_is_shown(browser, live_server, app, services):  # noqa: F811
    admin = await _admin_api(live_server, app)
    async with Person(browser, live_server, "refusals") as person:
        page = person.page
        errors: list[int] = []
        page.on("response", lambda r: errors.append(r.status) if r.status >= 500 else None)
        await register(person, "picky@example.com")

        # a file that is not a video, on the upload page
        await page.goto("/videos")
        await page.set_input_files("#upload-file", files=[{"name": "notes.mp4", "mimeType": "video/mp4", "buffer": b"not a video" * 50}])
        await page.click("#upload-form button[type=submit]")
        await page.wait_for_selector("#upload-error:not([hidden])")
        assert (await page.locator("#upload-error").inner_text()).strip()
        await person.shot("not-a-video")

        draft_url = await upload_and_draft(person, name="Refusals")
        canvas = Canvas(page)
        await canvas.ready()
        box = xyxy(0)
        await canvas.drag(box[:2], box[2:])
        await saved(page)

        # a duplicate class on the draft page
        await page.goto(draft_url)
        await page.fill("#new-class-name", "person")
        await page.click(".add-class button[type=submit]")
        await page.wait_for_selector("#class-error")
        assert "already a class" in await page.locator("#class-error").inner_text()
        assert await page.locator(".class-row").count() == 1
        await person.shot("duplicate-class")

        await top_up(app, "picky@example.com", 100_000)
        await page.goto(f"{draft_url}/create")

        # bad options: the split does not add up
        async with page.expect_response("**/quote"):
            await page.fill("input[name=train]", "50")
        message = page.locator("#quote .error[role=alert]")
        assert "add up to 1" in await message.inner_text()
        await person.shot("bad-split")
        async with page.expect_response("**/quote"):
            await page.fill("input[name=train]", "80")
        await page.wait_for_selector("#quote button[type=submit]")

        # the price changes between the quote and the click
        assert (await admin.put("/api/v1/admin/prices", json={"per_frame_cents": 3})).status_code == 200
        await page.click("#quote button[type=submit]")
        await message.wait_for()
        assert "price changed" in (await message.inner_text()).lower()
        assert await _state(app, "picky@example.com") == "draft"
        await person.shot("price-changed")

        # the quota: a month's frames below this dataset's
        users = (await admin.get("/api/v1/admin/users", params={"q": "picky"})).json()
        user_id = (users["items"] if isinstance(users, dict) else users)[0]["id"]
        assert (await admin.patch(f"/api/v1/admin/users/{user_id}", json={"quotas": {"frames_per_month": 10}})).status_code == 200
        await page.click("#quote button[type=submit]")
        import re

        await page.locator("#quote .error[role=alert]", has_text=re.compile("frame|quota", re.I)).wait_for()
        assert await _state(app, "picky@example.com") == "draft"
        balance = (await admin.get(f"/api/v1/admin/users/{user_id}")).json()["balance_cents"]
        assert balance == 100_000  # nothing reserved by the refusals
        await person.shot("quota")
        assert (await admin.patch(f"/api/v1/admin/users/{user_id}", json={"quotas": {"frames_per_month": None}})).status_code == 200

        # a state conflict: confirmed in a second tab, then Confirm in the first one
        second = await person.context.new_page()
        await second.goto(f"{draft_url}/create")
        await second.click("#quote button[type=submit]")
        await second.wait_for_url("**/overview")
        await page.click("#quote button[type=submit]")
        await page.wait_for_url("**/overview")  # no second reservation: it shows the dataset as it is
        await _no_server_error(page)
        await person.shot("confirmed-elsewhere")
        assert errors == []
    await admin.aclose()
