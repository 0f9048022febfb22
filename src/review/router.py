"""Review JSON API (the built-in review page uses it; CVAT jobs are reviewed in CVAT)."""

from __future__ import annotations

import uuid

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from src.auth.dependencies import AdminUser, CurrentUser, require_role
from src.auth.models import Role
from src.database import SessionDep, on_commit
from src.pagination import LIST_RESPONSES, PageDep, slice_list
from src.pagination import set_headers as set_page_headers
from src.review import agreement, service
from src.review.models import JobStage, ReviewTask
from src.review.schemas import AssignIn, FrameDecisionIn, ReviewJobRead, ReviewOverviewRow, ReviewTaskRead, ValidationIn

router = APIRouter(prefix="/api/v1/review", tags=["review"])
JobId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a review job's id")]  # an int4 column
Frame = Annotated[int, Path(ge=0, le=2**31 - 1, description="a frame number of the video")]
admin_router = APIRouter(prefix="/api/v1/admin/review", tags=["admin"], dependencies=[Depends(require_role(Role.admin))])


@router.get("/jobs", response_model=list[ReviewJobRead], responses=LIST_RESPONSES)
async def my_jobs(request: Request, response: Response, session: SessionDep, user: CurrentUser, page: PageDep,
                  stage: Literal["annotation", "validation"] | None = None, dataset_id: uuid.UUID | None = None):
    """Jobs to annotate (assigned to me) and jobs waiting for my validation; `?page=&per_page=`,
    filtered by `stage` and `dataset_id`."""
    rows = [job for job, _, dataset, _ in await service.jobs_for_user(session, user=user)
            if (stage is None or job.stage.value == stage) and (dataset_id is None or dataset.id == dataset_id)]
    jobs, total = slice_list(rows, page)
    set_page_headers(request, response, page, total)
    return [await service.job_view(session, job=job) for job in jobs]


@router.get("/jobs/{job_id}", response_model=ReviewJobRead)
async def read_job(job_id: JobId, session: SessionDep, user: CurrentUser):
    job = await service.get_job_for(session, job_id=job_id, user=user)
    return await service.job_view(session, job=job)


@router.get("/jobs/{job_id}/frames/{frame}/image", responses={200: {"content": {"image/jpeg": {}}}})
async def frame_image(job_id: JobId, frame: Frame, session: SessionDep, user: CurrentUser,
                      width: Annotated[int | None, Query(ge=16, le=8192)] = None):
    """A frame of the job as JPEG, for the people the job is dealt to (its frames only)."""
    from src.videos import service as video_service

    job = await service.get_job_for(session, job_id=job_id, user=user)
    video_id, n = await service.frame_of_job(session, job=job, video_frame=frame)
    video = await video_service.get_or_raise(session, video_id=video_id)
    jpeg = await video_service.frame_jpeg(video, n=n, width=width)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.put("/jobs/{job_id}/frames/{frame}", response_model=ReviewJobRead)
async def decide_frame(job_id: JobId, frame: Frame, body: FrameDecisionIn, session: SessionDep, user: CurrentUser):
    """Accept the proposed boxes, fix them (`objects`), or reject the frame (dropped from the dataset)."""
    job = await service.get_job_for(session, job_id=job_id, user=user)
    await service.decide(session, job=job, user=user, video_frame=frame, decision=body.decision, corrected=body.objects)
    return await service.job_view(session, job=job)


@router.post("/jobs/{job_id}/complete", response_model=ReviewJobRead)
async def complete(job_id: JobId, request: Request, session: SessionDep, user: CurrentUser):
    """The annotator is done: the job goes to validation by a second person (or, in double
    review, is accepted with its QC pair when they agree enough)."""
    job = await service.get_job_for(session, job_id=job_id, user=user)
    await service.complete(session, request.app.state.redis, job=job, user=user)
    return await service.job_view(session, job=job)


@router.post("/jobs/{job_id}/validate", response_model=ReviewJobRead)
async def validate(job_id: JobId, body: ValidationIn, request: Request, session: SessionDep, user: CurrentUser):
    """Accept (the corrections are imported; the last acceptance resumes the dataset) or reject with an issue."""
    job = await service.get_job_for(session, job_id=job_id, user=user)
    await service.validate(session, request.app.state.redis, job=job, user=user, accept=body.accept, issue=body.issue)
    return await service.job_view(session, job=job)


@router.post("/jobs/{job_id}/assign", response_model=ReviewJobRead)
async def assign(job_id: JobId, body: AssignIn, session: SessionDep, admin: AdminUser):
    """Admin: give the job (in validation: its review) to another person; CVAT jobs are reassigned in CVAT too."""
    from src.review import cvat_sync
    from src.review.cvat import CvatConfig

    job = await service.get_job_for(session, job_id=job_id, user=admin)
    await service.assign(session, job=job, user_id=body.user_id)
    view = await service.job_view(session, job=job)
    config = CvatConfig.from_settings()
    if config is not None and job.cvat_job_id is not None:
        # CVAT hears of it once the request's unit of work has committed the assignment
        # (logged, and left, when CVAT is down)
        on_commit(session, lambda: cvat_sync.push_assignee(session, job=job, config=config))
    return view


@router.get("/datasets/{dataset_id}", response_model=ReviewTaskRead)
async def review_of_dataset(dataset_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    """The review of my dataset: backend, state, the message to show (e.g. CVAT unreachable), job stages."""
    from src.datasets import service as dataset_service

    await dataset_service.get_for_user(session, dataset_id=dataset_id, user=user)
    task = await service.get_task(session, dataset_id=dataset_id)
    if task is None:
        from src.review.exceptions import ReviewJobNotFound

        raise ReviewJobNotFound()
    jobs = await service.jobs_of_task(session, task_id=task.id)
    return ReviewTaskRead(backend=task.backend.value, state=task.state.value, message=task.message,
                          jobs={stage.value: sum(j.stage == stage for j in jobs) for stage in JobStage})


@admin_router.get("/agreement")
async def review_agreement(session: SessionDep, admin: AdminUser, dataset_id: uuid.UUID | None = None):
    """QC: box F1 (IoU >= 0.5) and label kappa per pair over accepted frames (engine proposals vs each
    annotator, and annotator vs annotator on double-reviewed frames), for one dataset or, without
    `dataset_id`, over every reviewed dataset."""
    from sqlalchemy import select

    ids = [dataset_id] if dataset_id else (await session.scalars(select(ReviewTask.dataset_id))).all()
    merged: dict[str, dict] = {}
    for did in ids:
        for who, frames in (await service.reviewed_boxes(session, dataset_id=did)).items():
            merged.setdefault(who, {}).update({(str(did), f): boxes for f, boxes in frames.items()})
    return {"dataset_id": str(dataset_id) if dataset_id else None, "iou_threshold": agreement.IOU_THRESHOLD,
            "pairs": agreement.by_pair(merged)}


@admin_router.get("", response_model=list[ReviewOverviewRow])
async def review_overview(session: SessionDep, admin: AdminUser):
    """Datasets in review and recently reviewed: jobs by stage, and the QC agreement per job pair
    and per annotator pair."""
    return await service.review_overview(session)
