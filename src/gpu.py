"""GPU workers: where the jobs that want a GPU go (issue 21).

A worker started with `forge worker --gpu [DEVICE]` (one process per GPU) takes jobs from
its own arq queue, GPU_QUEUE, and advertises itself in Redis while it runs (a sorted set of
worker ids scored by the time their advertisement expires, refreshed every ADVERT_EVERY_S).
Every enqueue, from the web and from the workers, goes through `RoutingArqRedis`: a job that
wants a GPU (detector training and evaluation, and dataset runs when the learned tracker is
configured, whose onnxruntime session then uses the CUDA provider) goes to GPU_QUEUE while at
least one GPU worker is advertised, and to the ordinary queue otherwise, so a platform
without GPUs never waits for one. Segments of a long video (src/datasets/segment_jobs.py) have
queues of their own, SEGMENT_QUEUE and GPU_SEGMENT_QUEUE, chosen the same way by
`segment_queue`: the learned tracker's segments go to the GPU workers while there are any, the
built-in tracker's to every other worker. A GPU worker that goes away stops advertising (at
once on a clean stop, within ADVERT_TTL_S when it dies), and `release_gpu_jobs`, a cron job of
the ordinary workers, then hands the jobs still waiting in a GPU queue to its ordinary queue.

This module stays light (no torch, no onnxruntime at import): the web imports it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from arq.connections import ArqRedis
from arq.constants import default_queue_name

from src.config import get_settings

log = logging.getLogger("forge.gpu")

GPU_QUEUE = "arq:queue:gpu"
# A long video's segments: read by every worker process with an arq worker of its own
# (src/datasets/segment_jobs.py SegmentWorker), the GPU workers' from their own queue.
SEGMENT_QUEUE = "arq:queue:segments"
GPU_SEGMENT_QUEUE = "arq:queue:segments:gpu"
# where the jobs waiting in a GPU queue go once no GPU worker is there
FALLBACK_QUEUES = {GPU_QUEUE: default_queue_name, GPU_SEGMENT_QUEUE: SEGMENT_QUEUE}
ADVERTS = "forge:gpu-workers"  # sorted set: worker id -> the time its advertisement expires
ADVERT_TTL_S = 90.0
ADVERT_EVERY_S = 30.0
# jobs that use a GPU when there is one, whatever the settings
GPU_FUNCTIONS = frozenset({"train_detector", "evaluate_detector"})
# jobs that use one when the learned tracker is configured (TRACKER_MODEL_DIR)
TRACKER_FUNCTIONS = frozenset({"build_dataset"})


def wants_gpu(function: str) -> bool:
    return function in GPU_FUNCTIONS or (function in TRACKER_FUNCTIONS and bool(get_settings().tracker_model_dir))


async def gpu_workers(redis: Any, now: float | None = None) -> int:
    """How many GPU workers are advertised now."""
    return int(await redis.zcount(ADVERTS, now if now is not None else time.time(), "+inf"))


class RoutingArqRedis(ArqRedis):
    """arq's pool, with `enqueue_job` sending the jobs that want a GPU to GPU_QUEUE while a
    GPU worker is there (an explicit `_queue_name` is kept as given)."""

    async def enqueue_job(self, function: str, *args: Any, _queue_name: str | None = None, **kwargs: Any):
        if _queue_name is None and wants_gpu(function) and await gpu_workers(self):
            _queue_name = GPU_QUEUE
        return await super().enqueue_job(function, *args, _queue_name=_queue_name, **kwargs)


async def segment_queue(redis: Any, learned: bool) -> str:
    """The queue for a segment: the GPU workers' when the learned tracker runs it (onnxruntime's
    CUDA provider; the built-in tracker is CPU code) and a GPU worker is advertised, every
    worker's otherwise."""
    if learned and await gpu_workers(redis):
        return GPU_SEGMENT_QUEUE
    return SEGMENT_QUEUE


def routing(pool: ArqRedis) -> RoutingArqRedis:
    """A RoutingArqRedis on the same connections and settings as ``pool`` (closing it closes
    them, as closing ``pool`` would)."""
    wrapper = RoutingArqRedis(pool_or_conn=pool.connection_pool, job_serializer=pool.job_serializer,
                              job_deserializer=pool.job_deserializer, default_queue_name=pool.default_queue_name,
                              expires_extra_ms=pool.expires_extra_ms)
    wrapper.auto_close_connection_pool = pool.auto_close_connection_pool
    return wrapper


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def advertise(redis: Any, ident: str, ttl: float = ADVERT_TTL_S) -> None:
    await redis.zadd(ADVERTS, {ident: time.time() + ttl})
    await redis.zremrangebyscore(ADVERTS, "-inf", time.time())  # the ones that died


async def withdraw(redis: Any, ident: str) -> None:
    await redis.zrem(ADVERTS, ident)


async def release_gpu_jobs(ctx: dict) -> int:
    """Cron job of the ordinary workers: with no GPU worker advertised, move the jobs waiting
    in each GPU queue to its ordinary queue (same scores: same order and deferral)."""
    redis = ctx["redis"]
    if await gpu_workers(redis):
        return 0
    moved = 0
    for gpu_queue, queue in FALLBACK_QUEUES.items():
        waiting = await redis.zrange(gpu_queue, 0, -1, withscores=True)
        if not waiting:
            continue
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zadd(queue, dict(waiting))
            pipe.zrem(gpu_queue, *[job_id for job_id, _ in waiting])
            await pipe.execute()
        moved += len(waiting)
    if moved:
        log.warning("no GPU worker is running: %d job(s) waiting for one go to the CPU workers", moved)
    return moved


def describe_devices() -> str:
    """What this process can compute on, in words (for the GPU worker's log)."""
    found = []
    try:
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            found.append("onnxruntime CUDA provider")
    except ImportError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            found.append(f"torch: {torch.cuda.device_count()} CUDA device(s) ({torch.cuda.get_device_name(0)})")
    except ImportError:
        pass
    return ", ".join(found) or "no CUDA device found: its jobs run on the CPU"
