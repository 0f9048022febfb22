"""In a real browser: an admin changes a user's quota and tops up their balance."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from src.database import create_engine

pytestmark = pytest.mark.browser


async def _set_role(database_url: str, email: str, role: str) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(text('UPDATE "user" SET role = :role WHERE email = :email'), {"role": role, "email": email})
    await engine.dispose()


async def test_admin_changes_quota_and_tops_up_from_the_pages(page, live_server, services):
    async with httpx.AsyncClient(base_url=live_server) as api:
        for email in ("boss@example.com", "customer@example.com"):
            response = await api.post("/auth/register", json={"email": email, "password": "sunlit-meadow-42"})
            assert response.status_code == 201, response.text
    await _set_role(services[0], "boss@example.com", "admin")

    await page.goto("/login")
    await page.fill("#email", "boss@example.com")
    await page.fill("#password", "sunlit-meadow-42")
    await page.click("button[type=submit]")
    await page.wait_for_url("**/videos")

    await page.goto("/admin/users")
    await page.fill("#q", "customer")
    await page.wait_for_selector("#users >> text=1 user")
    await page.click("text=customer@example.com")
    await page.wait_for_selector("#user-email:has-text('customer@example.com')")

    await page.fill("#q-max_videos", "3")
    await page.click("#quotas button[type=submit]")
    await page.wait_for_selector("#quotas >> text=Saved.")
    assert (await page.text_content("#quota-max_videos")).strip() == "3"

    await page.fill("#amount_cents", "2500")
    await page.fill("#reason", "welcome credit")
    await page.click("#balance button[type=submit]")
    await page.wait_for_selector("#balance >> text=Saved.")
    assert (await page.text_content("#balance-amount")).strip() == "25.00 USD"
    assert await page.is_visible("#balance >> text=welcome credit")

    await page.reload()  # the change is stored, not only swapped in
    assert (await page.text_content("#balance-amount")).strip() == "25.00 USD"
    assert (await page.text_content("#quota-max_videos")).strip() == "3"
