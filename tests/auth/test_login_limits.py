"""The login limit (issue 16, item 11): atomic (parallel attempts cannot all be checked), per
account and per client address separately, the address from a trusted proxy header only when
configured, and other accounts' failures never lock out a known account's right password."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import csrf_token, register


@pytest.fixture
def settings(monkeypatch):
    """The settings, with a window long enough that a slow machine's sequential attempts all fall
    in one (tests/conftest.py's 6 s suits the one test that waits for the window to lapse)."""
    from src.config import get_settings

    monkeypatch.setattr(get_settings(), "login_window_seconds", 120)
    return get_settings()


async def test_sixty_parallel_wrong_logins_admit_at_most_the_limit(client, settings, monkeypatch):
    from src.auth.users import UserManager

    await register(client, "race@example.com")
    checked = 0
    real = UserManager.authenticate

    async def counting(self, credentials):
        nonlocal checked
        checked += 1
        return await real(self, credentials)

    monkeypatch.setattr(UserManager, "authenticate", counting)  # counts, then checks for real
    attempts = [client.post("/auth/jwt/login", data={"username": "race@example.com", "password": f"wrong-{i}-xyz"})
                for i in range(60)]
    responses = await asyncio.gather(*attempts)
    codes = [r.status_code for r in responses]
    assert codes.count(400) <= settings.login_max_failures, codes
    assert checked <= settings.login_max_failures
    assert codes.count(429) == 60 - codes.count(400)
    assert all(int(r.headers["retry-after"]) >= 1 for r in responses if r.status_code == 429)
    right = await client.post("/auth/jwt/login", data={"username": "race@example.com", "password": "correct-horse-9"})
    assert right.status_code == 429  # the account is locked for the window, whatever the password


async def test_the_address_limit_counts_all_accounts_but_spares_a_known_account(app, settings):
    ip_limit = settings.login_ip_max_failures or 5 * settings.login_max_failures
    office = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("198.51.100.7", 1234)),
                               base_url="http://testserver")
    elsewhere = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 1234)),
                                  base_url="http://testserver")
    try:
        await register(office, "alice@example.com")
        await register(office, "newcomer@example.com")
        ok = await office.post("/auth/jwt/login", data={"username": "alice@example.com", "password": "correct-horse-9"})
        assert ok.status_code == 200  # alice has logged in from the office before
        # someone in the same office sprays wrong passwords over many accounts (each under its own limit)
        codes = []
        for i in range(ip_limit + 3):
            r = await office.post("/auth/jwt/login", data={"username": f"victim{i}@example.com", "password": "guess-guess-1"})
            codes.append(r.status_code)
        assert codes[:ip_limit] == [400] * ip_limit and set(codes[ip_limit:]) == {429}, codes
        # alice's right password from the office still works; an unknown account from there waits
        alice = await office.post("/auth/jwt/login", data={"username": "alice@example.com", "password": "correct-horse-9"})
        assert alice.status_code == 200, alice.text
        blocked = await office.post("/auth/jwt/login", data={"username": "newcomer@example.com", "password": "correct-horse-9"})
        assert blocked.status_code == 429
        # from another address the newcomer is not held by the office's failures
        other = await elsewhere.post("/auth/jwt/login", data={"username": "newcomer@example.com", "password": "correct-horse-9"})
        assert other.status_code == 200
        # the office's refusals were not counted against the newcomer's own account
        assert int(await app.state.redis.get("login-fail:account:newcomer@example.com") or 0) == 0
    finally:
        await office.aclose()
        await elsewhere.aclose()


async def test_an_accounts_own_limit_applies_from_a_known_address(app, client, settings):
    await register(client, "known@example.com")
    assert (await client.post("/auth/jwt/login", data={"username": "known@example.com", "password": "correct-horse-9"})).status_code == 200
    for _ in range(settings.login_max_failures):
        assert (await client.post("/auth/jwt/login", data={"username": "known@example.com", "password": "nope-nope-1"})).status_code == 400
    assert (await client.post("/auth/jwt/login", data={"username": "known@example.com", "password": "nope-nope-1"})).status_code == 429


async def test_a_right_password_gives_its_address_slot_back(app, settings):
    """Only failures stay counted on the address: many good logins never lock it."""
    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("192.0.2.44", 1)), base_url="http://testserver")
    try:
        for i in range(3):
            await register(c, f"good{i}@example.com")
        for _ in range(3):
            for i in range(3):
                await app.state.redis.delete("login-known:ip:192.0.2.44")  # as if each were a first login here
                r = await c.post("/auth/jwt/login", data={"username": f"good{i}@example.com", "password": "correct-horse-9"})
                assert r.status_code == 200
        assert int(await app.state.redis.get("login-fail:ip:192.0.2.44") or 0) == 0
    finally:
        await c.aclose()


async def test_the_client_address_comes_from_the_proxy_header_only_when_configured(app, settings, monkeypatch):
    from src.auth import service

    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.0.0.1", 1)), base_url="http://testserver")
    try:
        await register(c, "proxied@example.com")

        async def fail(forwarded: str):
            return await c.post("/auth/jwt/login", headers={"X-Forwarded-For": forwarded},
                                data={"username": "proxied@example.com", "password": "wrong-wrong-1"})

        await fail("203.0.113.50")
        assert await app.state.redis.get("login-fail:ip:10.0.0.1") is not None  # header ignored: not configured
        assert await app.state.redis.get("login-fail:ip:203.0.113.50") is None

        monkeypatch.setattr(settings, "trusted_proxy_header", "X-Forwarded-For")
        await fail("198.51.100.1, 203.0.113.50")  # the right-most entry is the one the proxy saw
        assert int(await app.state.redis.get("login-fail:ip:203.0.113.50")) == 1
        await fail("not-an-address")  # garbage in the header: the peer address
        assert int(await app.state.redis.get("login-fail:ip:10.0.0.1")) == 2
    finally:
        await c.aclose()
    assert service.login_limiter(app.state.redis).ip_max_failures == (settings.login_ip_max_failures
                                                                       or 5 * settings.login_max_failures)


async def test_the_login_page_is_limited_the_same_way(client, settings):
    await register(client, "page@example.com")
    token = await csrf_token(client)
    form = {"email": "page@example.com", "password": "wrong-wrong-1", "csrf_token": token}
    responses = await asyncio.gather(*[client.post("/login", data=form, headers={"HX-Request": "true"}) for _ in range(20)])
    codes = [r.status_code for r in responses]
    assert codes.count(400) <= settings.login_max_failures and codes.count(429) >= 20 - settings.login_max_failures
    assert any("Too many failed logins" in r.text for r in responses)
