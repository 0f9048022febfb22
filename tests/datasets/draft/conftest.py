"""A real uploaded video (OTB Crossing: 120 frames, 360x240) and a draft on it."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import SHARED_DATA

CROSSING = SHARED_DATA / "sequences/otb_crossing/video.mp4"


async def upload_video(client: httpx.AsyncClient, path=CROSSING, headers=None) -> dict:
    with open(path, "rb") as file:
        response = await client.post(
            "/api/v1/videos", files={"file": (path.name, file, "video/mp4")}, headers=headers or {}
        )
    assert response.status_code == 201, response.text
    return response.json()


async def create_draft(client: httpx.AsyncClient, video_id: str, classes=("helmet", "person"), name="Crossing") -> dict:
    body = {"video_id": video_id, "name": name, "classes": list(classes)}
    response = await client.post("/api/v1/datasets", json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def uploaded_video(user_client) -> dict:
    """The JSON of OTB Crossing uploaded by user@example.com."""
    return await upload_video(user_client)


@pytest.fixture
async def draft(user_client, uploaded_video) -> dict:
    """A draft of user@example.com on the uploaded video, classes helmet and person."""
    return await create_draft(user_client, uploaded_video["id"])
