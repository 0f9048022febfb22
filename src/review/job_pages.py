"""HTML: "My review jobs" (`/review`) and "Open" (`/review/jobs/{id}/open`), which leads to the
CVAT job or to the built-in review page `/review/jobs/{id}`."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import RedirectResponse

from src.auth.models import Role
from src.auth.dependencies import PageUser
from src.database import SessionDep
from src.review import service
from src.templating import render

router = APIRouter(include_in_schema=False)


def _reviewer(user) -> None:
    if user.role not in (Role.annotator, Role.admin):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "This page is for annotators.")


@router.get("/review")
async def my_review_jobs(request: Request, session: SessionDep, user: PageUser):
    _reviewer(user)
    rows = [{"job": job, "task": task, "dataset": dataset, "frames": n,
             "to_do": "validate" if job.stage.value == "validation" else "annotate"}
            for job, task, dataset, n in await service.jobs_for_user(session, user=user)]
    return render(request, "review/jobs.html", {"rows": rows})


@router.get("/review/jobs/{job_id}/open")
async def open_job(job_id: int, session: SessionDep, user: PageUser):
    _reviewer(user)
    job = await service.get_job_for(session, job_id=job_id, user=user)
    task = await session.get(service.ReviewTask, job.task_id)
    return RedirectResponse(service.job_url(job, task), status_code=303)
