"""Accounts: register, cookie and bearer login, token checks, CSRF, rate limit, roles."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time

import jwt
import pytest

from tests.conftest import bearer, csrf_token, login_cookie, register, set_role


async def test_register_login_cookie_and_me(client):
    created = await register(client, "ada@example.com")
    assert created["email"] == "ada@example.com" and created["role"] == "user"
    client.headers["X-CSRF-Token"] = await csrf_token(client)  # logging a browser in needs it (login CSRF)
    response = await client.post("/auth/login", data={"username": "ada@example.com", "password": "correct-horse-9"})
    assert response.status_code == 204
    set_cookie = response.headers["set-cookie"]
    assert "forge_session=" in set_cookie and "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie
    me = await client.get("/api/v1/users/me")
    assert me.status_code == 200 and me.json()["email"] == "ada@example.com"
    assert me.json()["last_login_at"] is not None


async def test_token_is_rs256_signed_with_the_key_in_certs(client):
    await register(client, "rsa@example.com")
    headers = await bearer(client, "rsa@example.com")
    token = headers["Authorization"].split()[1]
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    from src.auth.users import jwt_keys

    claims = jwt.decode(token, jwt_keys().public_pem, algorithms=["RS256"], audience="fastapi-users:auth")
    assert claims["sub"] == (await client.get("/api/v1/users/me", headers=headers)).json()["id"]


async def test_bearer_login_works_without_cookie(client, make_client):
    await register(client, "bob@example.com")
    headers = await bearer(client, "bob@example.com")
    fresh = make_client()
    assert (await fresh.get("/api/v1/users/me")).status_code == 401
    assert (await fresh.get("/api/v1/users/me", headers=headers)).json()["email"] == "bob@example.com"


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "00000000-0000-0000-0000-000000000000"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_tampered_and_hs256_tokens_are_refused(client, make_client):
    user = await register(client, "eve@example.com")
    token = (await bearer(client, "eve@example.com"))["Authorization"].split()[1]
    from src.auth.users import jwt_keys

    claims = {"sub": user["id"], "aud": ["fastapi-users:auth"], "exp": int(time.time()) + 600}
    forged = {
        "tampered": _tamper(token),
        # the classic confusion attack: HS256 "signed" with the public key
        "hs256-public-key": _hs256(claims, jwt_keys().public_pem),
        "hs256-guess": jwt.encode(claims, "secret", algorithm="HS256"),
        "none": jwt.encode(claims, None, algorithm="none"),
    }
    fresh = make_client()
    for name, bad in forged.items():
        response = await fresh.get("/api/v1/users/me", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, name
        fresh.cookies.set("forge_session", bad)
        assert (await fresh.get("/api/v1/users/me")).status_code == 401, name
        fresh.cookies.clear()


def _hs256(claims: dict, key: str) -> str:
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


async def test_inactive_user_cannot_log_in_and_loses_access_at_once(app, client):
    await register(client, "gone@example.com")
    headers = await bearer(client, "gone@example.com")
    from sqlalchemy import text

    async with app.state.engine.begin() as conn:
        await conn.execute(text("UPDATE \"user\" SET is_active = false WHERE email = 'gone@example.com'"))
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 401
    response = await client.post("/auth/jwt/login", data={"username": "gone@example.com", "password": "correct-horse-9"})
    assert response.status_code == 400 and "deactivated" in response.json()["detail"]


async def test_bad_password_and_short_password(client):
    await register(client, "carol@example.com")
    client.headers["X-CSRF-Token"] = await csrf_token(client)
    response = await client.post("/auth/login", data={"username": "carol@example.com", "password": "wrong-password"})
    assert response.status_code == 400 and response.json() == {"detail": "Wrong e-mail or password."}
    short = await client.post("/auth/register", json={"email": "dan@example.com", "password": "short"})
    assert short.status_code == 400 and "8 characters" in json.dumps(short.json())


async def test_post_with_cookie_but_without_csrf_token_is_refused(client):
    await register(client, "csrf@example.com")
    await login_cookie(client, "csrf@example.com")
    token = client.headers.pop("X-CSRF-Token")
    refused = await client.post("/auth/logout")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    wrong = await client.post("/auth/logout", headers={"X-CSRF-Token": "forged"})
    assert wrong.status_code == 403
    # the same token works as header and as form field
    assert (await client.post("/profile/request-verify", data={"csrf_token": token})).status_code == 200
    assert (await client.post("/auth/logout", headers={"X-CSRF-Token": token})).status_code == 204


async def test_login_rate_limit_triggers_and_recovers(client):
    from src.config import get_settings

    await register(client, "slow@example.com")
    client.headers["X-CSRF-Token"] = await csrf_token(client)
    limit = get_settings().login_max_failures
    for _ in range(limit):
        bad = await client.post("/auth/login", data={"username": "slow@example.com", "password": "nope-nope-nope"})
        assert bad.status_code == 400
    blocked = await client.post("/auth/login", data={"username": "slow@example.com", "password": "correct-horse-9"})
    assert blocked.status_code == 429 and "Too many failed logins" in blocked.json()["detail"]
    assert int(blocked.headers["retry-after"]) >= 1
    await asyncio.sleep(get_settings().login_window_seconds + 0.5)
    ok = await client.post("/auth/login", data={"username": "slow@example.com", "password": "correct-horse-9"})
    assert ok.status_code == 204


async def test_forgot_and_reset_password_and_verify_by_mail(client, caplog):
    caplog.set_level("INFO", logger="forge.mail")
    await register(client, "mail@example.com")
    assert (await client.post("/auth/forgot-password", json={"email": "mail@example.com"})).status_code == 202
    token = re.findall(r"reset-password\?token=(\S+)", caplog.text)[-1]
    reset = await client.post("/auth/reset-password", json={"token": token, "password": "a-new-password-1"})
    assert reset.status_code == 200
    client.headers["X-CSRF-Token"] = await csrf_token(client)
    assert (await client.post("/auth/login", data={"username": "mail@example.com", "password": "a-new-password-1"})).status_code == 204
    verify_token = re.findall(r"verify\?token=(\S+)", caplog.text)[-1]  # sent on registration
    page = await client.get(f"/verify?token={verify_token}", headers={"accept": "text/html"})
    assert "is confirmed" in page.text
    assert (await client.get("/api/v1/users/me")).json()["is_verified"] is True


async def test_pages_and_role_navigation(app, client):
    assert (await client.get("/login")).status_code == 200
    assert (await client.get("/profile", follow_redirects=False)).headers["location"].startswith("/login")
    await register(client, "nav@example.com")
    await login_cookie(client, "nav@example.com")
    page = await client.get("/profile")
    assert "nav@example.com" in page.text and "My videos" in page.text and "/admin/users" not in page.text
    await set_role(app, "nav@example.com", "annotator")
    page = await client.get("/profile")
    assert "My review jobs" in page.text and "My videos" not in page.text
    await set_role(app, "nav@example.com", "admin")
    assert "/admin/users" in (await client.get("/profile")).text


async def test_friendly_error_pages_and_json_errors(client):
    page = await client.get("/no-such-page", headers={"accept": "text/html"})
    assert page.status_code == 404 and "Not found" in page.text and "<html" in page.text
    api = await client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}


async def test_register_form_shows_errors_inline_for_htmx(client):
    token = await csrf_token(client)  # the form carries it (login CSRF protection)
    response = await client.post(
        "/register", data={"email": "not-an-email", "password": "x", "csrf_token": token}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert "<html" not in response.text and "valid e-mail" in response.text


async def test_security_headers(client):
    response = await client.get("/login")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in response.headers["content-security-policy"]


async def test_health_checks_database_and_redis(client):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


@pytest.mark.parametrize("environment", ["production"])
def test_placeholder_secret_is_rejected_outside_development(environment, monkeypatch):
    from pydantic import ValidationError

    from src.config import Settings

    monkeypatch.setenv("ENVIRONMENT", environment)
    monkeypatch.setenv("SECRET_KEY", "change-me")
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings()
    monkeypatch.setenv("ENVIRONMENT", "development")
    assert Settings().secret_key.get_secret_value() == "change-me"


async def test_create_admin_from_settings_says_what_is_wrong(app, services, client):
    """`forge create-admin` (also run by `forge up`): an unusable FORGE_ADMIN_PASSWORD or e-mail
    is one line on stderr and exit 2, not a traceback; a good one makes a working admin."""
    import os
    import subprocess
    import sys

    from src.config import ROOT

    def run(email: str, password: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "DATABASE_URL": services[0], "FORGE_ADMIN_EMAIL": email, "FORGE_ADMIN_PASSWORD": password}
        return subprocess.run([sys.executable, "-m", "src.cli", "create-admin"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    for email, password, says in [("admin@example.com", "adminpass123", "FORGE_ADMIN_PASSWORD is not accepted"),
                                  ("boss@example.com", "short", "FORGE_ADMIN_PASSWORD is not accepted"),
                                  ("not an address", "long enough pass", "FORGE_ADMIN_EMAIL")]:
        done = await asyncio.to_thread(run, email, password)
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith("forge create-admin:")]
        assert len(lines) == 1 and says in lines[0] and "Traceback" not in done.stderr, done.stderr
    done = await asyncio.to_thread(run, "boss@example.com", "a long enough pass")
    assert done.returncode == 0, done.stderr
    headers = await bearer(client, "boss@example.com", "a long enough pass")
    assert (await client.get("/api/v1/admin/users", headers=headers)).status_code == 200
