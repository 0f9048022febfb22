"""Video pages: "My videos" (upload, import, list, delete) and the video page with its scrubber."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Form, Request

from src.auth.dependencies import PageUser
from src.database import SessionDep
from src.exceptions import DomainError
from src.quotas import service as quota_service
from src.templating import redirect, render
from src.videos import service
from src.videos.dependencies import PageVideo

router = APIRouter(include_in_schema=False)


async def _list_context(session, user) -> dict:
    return {
        "videos": await service.list_for_owner(session, user=user),
        "upload_limit": await quota_service.upload_byte_limit(session, user_id=user.id),
    }


@router.get("/videos", name="videos_page")
async def videos_page(request: Request, session: SessionDep, user: PageUser):
    context = await _list_context(session, user)
    polling = any(v.status == "importing" for v in context["videos"])
    return render(request, "videos/list.html", {**context, "polling": polling}, block="video_list")


@router.post("/videos/import", name="video_import_submit")
async def import_submit(request: Request, session: SessionDep, user: PageUser, url: str = Form(""), name: str = Form("")):
    try:
        from src.videos.schemas import VideoImport

        body = VideoImport(url=url, name=name or None)
        await service.request_import(session, request.app.state.redis, user=user, url=str(body.url), name=body.name)
    except DomainError as error:
        context = {**await _list_context(session, user), "import_error": error.message, "import_url": url}
        return render(request, "videos/list.html", context, block="import_form", status_code=error.status_code)
    except ValueError:
        context = {**await _list_context(session, user), "import_error": "Enter a full http:// or https:// link.", "import_url": url}
        return render(request, "videos/list.html", context, block="import_form", status_code=422)
    return redirect(request, "/videos")


@router.get("/videos/{video_id}", name="video_page")
async def video_page(request: Request, video: PageVideo, user: PageUser, session: SessionDep):
    from sqlalchemy import select

    from src.datasets.models import Dataset

    datasets = (await session.scalars(select(Dataset).where(Dataset.video_id == video.id).order_by(Dataset.created_at))).all()
    return render(request, "videos/detail.html", {"video": video, "datasets": datasets})


@router.post("/videos/{video_id}/delete", name="video_delete_submit")
async def delete_submit(request: Request, video: PageVideo, session: SessionDep, background: BackgroundTasks):
    prefixes = await service.delete(session, video=video)
    background.add_task(service.delete_files, prefixes)
    return redirect(request, "/videos")


@router.post("/videos/upload", name="video_upload_submit")
async def upload_submit(request: Request, session: SessionDep, user: PageUser):
    """Plain-form fallback of the upload (the page's script posts to the API with a progress bar)."""
    try:
        await service.upload(session, request, user=user)
    except DomainError as error:
        context = {**await _list_context(session, user), "upload_error": error.message}
        return render(request, "videos/list.html", context, status_code=error.status_code)
    return redirect(request, "/videos")
