"""Video pages: "My videos" (upload, import, list, delete) and the video page with its scrubber."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Form, Request
from pydantic import ValidationError

from src.auth.dependencies import PageUser
from src.database import SessionDep
from src.exceptions import Unprocessable
from src.pages import attempt
from src.quotas import service as quota_service
from src.templating import redirect_to, render
from src.videos import service
from src.videos.dependencies import PageVideo
from src.videos.schemas import VideoImport

router = APIRouter(include_in_schema=False)


async def _list_context(request: Request, session, user) -> dict:
    return {
        "videos": await service.list_for_owner(session, user=user),
        "upload_limit": await quota_service.upload_byte_limit(session, user_id=user.id, usage=request.app.state.usage),
    }


@router.get("/videos", name="videos_page")
async def videos_page(request: Request, session: SessionDep, user: PageUser):
    context = await _list_context(request, session, user)
    polling = any(v.status == "importing" for v in context["videos"])
    return render(request, "videos/list.html", {**context, "polling": polling}, block="video_list")


@router.post("/videos/import", name="video_import_submit")
async def import_submit(request: Request, session: SessionDep, user: PageUser, url: str = Form(""), name: str = Form("")):
    async def start():  # the link is checked by the API's schema (VideoImport), in the page's words
        try:
            body = VideoImport(url=url, name=name or None)
        except ValidationError:
            raise Unprocessable("Enter a full http:// or https:// link.") from None
        await service.request_import(session, request.app.state.redis, user=user, url=str(body.url), name=body.name,
                                     usage=request.app.state.usage)

    if error := (await attempt(session, start())).error:
        context = {**await _list_context(request, session, user), "import_error": error.message, "import_url": url}
        return render(request, "videos/list.html", context, block="import_form", status_code=error.status_code)
    return redirect_to(request, "videos_page")


@router.get("/videos/{video_id}", name="video_page")
async def video_page(request: Request, video: PageVideo, user: PageUser, session: SessionDep):
    datasets = await request.app.state.video_ports.datasets_of(session, video_id=video.id)
    return render(request, "videos/detail.html", {"video": video, "datasets": datasets})


@router.post("/videos/{video_id}/delete", name="video_delete_submit")
async def delete_submit(request: Request, video: PageVideo, session: SessionDep, background: BackgroundTasks):
    prefixes = await service.delete(session, video=video, before_delete=request.app.state.video_ports.before_delete)
    background.add_task(service.delete_files, prefixes)
    return redirect_to(request, "videos_page")


@router.post("/videos/upload", name="video_upload_submit")
async def upload_submit(request: Request, session: SessionDep, user: PageUser):
    """Plain-form fallback of the upload (the page's script posts to the API with a progress bar)."""
    uploading = service.upload(session, request, user=user, usage=request.app.state.usage)
    if error := (await attempt(session, uploading)).error:
        context = {**await _list_context(request, session, user), "upload_error": error.message}
        return render(request, "videos/list.html", context, status_code=error.status_code)
    return redirect_to(request, "videos_page")
