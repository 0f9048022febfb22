"""arq worker: the task functions of every domain, one process pool for CPU-heavy work.

The job context (`job_session`, `run_cpu`) lives in `src.jobs`, which the task modules
import; this module imports the task modules and fills the context at start-up. Nothing
on the web side imports it: the web enqueues jobs by name.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from arq import cron

from src.config import get_settings
from src.database import create_engine, create_sessionmaker
from src.datasets import service as dataset_service
from src.datasets.ports import DatasetJobPorts
from src.datasets.segment_jobs import SegmentWorker
from src.datasets.tasks import build_dataset, preview_dataset, requeue_stale
from src.detectors.tasks import apply_model, evaluate_detector, predict_frame, train_detector, validate_detector
from src.gpu import (ADVERT_EVERY_S, GPU_QUEUE, GPU_SEGMENT_QUEUE, SEGMENT_QUEUE, advertise, describe_devices,
                     release_gpu_jobs, routing, withdraw, worker_id)
from src.jobs import JobContext, job_session, redis_settings, run_cpu
from src.review.desk import ReviewDesk
from src.review.tasks import cvat_accept_jobs, cvat_create_task, cvat_poll, cvat_retry, cvat_sync_job
from src.webhooks.tasks import deliver_webhook
from src.videos.tasks import import_video, requeue_stale_imports
from src.vision.lifetime import die_with_parent

__all__ = ["GpuWorkerSettings", "WorkerSettings", "redis_settings", "shutdown", "startup", "task_functions"]

log = logging.getLogger("forge.worker")


def _pool_process(parent_pid: int, nice: int) -> None:
    """A pool process: ends with the worker, and yields the CPU to the web server and the
    worker's own event loop (WORKER_NICE) where they share a machine."""
    die_with_parent(parent_pid)
    if nice > 0:
        os.nice(nice)
        _autogroup_nice(nice)


def _autogroup_nice(nice: int) -> None:
    """Make the nice value count against the web server too. Linux's scheduler first shares
    the CPU between autogroups (one per session: a terminal, ssh, anything started with
    setsid) and only then by nice within each, so a worker started in a session of its own
    took half the CPU from the web server whatever its nice (bench/load.py: web p99 3.3 s
    during jobs). The pool process gets a session and autogroup of its own, at that nice.
    Elsewhere (no autogroups, other systems) nothing changes; containers and systemd units are
    cgroups, weighted by their own settings (docs/operations.md)."""
    autogroup = Path("/proc/self/autogroup")
    if not autogroup.exists():
        return
    try:
        os.setsid()  # it ends with the worker all the same (die_with_parent)
        autogroup.write_text(str(nice))
    except OSError as error:
        log.debug("autogroup nice not set: %s", error)


def _cpu_probe() -> int:
    return os.getpid()


def _warm_up() -> int:
    """Import the CPU-side code in a pool process and load the engine's compiled kernels, so
    the first job does not pay for them (the kernels: ~3 s, which a preview the user waits on
    paid in each pool process; small propagations run their passes in this process)."""
    import src.datasets.pipeline  # noqa: F401 - numpy, OpenCV and the engine
    from src.vision import kernels

    kernels.warm_up()
    return os.getpid()


async def health_job(ctx: JobContext, note: str = "") -> dict:
    """Proves the wiring: Redis -> worker -> process pool -> database."""
    from sqlalchemy import text

    pid = await run_cpu(ctx, _cpu_probe)
    async with job_session(ctx) as session:
        one = (await session.execute(text("SELECT 1"))).scalar_one()
    return {"note": note, "pool_pid": pid, "worker_pid": os.getpid(), "database": one == 1}


