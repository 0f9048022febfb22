"""Sessions and login (issue 16, items 9, 10, 12; issue 15's profile password change):
revocable tokens, same-site `next`, CSRF rules, common passwords."""

from __future__ import annotations

import re

import pytest

from tests.conftest import bearer, csrf_token, login_cookie, register

EMAIL = "sess@example.com"


async def _logged_in_twice(make_client, email: str = EMAIL, password: str = "correct-horse-9"):
    """A browser (cookie + CSRF header) and a script (bearer headers) of the same account."""
    browser = make_client()
    await register(browser, email, password)
    await login_cookie(browser, email, password)
    script_headers = await bearer(make_client(), email, password)
    assert (await browser.get("/api/v1/users/me")).status_code == 200
    assert (await make_client().get("/api/v1/users/me", headers=script_headers)).status_code == 200
    return browser, script_headers


async def _refused(make_client, browser, script_headers) -> None:
    assert (await browser.get("/api/v1/users/me")).status_code == 401
    assert (await make_client().get("/api/v1/users/me", headers=script_headers)).status_code == 401


async def test_logout_ends_the_cookie_and_the_bearer_token(make_client):
    browser, script_headers = await _logged_in_twice(make_client)
    stolen = browser.cookies["forge_session"]
    assert (await browser.post("/auth/logout")).status_code == 204
    await _refused(make_client, browser, script_headers)
    replay = make_client()
    replay.cookies.set("forge_session", stolen)  # the cookie kept by someone else is dead too
    assert (await replay.get("/api/v1/users/me")).status_code == 401
    assert (await replay.get("/profile", follow_redirects=False)).headers["location"].startswith("/login")


async def test_the_logout_page_and_the_jwt_logout_end_sessions_too(make_client):
    browser, script_headers = await _logged_in_twice(make_client)
    stolen = browser.cookies["forge_session"]
    assert (await browser.post("/logout", follow_redirects=False)).status_code == 303
    browser.cookies.set("forge_session", stolen)
    await _refused(make_client, browser, script_headers)

    script = make_client()
    headers = await bearer(script, EMAIL)
    assert (await script.post("/auth/jwt/logout", headers=headers)).status_code == 204
    assert (await script.get("/api/v1/users/me", headers=headers)).status_code == 401


async def test_a_password_reset_ends_every_session(make_client, caplog):
    caplog.set_level("INFO", logger="forge.mail")
    browser, script_headers = await _logged_in_twice(make_client)
    other = make_client()
    assert (await other.post("/auth/forgot-password", json={"email": EMAIL})).status_code == 202
    token = re.findall(r"reset-password\?token=(\S+)", caplog.text)[-1]
    assert (await other.post("/auth/reset-password", json={"token": token, "password": "brand-new-secret-5"})).status_code == 200
    await _refused(make_client, browser, script_headers)
    assert (await bearer(make_client(), EMAIL, "brand-new-secret-5"))


async def test_deactivation_and_a_role_change_end_sessions(app, make_client, admin_client):
    browser, script_headers = await _logged_in_twice(make_client)
    user_id = (await browser.get("/api/v1/users/me")).json()["id"]
    changed = await admin_client.patch(f"/api/v1/admin/users/{user_id}", json={"role": "annotator"})
    assert changed.status_code == 200, changed.text
    await _refused(make_client, browser, script_headers)

    script_headers = await bearer(make_client(), EMAIL)
    unchanged = await admin_client.patch(f"/api/v1/admin/users/{user_id}", json={"cvat_username": "sess"})
    assert unchanged.status_code == 200
    assert (await make_client().get("/api/v1/users/me", headers=script_headers)).status_code == 200  # nothing ended
    await admin_client.patch(f"/api/v1/admin/users/{user_id}", json={"is_active": False})
    await admin_client.patch(f"/api/v1/admin/users/{user_id}", json={"is_active": True})
    assert (await make_client().get("/api/v1/users/me", headers=script_headers)).status_code == 401


async def test_a_token_without_the_current_version_is_refused(app, make_client):
    import jwt

    from src.auth.users import jwt_keys

    browser, script_headers = await _logged_in_twice(make_client)
    token = script_headers["Authorization"].split()[1]
    claims = jwt.decode(token, jwt_keys().public_pem, algorithms=["RS256"], audience="fastapi-users:auth")
    assert claims["ver"] == 0
    for forged in ({k: v for k, v in claims.items() if k != "ver"}, {**claims, "ver": 1}, {**claims, "ver": "0"}):
        signed = jwt.encode(forged, jwt_keys().private_pem, algorithm="RS256")
        assert (await make_client().get("/api/v1/users/me", headers={"Authorization": f"Bearer {signed}"})).status_code == 401


