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



async def test_change_the_password_on_the_profile_page(page):
    """Issue 15: the profile page changes the password (current + new); issue 16: every other
    session ends, this browser stays logged in."""
    await page.goto("/register")
    await page.fill("#email", "changer@example.com")
    await page.fill("#password", "sunlit-meadow-42")
    await page.click("button[type=submit]")
    await page.wait_for_url("**/profile")
    other = await page.context.browser.new_context(base_url=page.url.split("/profile")[0])
    second = await other.new_page()
    await second.goto("/login")
    await second.fill("#email", "changer@example.com")
    await second.fill("#password", "sunlit-meadow-42")
    await second.click("button[type=submit]")
    await second.wait_for_url("**/videos")

    await page.fill("#current-password", "not-the-password")
    await page.fill("#new-password", "river-stone-77")
    await page.fill("#confirm-password", "river-stone-77")
    await page.click("#password-change button[type=submit]")
    await page.wait_for_selector("#password-change .error:has-text(\"current password is wrong\")")
    await page.fill("#current-password", "sunlit-meadow-42")
    await page.fill("#new-password", "river-stone-77")
    await page.fill("#confirm-password", "river-stone-77")
    await page.click("#password-change button[type=submit]")
    await page.wait_for_selector("#password-change .ok:has-text(\"has been changed\")")

    await page.goto("/profile")  # this browser got a fresh session
    assert await page.text_content("#profile-email") == "changer@example.com"
    await second.goto("/profile")  # the other one was logged out
    await second.wait_for_url("**/login?next=/profile")
    await second.fill("#email", "changer@example.com")
    await second.fill("#password", "river-stone-77")
    await second.click("button[type=submit]")
    await second.wait_for_url("**/profile")
    await other.close()
