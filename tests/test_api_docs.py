"""/docs and /redoc work on a closed network: every asset they reference is served by this
server (src/api_docs.py), and their content security policy allows no other origin."""

from __future__ import annotations

import re

import httpx
import pytest

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.fixture
async def docs_client():
    from src.main import create_app

    transport = httpx.ASGITransport(app=create_app())  # the docs need no database: no lifespan
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_reference_only_local_assets_and_they_are_served(docs_client, page):
    response = await docs_client.get(page)
    assert response.status_code == 200
    html = response.text
    assert "cdn." not in html and "fonts.googleapis" not in html and "unpkg" not in html
    assets = ASSET.findall(html)
    assert assets, html
    for url in assets:
        assert url.startswith("/") and not url.startswith("//"), f"{page} references {url}"
        asset = await docs_client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 1000, (url, asset.status_code)
    policy = response.headers["content-security-policy"]
    assert "http" not in policy and "default-src 'self'" in policy, policy


async def test_swagger_ui_is_version_5_and_skips_the_online_validator(docs_client):
    """Swagger UI 4 cannot render OpenAPI 3.1 (what FastAPI writes); 5 can."""
    html = (await docs_client.get("/docs")).text
    assert '"validatorUrl": null' in html
    bundle = (await docs_client.get("/docs/assets/swagger-ui-bundle.js")).text
    assert re.search(r'"5\.\d+\.\d+"', bundle)
    assert (await docs_client.get("/openapi.json")).json()["openapi"].startswith("3.1")