async def test_profile_page_changes_the_password_and_ends_other_sessions(make_client):
    browser, script_headers = await _logged_in_twice(make_client)
    second_browser = make_client()
    await login_cookie(second_browser, EMAIL)
    page = await browser.get("/profile", headers={"accept": "text/html"})
    assert 'action="/profile/password"' in page.text and 'name="current_password"' in page.text

    async def change(current: str, new: str, confirm: str | None = None):
        return await browser.post("/profile/password", headers={"HX-Request": "true"}, data={
            "current_password": current, "new_password": new, "confirm_password": new if confirm is None else confirm})

    wrong = await change("not-my-password", "another-secret-8")
    assert wrong.status_code == 400 and "current password is wrong" in wrong.text and "<html" not in wrong.text
    assert "differ" in (await change("correct-horse-9", "another-secret-8", "another-secret-9")).text
    assert "most common" in (await change("correct-horse-9", "password123")).text
    assert "at least 8" in (await change("correct-horse-9", "short")).text
    assert "at most 128" in (await change("correct-horse-9", "long-" * 30)).text
    assert (await browser.get("/api/v1/users/me")).status_code == 200  # refusals end nothing

    done = await change("correct-horse-9", "another-secret-8")
    assert done.status_code == 200 and "has been changed" in done.text
    assert "forge_session=" in done.headers["set-cookie"]
    assert (await browser.get("/api/v1/users/me")).status_code == 200  # this browser stays logged in
    await _refused(make_client, second_browser, script_headers)
    assert (await make_client().post("/auth/jwt/login", data={"username": EMAIL, "password": "correct-horse-9"})).status_code == 400
    assert await bearer(make_client(), EMAIL, "another-secret-8")


async def test_wrong_current_passwords_count_towards_the_login_limit(make_client, monkeypatch):
    from src.config import get_settings

    monkeypatch.setattr(get_settings(), "login_window_seconds", 120)  # a slow machine stays in one window
    browser, _ = await _logged_in_twice(make_client)
    for _ in range(get_settings().login_max_failures):
        await browser.post("/profile/password", data={"current_password": "guess-guess-1", "new_password": "x" * 10,
                                                      "confirm_password": "x" * 10}, headers={"HX-Request": "true"})
    blocked = await browser.post("/profile/password", headers={"HX-Request": "true"}, data={
        "current_password": "correct-horse-9", "new_password": "another-secret-8", "confirm_password": "another-secret-8"})
    assert blocked.status_code == 429 and "Too many" in blocked.text


@pytest.mark.parametrize("password", ["password123", "iloveyou1", "Sunshine1", "qwertyuiop"])
async def test_common_passwords_are_refused(client, password):
    response = await client.post("/auth/register", json={"email": "common@example.com", "password": password})
    assert response.status_code == 400 and "most common" in response.text
    token = await csrf_token(client)
    page = await client.post("/register", headers={"HX-Request": "true"},
                             data={"email": "common@example.com", "password": password, "csrf_token": token})
    assert page.status_code == 422 and "most common" in page.text


def test_the_common_password_list_is_bundled():
    from src.auth.users import common_passwords

    words = common_passwords()
    assert len(words) == 10_000 and "password" in words and all(len(w) >= 8 for w in words)


BAD_NEXT = ["//evil.example/", "/\\evil.example/", "/%5Cevil.example/", "/%2F/evil.example/", "/%2f%2fevil.example",
            "/%252F%252Fevil.example", "https://evil.example/", "javascript:alert(1)", "/\t/evil.example",
            "/%09/evil.example", " /x", "evil.example", "/caf\u00e9", "/\u2215\u2215evil.example", "/%5C%5Cevil.example", "\\\\evil.example", "/%0d%0aSet-Cookie:x"]


