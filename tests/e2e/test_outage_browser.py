"""Redis stopped while a person logs in, in a real browser against a real web server (its own
Redis, so nothing else is disturbed): the login form stays, the page says the service is
temporarily unavailable; once Redis is back the same click logs in."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from src.embedded import EmbeddedRedis, free_port
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture
def redis_server():
    with tempfile.TemporaryDirectory(prefix="forge-outage-browser-") as tmp:
        server = EmbeddedRedis(Path(tmp))
        url = server.start()
        try:
            yield server, url
        finally:
            server.stop()


@pytest.fixture
def web_server(services, redis_server):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PORT": str(port), "BASE_URL": url, "REDIS_URL": redis_server[1]}
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "src.main:app", "--host", "127.0.0.1", "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("web server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_login_while_redis_is_down_says_so_and_works_once_it_is_back(web_server, redis_server):
    from playwright.async_api import async_playwright

    server, _ = redis_server
    async with httpx.AsyncClient(base_url=web_server) as api:
        response = await api.post("/auth/register", json={"email": "down@example.com", "password": "sunlit-meadow-42"})
        assert response.status_code == 201, response.text
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await (await browser.new_context(base_url=web_server)).new_page()
        await page.goto("/login")
        await page.fill("#email", "down@example.com")
        await page.fill("#password", "sunlit-meadow-42")
        server.stop()
        await page.click("button[type=submit]")
        alert = page.locator("#outage")
        await alert.wait_for()
        assert "temporarily unavailable" in await alert.text_content()
        assert "Redis" in await alert.text_content()
        assert await page.input_value("#email") == "down@example.com"  # the form is still there, filled in

        server.start()
        await page.click("button[type=submit]")
        await page.wait_for_url("**/videos")
        await browser.close()
