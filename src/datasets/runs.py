"""Who runs a dataset job: the claim, the heartbeat, the row writes of a run, and the sweep
that hands a dead worker's dataset to a fresh job.

The dataset names the arq job entitled to run it (`run_job_id`, set when it is enqueued) and
the token of the run holding it (`run_token`, new at each claim). A run claims (`claim`) when
it is that job (arq's own re-run of an aborted job has the same id), when no job is named, or
when the holder's heartbeat is older than JOB_STALE_SECONDS; every later write checks the
token, and a run whose token is no longer the dataset's stops (`Superseded`) without touching
anything. A worker that dies leaves a stale heartbeat; `requeue_stale` (every minute, and at
worker start) hands such a dataset to a fresh job id in the same locked statement, a bounded
number of times (docs/operations.md, "Crashed workers").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from arq.constants import default_queue_name, in_progress_key_prefix
from sqlalchemy import or_, select

from src.config import get_settings
from src.database import utcnow
from src.datasets import service
from src.datasets.draft import service as drafts
from src.datasets.draft.models import LabelClass
from src.datasets.models import Dataset, DatasetState
from src.jobs import job_session, repeating
from src.storage import get_storage
from src.videos.models import Video
from src.vision.attributes import AttributeSpec

log = logging.getLogger("forge.datasets")
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
RUNNING = (DatasetState.queued, DatasetState.propagating, DatasetState.building)


class Cancelled(Exception):
    """The user cancelled the dataset while the run worked on it."""


class Superseded(Exception):
    """Another run holds the dataset now (this one's worker was taken for dead): stop quietly."""


@dataclass(frozen=True)
class Claim:
    """A run's hold on a dataset (`token`) and what it works on, read under the row lock."""

    dataset_id: uuid.UUID
    token: str
    dataset: Dataset  # as it was at the claim (detached)
    video: Video
    classes: list[LabelClass]
    seeds: dict[int, list[dict[str, Any]]]  # the draft's keyframes, as the engine takes them
    attributes: tuple[AttributeSpec, ...]
    video_path: str  # this worker's copy of the video

    @property
    def resumed(self) -> bool:
        """The review is done: this run re-propagates with the corrections and builds."""
        return self.dataset.state == DatasetState.building


def check_owner(dataset: Dataset | None, token: str) -> Dataset:
    if dataset is None or dataset.run_token != token:
        raise Superseded()
    if dataset.state not in RUNNING:
        raise Cancelled()
    return dataset


async def locked(session, dataset_id: uuid.UUID, token: str) -> Dataset:
    """The dataset, row-locked, when this run still holds it (else Superseded / Cancelled)."""
    return check_owner(await session.get(Dataset, dataset_id, with_for_update=True, populate_existing=True), token)


async def update(ctx: dict, dataset_id: uuid.UUID, token: str, **fields: Any) -> Dataset:
    """Write fields (and the heartbeat) under the row lock; raise Superseded if another run
    holds the dataset now, Cancelled if the user cancelled meanwhile."""
    async with job_session(ctx) as session:
        dataset = await locked(session, dataset_id, token)
        for name, value in fields.items():
            setattr(dataset, name, value)
        dataset.heartbeat_at = utcnow()
        return dataset


@contextlib.asynccontextmanager
async def heartbeat(ctx: dict, dataset_id: uuid.UUID, token: str, every_s: float = 5.0):
    """Keep the heartbeat fresh while a step without progress of its own runs, so the sweep
    does not take this live run for dead (a run that lost the dataset stops at its next write)."""
    async def beat() -> bool:
        try:
            await update(ctx, dataset_id, token)
        except (Superseded, Cancelled):
            return False
        return True

    async with repeating(every_s, beat, f"dataset {dataset_id}: heartbeat"):
        yield


async def claim(ctx: dict, dataset_id: uuid.UUID) -> Claim | None:
    """Claim the dataset for this run (a new token); None when there is nothing (more) to do or
    another job holds it with a live heartbeat."""
    settings = get_settings()
    job_id = ctx.get("job_id")
    async with job_session(ctx) as session:
        dataset = await session.get(Dataset, dataset_id, with_for_update=True, populate_existing=True)
        if dataset is None or dataset.state not in RUNNING:
            return None
        stale = dataset.heartbeat_at is None or (
            utcnow() - dataset.heartbeat_at >= timedelta(seconds=settings.job_stale_seconds))
        if dataset.run_job_id not in (None, job_id) and not stale:
            log.info("dataset %s: job %s holds it (worker %s, heartbeat %s); %s skipped", dataset_id,
                     dataset.run_job_id, dataset.worker_id, dataset.heartbeat_at, job_id)
            return None
        if dataset.run_token is not None:
            log.warning("dataset %s: %s (try %s) takes over from %s on %s (heartbeat %s)", dataset_id, job_id,
                        ctx.get("job_try"), dataset.run_job_id, dataset.worker_id, dataset.heartbeat_at)
        dataset.run_job_id, dataset.run_token = job_id, uuid.uuid4().hex
        dataset.worker_id, dataset.heartbeat_at = WORKER_ID, utcnow()
        video = await session.get(Video, dataset.video_id)
        classes = await drafts.list_classes(session, dataset_id=dataset.id)
        seeds = await drafts.seeds_for_engine(session, dataset_id=dataset.id)
        attributes = tuple(await drafts.attribute_specs(session, dataset_id=dataset.id))
    # This worker's copy of the video (docs/storage.md: fetched from an object store into the
    # local cache), after the row lock is released and off the event loop.
    video_path = str(await asyncio.to_thread(get_storage().local_path, video.storage_key))
    return Claim(dataset_id, dataset.run_token, dataset, video, classes, seeds, attributes, video_path)


async def fail(ctx: dict, dataset_id: uuid.UUID, token: str, message: str) -> None:
    """Mark failed, unless another run holds the dataset now (its outcome counts, not ours)."""
    async with job_session(ctx) as session:
        dataset = await session.get(Dataset, dataset_id, with_for_update=True, populate_existing=True)
        if dataset is None or dataset.run_token != token:
            return
        await service.fail(session, dataset_id=dataset_id, message=message, redis=ctx["redis"])


async def _waiting(redis, job_id: str | None) -> bool:
    """Whether arq holds the job in its queue and no worker has started it (a retry after a
    graceful stop, or a queue busy with other jobs): it will run, nobody is dead."""
    if job_id is None:
        return False
    queued = await redis.zscore(getattr(redis, "default_queue_name", default_queue_name), job_id)
    return queued is not None and not await redis.exists(in_progress_key_prefix + job_id)


async def requeue_stale(ctx: dict) -> int:
    """Restart dataset jobs whose worker stopped sending heartbeats (bounded tries). The stale
    rows are locked (SKIP LOCKED: a worker's own heartbeat or another worker's cron wins) and
    handed to a fresh job id in one transaction; the dead run's token is void from then on."""
    settings = get_settings()
    cutoff = utcnow() - timedelta(seconds=settings.job_stale_seconds)
    requeued = 0
    async with job_session(ctx) as session:
        query = select(Dataset).where(
            Dataset.state.in_(RUNNING),
            or_(Dataset.heartbeat_at < cutoff, (Dataset.heartbeat_at.is_(None)) & (Dataset.confirmed_at < cutoff)),
        ).with_for_update(skip_locked=True)
        for dataset in (await session.scalars(query)).all():
            if await _waiting(ctx["redis"], dataset.run_job_id):
                continue
            if dataset.attempts + 1 >= settings.job_max_tries:
                await service.fail(session, dataset_id=dataset.id, redis=ctx["redis"], message=(
                    "The worker making this dataset stopped several times. Your reservation was released; try again."))
                continue
            dataset.attempts += 1
            job_id = service.job_id(dataset.id, dataset.attempts)
            log.warning("dataset %s: heartbeat of %s on %s is stale (%s); handed to %s", dataset.id, dataset.run_job_id,
                        dataset.worker_id, dataset.heartbeat_at, job_id)
            dataset.run_job_id, dataset.run_token = job_id, None
            dataset.heartbeat_at = utcnow()  # give the new job time to start
            await session.flush()
            await ctx["redis"].enqueue_job("build_dataset", str(dataset.id), _job_id=job_id)
            requeued += 1
    return requeued
