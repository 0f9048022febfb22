"""A drafted dataset on a real shared sequence, with its first ground-truth box as keyframe."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA
from tests.test_worker import burst_worker
from tests.videos.conftest import upload

CROSSING = SHARED_DATA / "sequences" / "otb_crossing"


def first_box(sequence: Path) -> list[float]:
    from src.vision.metrics import load_otb

    x1, y1, x2, y2 = (float(v) for v in load_otb(sequence / "groundtruth_rect.txt")[0])
    return [x1, y1, x2, y2]


async def top_up(app, email: str, cents: int) -> None:
    from sqlalchemy import select

    from src.auth.models import User
    from src.billing import service as billing_service
    from src.database import unit_of_work

    async with unit_of_work(app.state.sessionmaker) as session:
        user = (await session.scalars(select(User).where(User.email == email))).one()
        await billing_service.top_up(session, user_id=user.id, amount_cents=cents, reason="test credit", admin_id=None)


async def make_draft(client, *, name: str = "pedestrians", video: dict | None = None) -> dict:
    if not CROSSING.exists():
        pytest.skip(f"shared data missing: {CROSSING}")
    video = video or (await upload(client, CROSSING / "video.mp4")).json()
    draft = await client.post("/api/v1/datasets", json={"video_id": video["id"], "name": name, "classes": ["person"]})
    assert draft.status_code == 201, draft.text
    dataset = draft.json()
    keyframe = {"objects": [{"track_id": 1, "class": "person", "box": first_box(CROSSING)}]}
    response = await client.put(f"/api/v1/datasets/{dataset['id']}/keyframes/0", json=keyframe)
    assert response.status_code == 200, response.text
    return dataset


async def run_worker(redis_url: str) -> None:
    worker = burst_worker(redis_url)
    try:
        await worker.main()
    finally:
        await worker.close()


OPTIONS = {
    "sampling": {"mode": "all"},
    "split": {"train": 0.8, "valid": 0.2, "test": 0.0, "seed": 7},
    "formats": ["yolo", "coco", "cvat", "ava"],
    "review_budget": 0.0,
}
