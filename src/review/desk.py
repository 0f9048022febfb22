"""The review as the dataset domain sees it (src.datasets.ports): for the job, open a
dataset's review and read back what the accepted review gave (`ReviewDesk`, plugged into the
job context by src.worker.startup); for the overview page, the review block
(`review_summary`, plugged in by src.main.create_app). The dataset domain never imports review.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from src.config import get_settings
from src.database import on_commit
from src.datasets.models import Dataset
from src.auth.models import User
from src.datasets.ports import ReviewOutcome, ReviewSummary
from src.datasets.schemas import DatasetOptions
from src.review import service
from src.review.models import ReviewBackend


class ReviewDesk:
    async def open(self, session: AsyncSession, redis, *, dataset: Dataset, proposed: dict[int, list[dict[str, Any]]],
                   options: DatasetOptions, attribute_checks: set[int]) -> None:
        """The review task and its jobs, in the caller's transaction; on CVAT the worker makes
        the CVAT task once that has committed."""
        backend = ReviewBackend(options.review_backend)
        task = await service.open_review(
            session, dataset=dataset, proposed=proposed, backend=backend, job_size=get_settings().review_job_size,
            double_review_share=options.double_review_share, auto_accept_agreement=options.auto_accept_agreement,
            by_owner=options.review_by == "me", attribute_checks=attribute_checks)
        if backend == ReviewBackend.cvat:
            task_id = task.id
            on_commit(session, lambda: redis.enqueue_job("cvat_create_task", task_id, _job_id=f"cvat-create:{task_id}"))

    async def outcome(self, session: AsyncSession, *, dataset_id: uuid.UUID) -> ReviewOutcome:
        seeds, reviewed, dropped = await service.corrections(session, dataset_id=dataset_id)
        return ReviewOutcome(seeds, reviewed, dropped, await service.qc_reviewed_count(session, dataset_id=dataset_id))


async def review_summary(session: AsyncSession, *, dataset_id: uuid.UUID, user: User) -> ReviewSummary:
    """The dataset overview's review block (src.datasets.ports.ReviewSummaries)."""
    task = await service.get_task(session, dataset_id=dataset_id)
    if task is None:
        return ReviewSummary()
    return ReviewSummary(task.message, await service.own_review_jobs(session, dataset_id=dataset_id, user=user))