@pytest.mark.parametrize("next_url", BAD_NEXT)
async def test_next_after_login_is_only_a_same_site_path(make_client, next_url):
    from urllib.parse import quote

    c = make_client()
    await register(c, "redir@example.com")
    page = await c.get(f"/login?next={quote(next_url, safe='')}")
    assert 'name="next" value="/"' in page.text
    token = await csrf_token(c)
    form = {"email": "redir@example.com", "password": "correct-horse-9", "next": next_url, "csrf_token": token}
    plain = await c.post("/login", data=form, follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == "/"
    htmx = await c.post("/login", data=form, headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx.headers["hx-redirect"] == "/"


@pytest.mark.parametrize("next_url", ["/videos", "/datasets/1/editor?frame=3", "/review/jobs/5#top", "/a%20b"])
async def test_same_site_next_is_followed_on_both_paths(make_client, next_url):
    c = make_client()
    await register(c, "redir@example.com")
    token = await csrf_token(c)
    form = {"email": "redir@example.com", "password": "correct-horse-9", "next": next_url, "csrf_token": token}
    assert (await c.post("/login", data=form, follow_redirects=False)).headers["location"] == next_url
    assert (await c.post("/login", data=form, headers={"HX-Request": "true"})).headers["hx-redirect"] == next_url


async def test_login_required_redirect_keeps_the_path_encoded(client):
    response = await client.get("/profile", follow_redirects=False)
    assert response.headers["location"] == "/login?next=/profile"


async def test_csrf_is_not_skipped_for_an_authorization_header(make_client):
    browser, _ = await _logged_in_twice(make_client)
    token = browser.headers.pop("X-CSRF-Token")
    for authorization in ("Bearer nonsense", "Basic Zm9vOmJhcg==", "bearer "):
        refused = await browser.post("/auth/logout", headers={"Authorization": authorization})
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"], authorization
    assert (await browser.get("/api/v1/users/me")).status_code == 200  # nothing was logged out
    assert (await browser.post("/auth/logout", headers={"Authorization": "Bearer nonsense", "X-CSRF-Token": token})).status_code == 204


async def test_bearer_scripts_need_no_csrf_token(make_client):
    script = make_client()
    await register(script, "script@example.com")
    headers = await bearer(script, "script@example.com")
    assert "forge_session" not in script.cookies
    assert (await script.post("/auth/jwt/logout", headers=headers)).status_code == 204


async def test_the_csrf_token_is_not_accepted_in_the_query_string(make_client):
    browser, _ = await _logged_in_twice(make_client)
    token = browser.headers.pop("X-CSRF-Token")
    refused = await browser.post(f"/auth/logout?csrf_token={token}")
    assert refused.status_code == 403
    assert (await browser.post("/auth/logout", data={"csrf_token": token})).status_code == 204


async def test_a_multipart_form_carries_the_token_as_its_first_field(user_client):
    token = user_client.headers.pop("X-CSRF-Token")
    files = {"file": ("notes.pt", b"not a model at all", "application/octet-stream")}
    first = await user_client.post("/models/upload", data={"csrf_token": token, "name": "bad"}, files=files,
                                   headers={"accept": "text/html"})
    assert first.status_code != 403
    query = await user_client.post(f"/models/upload?csrf_token={token}", data={"name": "bad"}, files=files)
    assert query.status_code == 403


async def test_login_csrf_is_refused(make_client):
    """Another site cannot post its own credentials to log the browser into its account."""
    victim = make_client()
    await register(victim, "attacker@example.com")
    for path, form in [("/auth/login", {"username": "attacker@example.com", "password": "correct-horse-9"}),
                       ("/login", {"email": "attacker@example.com", "password": "correct-horse-9"}),
                       ("/register", {"email": "attacker2@example.com", "password": "correct-horse-9"})]:
        refused = await victim.post(path, data=form, follow_redirects=False)
        assert refused.status_code == 403, path
        assert "forge_session" not in victim.cookies
        forged = await victim.post(path, data={**form, "csrf_token": "guessed"}, follow_redirects=False)
        assert forged.status_code == 403, path
    token = await csrf_token(victim)
    ok = await victim.post("/login", data={"email": "attacker@example.com", "password": "correct-horse-9",
                                           "csrf_token": token}, follow_redirects=False)
    assert ok.status_code == 303 and "forge_session" in victim.cookies


async def test_the_plain_video_upload_form_works_with_its_first_field_token(user_client):
    """The no-JavaScript upload form: its csrf_token field comes first, the file streams after it."""
    from tests.conftest import SHARED_DATA

    page = await user_client.get("/videos", headers={"accept": "text/html"})
    form = page.text[page.text.index('id="upload-form"'):]
    assert form.index('name="csrf_token"') < form.index('name="file"') and "?csrf_token" not in page.text
    token = user_client.headers.pop("X-CSRF-Token")
    path = SHARED_DATA / "sequences/otb_crossing/video.mp4"
    with path.open("rb") as f:
        done = await user_client.post("/videos/upload", data={"csrf_token": token},
                                      files={"file": ("crossing.mp4", f, "video/mp4")}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/videos"
    with path.open("rb") as f:
        refused = await user_client.post("/videos/upload", files={"file": ("crossing.mp4", f, "video/mp4")})
    assert refused.status_code == 403
    assert len((await user_client.get("/api/v1/videos")).json()) == 1
