from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from src.auth.dependencies import CurrentUser, PageUser
from src.database import SessionDep
from src.videos import service
from src.videos.models import Video


async def valid_video_id(video_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Video:
    return await service.get_for_user(session, video_id=video_id, user=user)


async def valid_page_video_id(video_id: uuid.UUID, session: SessionDep, user: PageUser) -> Video:
    return await service.get_for_user(session, video_id=video_id, user=user)


OwnedVideo = Annotated[Video, Depends(valid_video_id)]
PageVideo = Annotated[Video, Depends(valid_page_video_id)]