async def startup(ctx: JobContext) -> None:
    settings = get_settings()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL must be set for the worker (`forge up` sets it).")
    if "redis" in ctx:  # arq's pool: what the tasks enqueue goes to a GPU worker when it wants one
        ctx["redis"] = routing(ctx["redis"])
    ctx["engine"] = create_engine(settings.database_url)
    ctx["sessionmaker"] = create_sessionmaker(ctx["engine"])
    ctx["usage"] = dataset_service.usage  # the quota usage an import counts against (src/quotas/service.py)
    # What the dataset job needs from the domains above datasets (src/datasets/ports.py).
    ctx["dataset_ports"] = DatasetJobPorts(review=ReviewDesk(), apply_model=apply_model)
    # spawn, not fork: the worker process holds an event loop, sockets and threads. The pool's
    # processes end with this worker, however it ends (src/vision/lifetime.py, die_with_parent).
    ctx["pool"] = ProcessPoolExecutor(settings.worker_processes, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_pool_process, initargs=(os.getpid(), settings.worker_nice))
    await asyncio.gather(*(run_cpu(ctx, _warm_up) for _ in range(settings.worker_processes)))
    # One thread for short interactive work a user waits on (a model on one frame), so it
    # never queues behind the pool's long jobs; what it loads stays loaded between calls.
    ctx["interactive"] = ThreadPoolExecutor(1, thread_name_prefix="interactive")
    # Segments of long videos (src/datasets/segment_jobs.py): read from their own queue (a GPU
    # worker's: the learned tracker's segments), as many at once as the pool runs, so the other
    # workers get the rest.
    ctx["segment_slots"] = asyncio.Semaphore(settings.worker_processes)
    ctx["segment_worker"] = SegmentWorker(ctx, GPU_SEGMENT_QUEUE if "gpu_worker" in ctx else SEGMENT_QUEUE)
    ctx["segment_worker"].start()


async def shutdown(ctx: JobContext) -> None:
    if "segment_worker" in ctx:
        await ctx["segment_worker"].stop()
    # arq has cancelled the running jobs (they run again on the next worker): what the pool still
    # computes for them is wanted by nobody, and Python would wait for it before exiting.
    processes = list((getattr(ctx["pool"], "_processes", None) or {}).values())
    ctx["pool"].shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    ctx["interactive"].shutdown(wait=False, cancel_futures=True)
    await ctx["engine"].dispose()


def task_functions() -> list:
    """Every domain's arq functions; a domain adds its own here."""
    return [health_job, import_video, build_dataset, cvat_create_task, cvat_sync_job, cvat_retry, cvat_poll, cvat_accept_jobs,
            validate_detector, train_detector, evaluate_detector, predict_frame, preview_dataset, deliver_webhook]


def cron_jobs() -> list:
    return [cron(requeue_stale, second=0, run_at_startup=True, unique=True),
            cron(requeue_stale_imports, second=10, run_at_startup=True, unique=True),
            cron(cvat_retry, second=20, unique=True), cron(cvat_poll, second=40, unique=True),
            cron(release_gpu_jobs, second=50, run_at_startup=True, unique=True)]


async def gpu_startup(ctx: JobContext) -> None:
    """A GPU worker: the usual start-up, then its advertisement, refreshed until it stops."""
    ident = ctx["gpu_worker"] = worker_id()  # before start-up: its segment reader reads the GPU queue
    await startup(ctx)
    await advertise(ctx["redis"], ident)

    async def refresh() -> None:
        while True:
            await asyncio.sleep(ADVERT_EVERY_S)
            await advertise(ctx["redis"], ident)

    ctx["gpu_advert"] = asyncio.create_task(refresh())
    log.info("GPU worker %s on queues %s and %s (CUDA_VISIBLE_DEVICES=%s): %s", ident, GPU_QUEUE, GPU_SEGMENT_QUEUE,
             os.environ.get("CUDA_VISIBLE_DEVICES", "unset"), describe_devices())


async def gpu_shutdown(ctx: JobContext) -> None:
    ctx["gpu_advert"].cancel()
    await withdraw(ctx["redis"], ctx["gpu_worker"])  # new GPU jobs go to the CPU workers from now on
    await shutdown(ctx)


class WorkerSettings:
    functions = task_functions()
    cron_jobs = cron_jobs()
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = redis_settings()
    max_tries = get_settings().job_max_tries
    job_timeout = 6 * 3600
    health_check_interval = 30


class GpuWorkerSettings:
    """`forge worker --gpu [DEVICE]`: one per GPU; takes the jobs that want one (src/gpu.py).
    The sweeps stay with the ordinary workers, which a deployment keeps running beside it.
    (arq reads a settings class's own attributes only, so they are all written out here.)"""

    functions = WorkerSettings.functions
    cron_jobs: list = []
    queue_name = GPU_QUEUE
    on_startup = gpu_startup
    on_shutdown = gpu_shutdown
    redis_settings = WorkerSettings.redis_settings
    max_tries = WorkerSettings.max_tries
    job_timeout = WorkerSettings.job_timeout
    health_check_interval = WorkerSettings.health_check_interval
