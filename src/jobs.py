"""The job context every task module works in: one session per job, CPU work in the pool.

Task modules (`src/<domain>/tasks.py`) import this; the worker (`src/worker.py`) imports the
task modules and fills the context at start-up; the web imports neither, it enqueues jobs by
name through its arq pool (`app.state.redis.enqueue_job("build_dataset", ...)`). So this
module stays light: no task, no domain, no OpenCV.

Jobs take ids, never objects, and open one session each through `job_session`, which
commits once when the job's work is done. CPU-heavy steps (decoding, tracking, export)
go through `run_cpu`, so the worker's event loop keeps answering arq's heartbeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypedDict, TypeVar

from arq.connections import RedisSettings
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from src.config import get_settings
from src.database import unit_of_work

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from src.datasets.ports import DatasetJobPorts
    from src.quotas.service import UsageOf

log = logging.getLogger("forge.jobs")

T = TypeVar("T")
P = ParamSpec("P")


class JobContext(TypedDict, total=False):
    """What a task's `ctx` holds: arq's own keys, plus what `src.worker.startup` adds."""

    # arq
    redis: ArqRedis
    job_id: str
    job_try: int
    enqueue_time: Any
    score: int
    # src.worker.startup
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    pool: ProcessPoolExecutor  # CPU-heavy steps, through run_cpu
    interactive: ThreadPoolExecutor  # one thread for short work a user waits on
    usage: UsageOf  # the quota usage (datasets.service.usage), for the video import
    dataset_ports: DatasetJobPorts  # review and detectors, as the dataset job sees them
    segment_slots: asyncio.Semaphore  # room for segment jobs: one per pool process
    segment_worker: Any  # src.datasets.segment_jobs.SegmentWorker, reading the segment queue


def redis_settings(url: str | None = None) -> RedisSettings:
    return RedisSettings.from_dsn(url or get_settings().redis_url or "redis://127.0.0.1:6379/0")


@asynccontextmanager
async def job_session(ctx: JobContext | dict[str, Any]) -> AsyncIterator[AsyncSession]:
    """The job's unit of work: one session, committed once at the end."""
    async with unit_of_work(ctx["sessionmaker"]) as session:
        yield session


async def run_cpu(ctx: JobContext | dict[str, Any], fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a picklable function in the worker's process pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(ctx["pool"], functools.partial(fn, *args, **kwargs))


@asynccontextmanager
async def repeating(every_s: float, step: Callable[[], Awaitable[bool | None]], what: str) -> AsyncIterator[None]:
    """Call ``step()`` every ``every_s`` seconds while the block runs (a heartbeat, a lease's
    renewal); it returns False to stop. An error is logged as "<what> not written" and the
    next call tries again (an outage: the block's own writes will tell)."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                if await step() is False:
                    return
            except Exception as error:
                log.warning("%s not written: %s", what, error)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
