from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import SHARED_DATA

SEQUENCES = sorted(p.parent for p in (SHARED_DATA / "sequences").glob("*/video.mp4"))


async def upload(client: httpx.AsyncClient, path: Path, name: str | None = None, **kwargs) -> httpx.Response:
    with path.open("rb") as f:
        return await client.post("/api/v1/videos", files={"file": (name or path.name, f, "video/mp4")}, **kwargs)


async def set_quota(app, email: str, **changes) -> None:
    from sqlalchemy import select

    from src.auth.models import User
    from src.database import unit_of_work
    from src.quotas import service as quota_service

    async with unit_of_work(app.state.sessionmaker) as session:
        user = (await session.scalars(select(User).where(User.email == email))).one()
        await quota_service.set_overrides(session, user_id=user.id, changes=changes)


def stored_files(root: Path) -> list[Path]:
    """Files in storage other than the (empty) tmp dir."""
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
def storage_root():
    from src.config import get_settings

    return get_settings().storage_path


@pytest.fixture
def crossing() -> Path:
    path = SHARED_DATA / "sequences" / "otb_crossing" / "video.mp4"
    if not path.exists():
        pytest.skip(f"shared data missing: {path}")
    return path
