"""/docs and /redoc render in Chromium with every request to another host refused, as on a
closed network."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser


async def _offline(page, live_server) -> list[str]:
    """Abort every request that leaves this server; return their URLs."""
    here, outside = urlsplit(live_server).netloc, []

    async def handle(route):
        if urlsplit(route.request.url).netloc in (here, ""):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await page.route("**/*", handle)
    return outside


async def test_swagger_ui_renders_offline(page, live_server):
    outside = await _offline(page, live_server)
    await page.goto("/docs")
    await page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "Data Forge" in await page.inner_text(".swagger-ui .info .title")
    await page.wait_for_selector(".opblock-tag", timeout=20_000)
    assert await page.locator(".opblock").count() > 20
    assert outside == []


async def test_redoc_renders_offline(page, live_server):
    outside = await _offline(page, live_server)
    await page.goto("/redoc")
    await page.wait_for_selector("h1:has-text('Data Forge')", timeout=30_000)
    assert outside == []
