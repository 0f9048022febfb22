"""The CVAT test double on a real port, with the app's settings pointed at it."""

from __future__ import annotations

import pytest

from tests.conftest import login_cookie, register, set_role
from tests.review.cvat_double import CvatDouble

WEBHOOK_SECRET = "cvat-webhook-secret-for-tests"


@pytest.fixture
def cvat(monkeypatch):
    from src.config import get_settings

    double = CvatDouble()
    double.start()
    settings = get_settings()
    for name, value in {"cvat_url": double.url, "cvat_username": double.username,
                        "cvat_password": double.password, "cvat_token": None, "cvat_org": None}.items():
        monkeypatch.setattr(settings, name, value)
    from pydantic import SecretStr

    monkeypatch.setattr(settings, "cvat_password", SecretStr(double.password))
    monkeypatch.setattr(settings, "cvat_webhook_secret", SecretStr(WEBHOOK_SECRET))
    monkeypatch.setattr(settings, "review_job_size", 4)
    from src.review import cvat as adapter

    fast = {"status_check_period": 0.01, "backoff_s": 0.01, "timeout_s": 30.0}
    original = adapter.CvatConfig.from_settings.__func__
    monkeypatch.setattr(adapter.CvatConfig, "from_settings",
                        classmethod(lambda cls, s=None: _fast(original(cls, s), fast)))
    yield double
    double.stop()
    assert double.errors == [], "the CVAT double saw requests or answers outside the schema:\n" + "\n".join(double.errors)


def _fast(config, fields):
    import dataclasses

    return None if config is None else dataclasses.replace(config, **fields)


@pytest.fixture
async def annotators(app, make_client):
    """Two logged-in annotators (anna, rob): an annotator and a second person to validate."""
    clients = []
    for email in ("anna@example.com", "rob@example.com"):
        c = make_client()
        await register(c, email)
        await set_role(app, email, "annotator")
        await login_cookie(c, email)
        clients.append(c)
    return clients
