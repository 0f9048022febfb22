"""A first-admin address that email-validator refuses is explained: why, and which work."""

from __future__ import annotations

import pytest

from src.auth.emails import problem


@pytest.mark.parametrize("address", ["admin@forge.test", "ops@forge.local", "admin@localhost"])
def test_reserved_domains_are_explained(address):
    why = problem(address)
    assert "special-use name reserved" in why and "RFC 6761" in why
    assert "admin@example.com" in why  # what works


@pytest.mark.parametrize("address", ["admin@example.com", "admin@forge.lan", "admin@localhost.localdomain"])
def test_accepted_addresses(address):
    assert problem(address) is None


def test_other_mistakes_keep_email_validators_reason():
    assert problem("admin.example.com").startswith("An email address must have an @-sign.")


def test_forge_up_stops_with_the_reason(monkeypatch):
    from src import cli
    from src.config import get_settings

    monkeypatch.setenv("FORGE_ADMIN_EMAIL", "admin@forge.test")
    get_settings.cache_clear()
    try:
        with pytest.raises(cli.SetupError) as caught:
            cli._admin_from_settings()  # refused before it touches the database
    finally:
        monkeypatch.delenv("FORGE_ADMIN_EMAIL")
        get_settings.cache_clear()
    message = str(caught.value)
    assert message.startswith("FORGE_ADMIN_EMAIL 'admin@forge.test' is not a valid e-mail address: its domain")
    assert ".test" in message and "admin@example.com" in message
