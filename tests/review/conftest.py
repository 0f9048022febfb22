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


ACTION = {"class": "person", "name": "action", "kind": "select", "values": ["stand", "walk"], "mutable": True}


async def draft_walking(app, client) -> str:
    """A funded draft of OTB Crossing whose person carries a mutable `action` attribute, set to
    "walk" on the keyframe; its API base path."""
    from tests.datasets.conftest import make_draft, top_up

    await top_up(app, "user@example.com", 100_000)
    dataset = await make_draft(client)
    base = f"/api/v1/datasets/{dataset['id']}"
    assert (await client.post(f"{base}/attributes", json=ACTION)).status_code == 201
    (obj,) = (await client.get(f"{base}/keyframes")).json()["keyframes"][0]["objects"]
    response = await client.put(f"{base}/keyframes/0", json={"objects": [{**obj, "attributes": {"action": "walk"}}]})
    assert response.status_code == 200, response.text
    return base
