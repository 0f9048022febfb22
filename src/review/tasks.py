"""arq jobs of the CVAT review backend: create the task, sync jobs (webhook and poll), retry.

Each job is idempotent: it reads the state under a row lock and CVAT's current state.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from src.review import cvat_sync
from src.review.cvat import CvatConfig, CvatUnavailable
from src.review.cvat_sync import UNREACHABLE
from src.review.models import JobStage, ReviewBackend, ReviewJob, ReviewTask, TaskState
from src.jobs import job_session, run_cpu

log = logging.getLogger("forge.review")


async def cvat_create_task(ctx: dict, task_id: int) -> str:
    config = CvatConfig.from_settings()
    if config is None:
        return "no CVAT configured"

    async def render(*args):
        return await run_cpu(ctx, cvat_sync.render_frames, *args)

    async with job_session(ctx) as session:
        return await cvat_sync.create_in_cvat(session, task_id=task_id, config=config, render=render)


async def cvat_retry(ctx: dict) -> int:
    """Every minute: try again to create the CVAT tasks still `creating`."""
    async with job_session(ctx) as session:
        ids = (await session.scalars(select(ReviewTask.id).where(
            ReviewTask.backend == ReviewBackend.cvat, ReviewTask.state == TaskState.creating))).all()
    created = 0
    for task_id in ids:
        created += await cvat_create_task(ctx, task_id) == "open"
    return created


async def cvat_sync_job(ctx: dict, job_id: int) -> str:
    """Sync one review job with its CVAT job (what a webhook schedules; the poll does the same)."""
    config = CvatConfig.from_settings()
    if config is None:
        return "no CVAT configured"
    try:
        async with job_session(ctx) as session:
            job = await session.scalar(select(ReviewJob).where(ReviewJob.id == job_id).with_for_update(skip_locked=True))
            if job is None:
                return "busy or gone"
            task = await session.get(ReviewTask, job.task_id)
            if task.state != TaskState.open:
                return "not open"
            await cvat_sync.sync_job(session, ctx["redis"], job=job, config=config)
            if task.message == UNREACHABLE:
                task.message = None
            stage = job.stage.value
    except CvatUnavailable:
        async with job_session(ctx) as session:  # the sync was rolled back; say so and let the poll retry
            job = await session.get(ReviewJob, job_id)
            task = await session.get(ReviewTask, job.task_id, with_for_update=True)
            task.message = UNREACHABLE
        return "unreachable"
    return stage


async def cvat_accept_jobs(ctx: dict, job_ids: list[int]) -> str:
    """Move to acceptance in CVAT the jobs an admin accepted here ("Accept both" on a QC pair)."""
    config = CvatConfig.from_settings()
    if config is None:
        return "no CVAT configured"
    async with job_session(ctx) as session:
        jobs = [job for job_id in job_ids if (job := await session.get(ReviewJob, job_id)) is not None]
    try:
        await cvat_sync.push_accepted(jobs, config=config)
    except CvatUnavailable:
        return "unreachable"  # cosmetic in CVAT: the review here is already accepted
    return "pushed"


async def cvat_poll(ctx: dict) -> int:
    """Every minute: sync the unfinished jobs of open CVAT tasks (in case a webhook was missed)."""
    if CvatConfig.from_settings() is None:
        return 0
    async with job_session(ctx) as session:
        ids = (await session.scalars(
            select(ReviewJob.id).join(ReviewTask, ReviewJob.task_id == ReviewTask.id)
            .where(ReviewTask.backend == ReviewBackend.cvat, ReviewTask.state == TaskState.open,
                   ReviewJob.cvat_job_id.is_not(None), ReviewJob.stage != JobStage.acceptance)
            .order_by(ReviewJob.id))).all()
    for job_id in ids:
        if await cvat_sync_job(ctx, job_id) == "unreachable":
            break  # CVAT is down: the next minute tries again
    return len(ids)
