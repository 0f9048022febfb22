"""Videos JSON API: upload, import by URL, list, read, delete, frames, thumbnail."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response

from src.auth.dependencies import CurrentUser
from src.database import SessionDep
from src.pagination import LIST_RESPONSES, PageDep, SearchQuery
from src.pagination import set_headers as set_page_headers
from src.storage import file_response, get_storage
from src.videos import service
from src.videos.dependencies import OwnedVideo
from src.videos.exceptions import VideoNotFound
from src.videos.models import VideoStatus
from src.videos.schemas import VideoImport, VideoRead

router = APIRouter(prefix="/api/v1/videos", tags=["videos"])
FRAME_CACHE = "private, max-age=86400, immutable"


@router.post("", status_code=201, response_model=VideoRead,
             openapi_extra={"requestBody": {"content": {"multipart/form-data": {"schema": {
                 "type": "object", "required": ["file"],
                 "properties": {"file": {"type": "string", "format": "binary"}}}}}}})
async def upload_video(request: Request, session: SessionDep, user: CurrentUser):
    """Upload a video (multipart field `file`), streamed to disk; refused with 413/422 on quota or bad file."""
    return await service.upload(session, request, user=user, usage=request.app.state.usage)


@router.post("/import", status_code=202, response_model=VideoRead)
async def import_video(body: VideoImport, request: Request, session: SessionDep, user: CurrentUser):
    """Download a video from an http(s) link in the background; poll GET /api/v1/videos/{id}."""
    return await service.request_import(session, request.app.state.redis, user=user, url=str(body.url), name=body.name,
                                        usage=request.app.state.usage)


@router.get("", response_model=list[VideoRead], responses=LIST_RESPONSES)
async def list_videos(request: Request, response: Response, session: SessionDep, user: CurrentUser, page: PageDep,
                      status: VideoStatus | None = None, q: SearchQuery = None):
    """My videos, newest first; `?page=&per_page=` for one page (unset: all), filtered by `status` and `q`."""
    items, total = await service.search_for_owner(session, user=user, page=page, status=status, q=q)
    set_page_headers(request, response, page, total)
    return items


@router.get("/{video_id}", response_model=VideoRead)
async def read_video(video: OwnedVideo):
    return video


@router.delete("/{video_id}", status_code=204)
async def delete_video(request: Request, video: OwnedVideo, session: SessionDep, background: BackgroundTasks):
    prefixes = await service.delete(session, video=video, before_delete=request.app.state.video_ports.before_delete)
    background.add_task(service.delete_files, prefixes)  # after the commit


@router.get("/{video_id}/frames/{n}", responses={200: {"content": {"image/jpeg": {}}}})
async def read_frame(video: OwnedVideo, n: int, width: Annotated[int | None, Query(ge=16, le=8192)] = None):
    """Frame n (0-based, exact seek) as JPEG; `width` scales it down keeping the aspect ratio."""
    if video.storage_key is None:
        raise VideoNotFound()
    jpeg = await service.frame_jpeg(video, n=n, width=width)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": FRAME_CACHE})


@router.get("/{video_id}/thumbnail", responses={200: {"content": {"image/jpeg": {}}}})
async def read_thumbnail(video: OwnedVideo):
    storage = get_storage()
    key = service.thumb_key(video.id)
    if video.storage_key is None or not await asyncio.to_thread(storage.exists, key):
        raise VideoNotFound()
    return file_response(key, media_type="image/jpeg", headers={"Cache-Control": FRAME_CACHE})
