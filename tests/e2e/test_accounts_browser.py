"""In a real browser: register, see the profile, log out, log in again."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


async def test_register_login_and_profile(page):
    await page.goto("/register")
    await page.fill("#email", "browser@example.com")
    await page.fill("#password", "short")
    await page.evaluate("document.querySelector('#password').removeAttribute('minlength')")
    await page.click("button[type=submit]")
    await page.wait_for_selector(".error:has-text(\"at least 8 characters\")")  # inline error via HTMX

    await page.fill("#password", "sunlit-meadow-42")
    await page.click("button[type=submit]")
    await page.wait_for_url("**/profile")
    assert await page.text_content("#profile-email") == "browser@example.com"

    await page.click("text=Log out")
    await page.wait_for_url("**/login")
    await page.fill("#email", "browser@example.com")
    await page.fill("#password", "wrong-password")
    await page.click("button[type=submit]")
    await page.wait_for_selector("text=Wrong e-mail or password.")
    await page.fill("#password", "sunlit-meadow-42")
    await page.click("button[type=submit]")
    await page.wait_for_url("**/videos")
    await page.goto("/profile")
    assert await page.text_content("#profile-email") == "browser@example.com"

