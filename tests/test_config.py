"""BASE_URL (the links in e-mails) follows HOST and PORT unless it is set."""

from __future__ import annotations

import pytest

from src.config import Settings, default_base_url


@pytest.fixture
def no_base_url(monkeypatch):
    for name in ("BASE_URL", "HOST", "PORT"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("host", "port", "expected"), [
    ("127.0.0.1", 8000, "http://127.0.0.1:8000"),
    ("127.0.0.1", 8123, "http://127.0.0.1:8123"),
    ("0.0.0.0", 9000, "http://localhost:9000"),
    ("::", 9000, "http://localhost:9000"),
    ("::1", 8000, "http://[::1]:8000"),
    ("forge.internal", 80, "http://forge.internal"),
])
def test_default_base_url(host, port, expected):
    assert default_base_url(host, port) == expected


def test_unset_base_url_follows_port(no_base_url, monkeypatch):
    monkeypatch.setenv("PORT", "8765")
    assert Settings(_env_file=None).base_url == "http://127.0.0.1:8765"
    monkeypatch.setenv("BASE_URL", "")  # empty, as in .env-example: the same
    assert Settings(_env_file=None).base_url == "http://127.0.0.1:8765"


def test_a_set_base_url_is_kept(no_base_url, monkeypatch):
    monkeypatch.setenv("PORT", "8765")
    monkeypatch.setenv("BASE_URL", "https://forge.example.com/")
    assert Settings(_env_file=None).base_url == "https://forge.example.com"


async def test_reset_mail_link_uses_the_port(no_base_url, monkeypatch, caplog):
    """The link in the reset mail (logged when no SMTP host is set) points at PORT."""
    import logging

    from src import config
    from src.auth.users import UserManager

    monkeypatch.setenv("PORT", "8765")
    config.get_settings.cache_clear()
    try:
        class FakeUser:
            email, id, is_active, is_verified = "someone@example.com", "id", True, True

        with caplog.at_level(logging.INFO, logger="forge.mail"):
            await UserManager(None, after_register=()).on_after_forgot_password(FakeUser(), "the-token")
    finally:
        monkeypatch.delenv("PORT")
        config.get_settings.cache_clear()
    assert "http://127.0.0.1:8765/reset-password?token=the-token" in caplog.text
