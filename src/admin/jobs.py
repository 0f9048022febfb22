"""The job queue as admins see it: datasets being worked on (or failed), counts per
state, worker liveness from arq's health-check key, and retry / cancel."""

from __future__ import annotations

import uuid
from typing import Any

from arq.connections import ArqRedis
from arq.constants import default_queue_name, health_check_key_suffix
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from src.admin import audit
from src.auth.models import User
from src.database import utcnow
from src.datasets.models import ACTIVE_STATES, Dataset, DatasetState
from src.exceptions import NotFound

QUEUE_STATES = (*ACTIVE_STATES, DatasetState.failed)
HEALTH_CHECK_KEY = default_queue_name + health_check_key_suffix  # "arq:queue:health-check"


class JobNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No dataset with this id.")


async def queue(session: AsyncSession, *, limit: int = 200) -> list[dict[str, Any]]:
    """Datasets in QUEUE_STATES, oldest first, with their owner's e-mail."""
    query = (
        select(Dataset, User.email)
        .join(User, User.id == Dataset.owner_id)
        .where(Dataset.state.in_(QUEUE_STATES))
        .order_by(func.coalesce(Dataset.confirmed_at, Dataset.created_at))
        .limit(limit)
    )
    now = utcnow()
    jobs = []
    for dataset, email in await session.execute(query):
        started = dataset.confirmed_at or dataset.created_at
        jobs.append({
            "dataset_id": dataset.id, "name": dataset.name, "owner_id": dataset.owner_id, "owner_email": email,
            "state": str(dataset.state), "stage": (dataset.progress or {}).get("stage"),
            "percent": (dataset.progress or {}).get("percent"), "worker_id": dataset.worker_id,
            "heartbeat_at": dataset.heartbeat_at, "attempts": dataset.attempts, "error": dataset.error,
            "age_s": int((now - started).total_seconds()),
        })
    return jobs


async def workers(redis: ArqRedis) -> dict[str, Any]:
    """arq rewrites the health-check key (with a TTL) while a worker runs: no key, no worker."""
    value = await redis.get(HEALTH_CHECK_KEY)
    ttl = await redis.ttl(HEALTH_CHECK_KEY) if value is not None else None
    return {
        "alive": value is not None,
        "health_check": value.decode() if isinstance(value, bytes) else value,
        "ttl_s": ttl,
        "queued_in_redis": await redis.zcard(default_queue_name),
    }


async def stats(session: AsyncSession, redis: ArqRedis) -> dict[str, Any]:
    counts = dict((await session.execute(select(Dataset.state, func.count()).group_by(Dataset.state))).all())
    users = (await session.execute(
        select(func.count(), func.count().filter(User.is_active), func.count().filter(User.role == "admin"))
    )).one()
    return {
        "datasets": {str(state): counts.get(state, 0) for state in DatasetState},
        "workers": await workers(redis),
        "users": {"total": users[0], "active": users[1], "admins": users[2]},
    }


async def _snapshot(session: AsyncSession, dataset_id: uuid.UUID) -> Dataset:
    dataset = await session.get(Dataset, dataset_id, populate_existing=True)
    if dataset is None:
        raise JobNotFound()
    return dataset


def _state(dataset: Dataset) -> dict[str, Any]:
    return {"state": str(dataset.state), "attempts": dataset.attempts, "error": dataset.error}


async def retry(session: AsyncSession, redis: ArqRedis, *, actor_id: uuid.UUID, dataset_id: uuid.UUID) -> Dataset:
    from src.datasets import service as dataset_service  # the dataset domain owns the state machine

    return await _act(session, redis, dataset_service.retry, "job.retry", actor_id=actor_id, dataset_id=dataset_id)


async def cancel(session: AsyncSession, redis: ArqRedis, *, actor_id: uuid.UUID, dataset_id: uuid.UUID) -> Dataset:
    from src.datasets import service as dataset_service

    return await _act(session, redis, dataset_service.cancel, "job.cancel", actor_id=actor_id, dataset_id=dataset_id)


async def _act(session, redis, action, name: str, *, actor_id: uuid.UUID, dataset_id: uuid.UUID) -> Dataset:
    before = _state(await _snapshot(session, dataset_id))
    await action(session, redis, dataset_id=dataset_id)
    dataset = await _snapshot(session, dataset_id)
    await audit.record(
        session, admin_id=actor_id, action=name, target_user_id=dataset.owner_id,
        target=f"dataset:{dataset_id}", before=before, after=_state(dataset),
    )
    return dataset
