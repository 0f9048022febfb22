"""Review JSON API (the built-in review page uses it; CVAT jobs are reviewed in CVAT)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from src.auth.dependencies import ReviewerUser
from src.database import SessionDep
from src.review import service
from src.review.schemas import FrameDecisionIn, ReviewJobRead, ValidationIn

router = APIRouter(prefix="/api/v1/review", tags=["review"])


@router.get("/jobs", response_model=list[ReviewJobRead])
async def my_jobs(session: SessionDep, user: ReviewerUser):
    """Jobs to annotate (assigned to me) and jobs waiting for my validation."""
    return [await service.job_view(session, job=job) for job, *_ in await service.jobs_for_user(session, user=user)]


@router.get("/jobs/{job_id}", response_model=ReviewJobRead)
async def read_job(job_id: int, session: SessionDep, user: ReviewerUser):
    job = await service.get_job_for(session, job_id=job_id, user=user)
    return await service.job_view(session, job=job)


@router.put("/jobs/{job_id}/frames/{frame}", response_model=ReviewJobRead)
async def decide_frame(job_id: int, frame: int, body: FrameDecisionIn, session: SessionDep, user: ReviewerUser):
    """Accept the proposed boxes, fix them (`objects`), or reject the frame (dropped from the dataset)."""
    job = await service.get_job_for(session, job_id=job_id, user=user)
    await service.decide(session, job=job, user=user, video_frame=frame, decision=body.decision, corrected=body.objects)
    return await service.job_view(session, job=job)


@router.post("/jobs/{job_id}/complete", response_model=ReviewJobRead)
async def complete(job_id: int, session: SessionDep, user: ReviewerUser):
    """The annotator is done: the job goes to validation by a second person."""
    job = await service.get_job_for(session, job_id=job_id, user=user)
    await service.complete_annotation(session, job=job, user=user)
    return await service.job_view(session, job=job)


@router.post("/jobs/{job_id}/validate", response_model=ReviewJobRead)
async def validate(job_id: int, body: ValidationIn, request: Request, session: SessionDep, user: ReviewerUser):
    """Accept (the corrections are imported; the last acceptance resumes the dataset) or reject with an issue."""
    job = await service.get_job_for(session, job_id=job_id, user=user)
    finished = await service.validate(session, job=job, user=user, accept=body.accept, issue=body.issue)
    view = await service.job_view(session, job=job)
    await session.commit()
    if finished:
        await service.enqueue_resume(request.app.state.redis, view.dataset_id)
    return view
