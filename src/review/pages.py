"""Review pages: "My review jobs" (`/review`), "Open" (`/review/jobs/{id}/open`: the CVAT job
or the built-in page) and the built-in review page: a job's hard frames one after another in
the box editor, pre-filled with the propagated boxes; accept / fix / reject each frame,
complete the job; a second person validates it (accept, or reject with an issue). Same
service as the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from src.datasets.draft import service as drafts
from src.auth.dependencies import PageUser
from src.auth.models import Role
from src.database import SessionDep
from src.datasets.models import Dataset
from src.pages import attempt
from src.review import service
from src.review.models import FrameDecision, JobStage, ReviewJob, ReviewTask
from src.templating import path_for, redirect, redirect_to, render
from src.videos.models import Video

router = APIRouter(include_in_schema=False)


@router.get("/review", name="my_review_jobs")
async def my_review_jobs(request: Request, session: SessionDep, user: PageUser):
    rows = [{"job": job, "task": task, "dataset": dataset, "frames": n,
             "to_do": "validate" if job.stage == JobStage.validation else "annotate"}
            for job, task, dataset, n in await service.jobs_for_user(session, user=user)]
    return render(request, "review/jobs.html", {"rows": rows})


@router.get("/review/jobs/{job_id}/open", name="open_job")
async def open_job(job_id: int, session: SessionDep, user: PageUser):
    job = await service.get_job_for(session, job_id=job_id, user=user)
    task = await session.get(ReviewTask, job.task_id)
    return RedirectResponse(service.job_url(job, task), status_code=303)


@router.get("/review/jobs/{job_id}", name="review_page")
async def review_page(request: Request, job_id: int, session: SessionDep, user: PageUser, frame: int | None = None,
                      error: str = "", ask_complete: bool = False):
    job = await service.get_job_for(session, job_id=job_id, user=user)
    return await _job_page(request, session, user, job, frame=frame, error=error, ask_complete=ask_complete)


async def _job_page(request: Request, session, user, job: ReviewJob, *, frame: int | None = None, error: str = "",
                    ask_complete: bool = False, status_code: int = 200):
    """The review page of `job`; a refused form shows it again with the error, at its status."""
    task = await session.get(ReviewTask, job.task_id)
    dataset = await session.get(Dataset, task.dataset_id)
    video = await session.get(Video, dataset.video_id)
    classes = await drafts.list_classes(session, dataset_id=dataset.id)
    frames = await service.frames_of_job(session, job_id=job.id)
    order = [f.video_frame for f in frames]
    current = frame if frame in order else order[0]
    annotating = job.stage == JobStage.annotation and service.can_annotate(job, user)
    validating = job.stage == JobStage.validation and service.can_validate(job, user)
    editor = {
        "dataset_id": str(dataset.id), "video_id": str(video.id), "width": video.width, "height": video.height,
        "frame_count": video.frame_count, "fps": video.fps, "frame": current, "editable": annotating,
        "classes": [{"id": c.id, "name": c.name, "color": c.color} for c in classes],
        "keyframes": [{"frame": f.video_frame, "objects": f.corrected if f.corrected is not None else f.proposed}
                      for f in frames],
        "review": {"job_id": job.id, "frames": order},
        "attributes": [drafts.read_attribute(row, label)
                       for row, label in await drafts.list_attributes(session, dataset_id=dataset.id)],
    }
    context = {
        "job": job, "dataset": dataset, "video": video, "classes": classes, "frames": frames, "frame": current,
        "editor": editor, "editable": annotating, "annotating": annotating, "validating": validating, "error": error,
        "back_url": path_for(request, "my_review_jobs"), "editor_title": f"review job #{job.id}",
        "readonly_message": f"This job is in {job.stage.value}; its boxes are shown read-only.",
        "current": next(f for f in frames if f.video_frame == current),
        "pending": [f.video_frame for f in frames if f.decision == FrameDecision.pending],
        "ask_complete": ask_complete, "self_review": service.self_reviewed(job, dataset),
        "player": _motion(request, job, video, frames, current, classes),
    }
    return render(request, "review/job.html", context, status_code=status_code)


@router.post("/review/jobs/{job_id}/frames/{frame}/decision", name="review_decide_submit")
async def decide_submit(request: Request, job_id: int, frame: int, session: SessionDep, user: PageUser,
                        decision: Annotated[FrameDecision, Form()]):
    job = await service.get_job_for(session, job_id=job_id, user=user)
    if decision == FrameDecision.fixed:
        decision = FrameDecision.accepted  # "fixed" comes from editing the boxes, not from this form
    call = service.decide(session, job=job, user=user, video_frame=frame, decision=decision, corrected=None)
    if error := (await attempt(session, call)).error:
        return await _job_page(request, session, user, job, frame=frame, error=error.message, status_code=error.status_code)
    if decision == FrameDecision.pending:  # a revert: stay on the frame
        return redirect(request, _job_url(request, job_id, frame=frame))
    order = [f.video_frame for f in await service.frames_of_job(session, job_id=job.id)]
    pending = [f.video_frame for f in await service.frames_of_job(session, job_id=job.id) if f.decision == FrameDecision.pending]
    later = [f for f in pending if order.index(f) > order.index(frame)]
    return redirect(request, _job_url(request, job_id, frame=(later or pending or [frame])[0]))


def _motion(request: Request, job, video, frames, current: int, classes) -> dict:
    """The frame player's data around the current hard frame: its boxes on it, the frames
    before and after (service.MOTION_CONTEXT) for the motion."""
    frame = next(f for f in frames if f.video_frame == current)
    names = {c.name for c in classes}
    boxes = [[*o["box"], o["class"]] for o in (frame.corrected if frame.corrected is not None else frame.proposed)
             if not o.get("gone") and o.get("class") in names]
    around = range(max(0, current - service.MOTION_CONTEXT), min(video.frame_count or 1, current + service.MOTION_CONTEXT + 1))
    src = path_for(request, "frame_image", job_id=job.id, frame="{n}")  # the player puts the frame number in
    return {"src": src, "width": video.width, "height": video.height,
            "fps": video.fps, "frames": list(around), "start": current, "boxes": {str(current): boxes},
            "colors": {c.name: c.color for c in classes}}


def _job_url(request: Request, job_id: int, **query) -> str:
    from urllib.parse import urlencode

    kept = urlencode({key: value for key, value in query.items() if value not in (None, "")})
    return f"{path_for(request, 'review_page', job_id=job_id)}?{kept}"


@router.post("/review/jobs/{job_id}/complete", name="review_complete_submit")
async def complete_submit(request: Request, job_id: int, session: SessionDep, user: PageUser,
                          pending_ok: Annotated[bool, Form()] = False):
    """Complete the job; with frames still pending, ask first (they would count as accepted)."""
    job = await service.get_job_for(session, job_id=job_id, user=user)
    if not pending_ok and await service.pending_count(session, job=job):
        return redirect(request, _job_url(request, job_id, ask_complete="true"))
    completed = await attempt(session, service.complete(session, request.app.state.redis, job=job, user=user))
    if error := completed.error:
        return await _job_page(request, session, user, job, error=error.message, status_code=error.status_code)
    task = await session.get(ReviewTask, job.task_id)
    if user.role == Role.user:  # an owner reviewing their own dataset goes back to it
        return redirect_to(request, "dataset_overview", dataset_id=task.dataset_id)
    return redirect_to(request, "my_review_jobs")


@router.post("/review/jobs/{job_id}/validate", name="review_validate_submit")
async def validate_submit(request: Request, job_id: int, session: SessionDep, user: PageUser,
                          accept: Annotated[bool, Form()] = False, issue: Annotated[str, Form()] = ""):
    job = await service.get_job_for(session, job_id=job_id, user=user)
    validated = await attempt(session, service.validate(session, request.app.state.redis, job=job, user=user,
                                                         accept=accept, issue=issue))
    if error := validated.error:  # nothing of the refused validation stays (it once recorded the reviewer)
        return await _job_page(request, session, user, job, error=error.message, status_code=error.status_code)
    return redirect_to(request, "my_review_jobs")
