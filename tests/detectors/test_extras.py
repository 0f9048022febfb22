"""Without torch + ultralytics the model pages say that detector features need
`make up WITH_ML=1` and offer no upload, Train or Evaluate; the API refuses with 503."""

from __future__ import annotations

import pytest

from src.detectors import extras


@pytest.fixture
def no_ml(monkeypatch):
    monkeypatch.setattr(extras, "missing", lambda: ("torch", "ultralytics"))


async def test_models_page_explains_and_offers_no_training(user_client, no_ml):
    page = await user_client.get("/models")
    assert page.status_code == 200
    assert 'id="ml-missing"' in page.text and "make up WITH_ML=1" in page.text
    assert 'id="train-model"' not in page.text and 'id="upload-model"' not in page.text
    assert "ModuleNotFoundError" not in page.text


async def test_the_api_refuses_with_the_same_words(user_client, no_ml):
    response = await user_client.post("/api/v1/models/train", json={"dataset_ids": [], "name": "m"})
    assert response.status_code in (422, 503)  # an empty list may be refused by the schema first
    response = await user_client.post("/api/v1/models/train", json={
        "dataset_ids": ["00000000-0000-0000-0000-000000000000"], "name": "m"})
    assert response.status_code == 503 and "make up WITH_ML=1" in response.json()["detail"]


async def test_with_ml_the_forms_are_there(user_client, monkeypatch):
    monkeypatch.setattr(extras, "missing", lambda: ())
    page = await user_client.get("/models")
    assert 'id="upload-model"' in page.text and 'id="ml-missing"' not in page.text


def test_missing_is_found_without_importing():
    import sys

    extras.missing.cache_clear()
    before = "torch" in sys.modules
    extras.missing()
    assert ("torch" in sys.modules) == before
