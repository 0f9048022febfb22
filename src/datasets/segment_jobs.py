"""A long video's propagation as segment jobs that any worker, on any machine, takes.

The dataset run that holds the dataset (src.datasets.flow, the "coordinator") plans the
passes (src.vision.propagate.Plan), splits them into segments (src.vision.segments.
split_passes: groups of whole passes, so the tracks are box for box those of one piece),
enqueues one `propagate_segment` job per segment whose result is not stored yet, and then
takes segments itself like any other worker until every result is stored. So one worker
alone finishes the dataset, and N workers share it.

Who runs a segment: whoever sets its lease in Redis first (SET NX with an expiry, renewed
every quarter of SEGMENT_LEASE_SECONDS while it runs). A worker that dies stops renewing,
the lease expires and the next worker that looks (the coordinator, every half second) takes
the segment over: a dead worker loses only its segment. Results are stored per segment under
a name that changes with anything that changes its boxes (the video, the engine and its
version, the scale, the seeds: src.vision.segments.segment_key), so a coordinator run again
after its own worker died reuses every segment already done, and the run after a review
(which plans only the passes next to the corrections) reuses nothing it must not.

A segment job needs only DATABASE_URL, REDIS_URL and the storage settings: it reads the video
through the store's local copy (a read-through cache on S3) and writes its result into the
store. The sampling and the export images need every frame in order, so the coordinator
decodes the video once more for them while the segments run (pipeline.deliver_frames).

The learned tracker's segments go to the GPU workers while one is advertised (src/gpu.py
segment_queue), and a coordinator on a CPU worker leaves them to those; the built-in
tracker's go to every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from src.config import get_settings
from src.datasets import pipeline, service
from src.datasets.models import Dataset, DatasetState
from src.datasets.pipeline import SegmentPlan, Tracked
from src.datasets.preview import ENGINE_VERSION
from src.gpu import GPU_SEGMENT_QUEUE, SEGMENT_QUEUE, gpu_workers, segment_queue
from src.jobs import job_session, repeating, run_cpu
from src.storage import get_storage, resolve_model_dir
from src.videos import service as video_service
from src.vision.progress import ProgressFile
from src.vision.propagate import LK_ENGINE, SeedError
from src.vision.types import VideoInfo
from src.vision.video import VideoProbeError

log = logging.getLogger("forge.datasets")

# Segment jobs have their own queues (src/gpu.py), which each worker process reads with its own
# arq worker (``SegmentWorker``) taking no more jobs than its process pool runs at once: arq's
# main worker takes every queued job it has room for (ten), so one machine would take all the
# segments of a video and leave the others idle. GPU workers read GPU_SEGMENT_QUEUE, where the
# learned tracker's segments go while one is advertised; every other worker SEGMENT_QUEUE.
WAIT_S = 0.5  # how often a coordinator looks at the segments others run
SEGMENT_SHARE = 0.9  # of the propagating stage's progress: the segments (the rest: assembling the tracks)
MARK_TTL_S = 3600  # a segment's done and error marks (the store keeps the result itself)


@dataclass(frozen=True, eq=False)  # one task is one object (its passes hold arrays)
class SegmentTask:
    """What a segment job needs, on any machine: the passes (src.vision.propagate.Plan jobs)
    over frames ``first`` .. ``last`` of the stored video ``video_key`` at ``scale``, run by
    ``engine`` (its name), stored as ``key``; ``work``: the frames of passes it steps through."""

    dataset_id: str
    video_key: str
    info: VideoInfo
    engine: str
    scale: float
    first: int
    last: int
    jobs: list[tuple]
    key: str
    work: int
    chunk: tuple | None = None  # a chunk of a long pass: src.vision.segments.Chunk
    after: str | None = None  # ... and the key of the chunk before it, whose checkpoint it goes on from

    @property
    def learned(self) -> bool:
        """Tracked by the learned tracker: a segment that wants a GPU worker (src/gpu.py)."""
        return self.engine != LK_ENGINE


class SegmentFailed(RuntimeError):
    """A segment's worker could not run it; ``str()`` says why."""


def wanted(frame_count: int | None) -> bool:
    """Whether a video this long is propagated in segment jobs (SEGMENT_MIN_FRAMES)."""
    least = get_settings().segment_min_frames
    return least > 0 and (frame_count or 0) >= least


def result_key(dataset_id: str | uuid.UUID, key: str) -> str:
    return service.artifact_key(uuid.UUID(str(dataset_id)), f"segments/{key}.npz")


def _lease(key: str) -> str:
    return f"forge:segment:{key}:lease"


def _error(key: str) -> str:
    return f"forge:segment:{key}:error"


def _done(key: str) -> str:
    """Set once the result is stored: a coordinator waits on Redis, not on the store."""
    return f"forge:segment:{key}:done"


class SegmentWorker:
    """The worker process's reader of ``queue`` (SEGMENT_QUEUE; GPU_SEGMENT_QUEUE on a GPU
    worker): an arq worker of its own (own Redis connections) running `propagate_segment`, at
    most WORKER_PROCESSES at once, in the same process pool and context as the rest (`start` in
    the worker's start-up, `stop` at its end)."""

    def __init__(self, ctx: dict, queue: str = SEGMENT_QUEUE):
        from arq import func
        from arq.worker import Worker

        from src.jobs import redis_settings

        settings = get_settings()
        shared = {k: v for k, v in ctx.items() if k != "redis"}  # arq puts this worker's own pool there
        self.worker = Worker(
            [func(propagate_segment, name="propagate_segment")], queue_name=queue,
            redis_settings=redis_settings(), ctx=shared, max_jobs=settings.worker_processes, handle_signals=False,
            job_timeout=6 * 3600, max_tries=settings.job_max_tries, keep_result=600, poll_delay=0.25,
            health_check_interval=30)
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.worker.main())

    async def stop(self) -> None:
        """Cancel what runs (arq puts those jobs back for the next worker) and close."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        with contextlib.suppress(asyncio.CancelledError):
            await self.worker.close()


def _slots(ctx: dict):
    """This worker process's room for segments: one per pool process, shared by the segment
    jobs and the coordinator's own runs (none outside a worker)."""
    return ctx.get("segment_slots") or contextlib.nullcontext()


def holder_of(ctx: dict) -> str:
    """Who holds a lease: machine, worker process and arq job (what `forge` logs name)."""
    return f"{socket.gethostname()}:{os.getpid()}:{ctx.get('job_id')}"


@contextlib.asynccontextmanager
async def _renewing(redis, key: str, holder: str, seconds: int):
    """Keep ``holder``'s lease on segment ``key`` alive while the block runs; release it after."""

    async def renew() -> bool:
        if await redis.get(_lease(key)) != holder.encode():
            return False  # expired and taken by another worker: it runs the segment too (same result)
        await redis.expire(_lease(key), seconds)
        return True

    try:
        async with repeating(max(0.2, seconds / 4), renew, f"lease of segment {key}"):
            yield
    finally:
        if await redis.get(_lease(key)) == holder.encode():
            await redis.delete(_lease(key))


async def run_here(ctx: dict, task: SegmentTask, holder: str,
                   on_progress: Callable[[int], Awaitable[None]] | None = None) -> bool:
    """Run ``task`` in this worker's process pool unless its result is stored or another
    worker holds it; True when it ran here. ``on_progress(frames decoded)`` every second.
    A failure is recorded for the coordinator (SegmentFailed carries it there) and raised."""
    async with _slots(ctx):  # a lease only once this process can run it
        return await _run_leased(ctx, task, holder, on_progress)


async def _run_leased(ctx: dict, task: SegmentTask, holder: str,
                      on_progress: Callable[[int], Awaitable[None]] | None) -> bool:
    storage, redis, settings = get_storage(), ctx["redis"], get_settings()
    stored = result_key(task.dataset_id, task.key)
    if await asyncio.to_thread(storage.exists, stored):
        return False
    before = task.after and result_key(task.dataset_id, task.after)
    if before and not await asyncio.to_thread(storage.exists, before):
        return False  # the chunk before is not done: the coordinator enqueues this one once it is
    if not await redis.set(_lease(task.key), holder, nx=True, ex=settings.segment_lease_seconds):
        return False
    out = storage.temp_file(".segment.npz")
    progress_path = storage.temp_file(".progress.json")
    try:
        async with _renewing(redis, task.key, holder, settings.segment_lease_seconds):
            if await asyncio.to_thread(storage.exists, stored):  # finished while we looked
                return False
            started = time.monotonic()
            video_path = str(await asyncio.to_thread(storage.local_path, task.video_key))
            model = await asyncio.to_thread(resolve_model_dir, settings.tracker_model_dir)
            checkpoint = before and str(await asyncio.to_thread(storage.local_path, before))
            future = asyncio.ensure_future(run_cpu(
                ctx, pipeline.run_segment, video_path, task.info, task.jobs, task.first, task.last, task.scale,
                model, task.engine, str(out), str(progress_path), task.chunk, checkpoint))
            while True:
                done, _ = await asyncio.wait({future}, timeout=1.0)
                if done:
                    future.result()
                    break
                if on_progress is not None:
                    report = await asyncio.to_thread(ProgressFile.read, progress_path) or {}
                    await on_progress(int(report.get("done") or 0))
            await asyncio.to_thread(storage.put_file, stored, out)
            await redis.set(_done(task.key), holder, ex=MARK_TTL_S)
            log.info("segment %s of dataset %s (frames %d-%d, %d passes) done by %s in %.1f s", task.key,
                     task.dataset_id, task.first, task.last, len(task.jobs), holder, time.monotonic() - started)
            return True
    except Exception as error:
        await redis.set(_error(task.key), str(error) or type(error).__name__, ex=MARK_TTL_S)
        raise
    finally:
        out.unlink(missing_ok=True)
        progress_path.unlink(missing_ok=True)


async def propagate_segment(ctx: dict, task: SegmentTask) -> str:
    """arq job: one segment of a dataset's propagation, on whichever worker takes it first.
    "done", "skipped" (stored, or another worker holds it), "not wanted" (the dataset went
    on without it: cancelled, failed) or "failed" (recorded for the coordinator)."""
    async with job_session(ctx) as session:
        dataset = await session.get(Dataset, uuid.UUID(task.dataset_id))
        if dataset is None or dataset.state not in (DatasetState.propagating, DatasetState.building):
            return "not wanted"
    try:
        return "done" if await run_here(ctx, task, holder_of(ctx)) else "skipped"
    except Exception:
        log.exception("segment %s of dataset %s failed", task.key, task.dataset_id)
        return "failed"


def _failure(message: str) -> Exception:
    """The coordinator's error for a failed segment: the dataset fails with the message for
    bad input (a damaged video: the run's usual rule), and is retried otherwise."""
    if message.startswith("the video stops decoding"):
        return VideoProbeError(message)
    return SegmentFailed(f"a segment job failed: {message}")


async def track(run, seeds: dict[int, list[dict]], reuse_path: str | None, keep_path: Path | None,
                images: Path | None) -> Tracked | None:
    """The track stage in segment jobs (``run``: src.datasets.flow.Run). None when the plan
    has fewer than two segments: then one piece is better (it decodes once for everything)."""
    ctx, claim, settings, storage = run.ctx, run.claim, get_settings(), get_storage()
    redis = ctx["redis"]
    started = time.monotonic()
    model = await asyncio.to_thread(resolve_model_dir, settings.tracker_model_dir)
    identity = f"{claim.video.storage_key}:{claim.video.size_bytes}"
    info = video_service.stored_probe(claim.video)
    segmented: SegmentPlan = await run_cpu(ctx, pipeline.plan_segments, claim.video_path, seeds, info, model,
                                           reuse_path, settings.segment_work, identity, ENGINE_VERSION,
                                           settings.segment_chunk_frames)
    if len(segmented.segments) < 2:
        return None
    plan = segmented.plan
    run.segments = len(segmented.segments)
    chunk_keys = {(s.passes, s.chunk.index): key for s, key in zip(segmented.segments, segmented.keys) if s.chunk}
    tasks = [SegmentTask(str(claim.dataset_id), claim.video.storage_key, plan.info, plan.engine.name, plan.scale,
                         s.first, s.last, [plan.jobs[i] for i in s.passes], key, s.work,
                         s.chunk and tuple(s.chunk), s.chunk and chunk_keys.get((s.passes, s.chunk.index - 1)))
             for s, key in zip(segmented.segments, segmented.keys)]
    lo, hi = run.stages["propagating"]
    mid = lo + (hi - lo) * SEGMENT_SHARE
    await run.update(progress={"stage": "propagating", "percent": lo},
                     **({} if claim.resumed else {"state": DatasetState.propagating}))
    remaining = []
    for t in tasks:
        if not await asyncio.to_thread(storage.exists, result_key(t.dataset_id, t.key)):
            remaining.append(t)
            await redis.delete(_error(t.key))
    reused = len(tasks) - len(remaining)
    queue = await segment_queue(redis, tasks[0].learned)  # one engine for the whole plan

    async def enqueue(t: SegmentTask) -> None:
        await redis.enqueue_job("propagate_segment", t, _job_id=f"segment:{t.key}:{claim.token[:12]}",
                                _queue_name=queue)

    chunks = sum(1 for t in tasks if t.chunk)
    log.info("dataset %s: propagating in %d segment jobs (%d stored already) on %s%s", claim.dataset_id, len(tasks),
             reused, "the GPU workers" if queue == GPU_SEGMENT_QUEUE else "every worker",
             f", {chunks} of them chunks of long passes" if chunks else "")
    # the sampling and the images, from a decode of their own, while the segments run
    images_path = images and str(images)
    delivery = asyncio.ensure_future(run_cpu(ctx, pipeline.deliver_frames, claim.video_path, plan.info,
                                             run.options.sampling.model_dump(), images_path))
    try:
        await _segments(run, tasks, remaining, lo, mid, enqueue)
        async with run.heartbeat():
            delivered = await delivery
    finally:
        delivery.cancel()  # after a failure: nobody waits for it (the scratch folder goes)
    paths = [str(await asyncio.to_thread(storage.local_path, result_key(t.dataset_id, t.key)))
             if not s.checkpoint_only else "" for t, s in zip(tasks, segmented.segments)]
    run.timings["segments"] = round(time.monotonic() - started, 3)
    result = await run.cpu_stage("propagating", pipeline.finish_segments, segmented, paths, reuse_path,
                                 keep_path and str(keep_path), span=(mid, hi))
    result.seconds = time.monotonic() - started
    return Tracked(result, delivered, images_path)


async def _mine_to_take(ctx: dict, task: SegmentTask, unclaimed_since: dict[str, float]) -> bool:
    """Whether a coordinator takes ``task`` itself now that nobody runs it: not a learned-
    tracker segment on a CPU worker while a GPU worker is advertised, unless it has waited
    SEGMENT_GPU_WAIT_SECONDS for one (``unclaimed_since``: segment key -> when it was first
    seen waiting); once no GPU worker is left, at once."""
    if not task.learned or "gpu_worker" in ctx or not await gpu_workers(ctx["redis"]):
        return True
    first = unclaimed_since.setdefault(task.key, time.monotonic())
    if time.monotonic() - first < get_settings().segment_gpu_wait_seconds:
        return False
    log.warning("segment %s of dataset %s: no GPU worker took it in %d s, running it here", task.key,
                task.dataset_id, get_settings().segment_gpu_wait_seconds)
    return True


async def _segments(run, tasks: list[SegmentTask], remaining: list[SegmentTask], lo: float, mid: float,
                    enqueue: Callable[[SegmentTask], Awaitable[None]]) -> None:
    """Enqueue the segments, take them here and wait for the others' until every result is
    stored. A chunk is enqueued (and taken) only once the chunk before it is stored."""
    ctx, storage, redis = run.ctx, get_storage(), run.ctx["redis"]
    total = sum(t.work for t in tasks) or 1
    holder = holder_of(ctx)
    done_work = sum(t.work for t in tasks) - sum(t.work for t in remaining)
    unclaimed_since: dict[str, float] = {}  # learned-tracker segments waiting for a GPU worker
    stored = {t.key for t in tasks} - {t.key for t in remaining}
    queued: set[str] = set()

    async def report(extra: float = 0.0) -> None:
        share = min(1.0, (done_work + extra) / total)
        await run.update(progress={"stage": "propagating", "percent": round(lo + (mid - lo) * share, 1),
                                   "segments_done": len(tasks) - len(remaining), "segments_total": len(tasks),
                                   "eta_s": None})

    async with run.heartbeat():
        while remaining:
            ready = [t for t in remaining if t.after is None or t.after in stored]  # a chunk waits for the one before
            ended = len(stored)
            for t in ready:
                if t.key not in queued:  # all of them before this process takes one: the others start at once
                    await enqueue(t)
                    queued.add(t.key)
            for t in ready:
                if (message := await redis.get(_error(t.key))) is not None:
                    raise _failure(message.decode())

                async def progress_of(frames: int, t=t) -> None:
                    span = max(1, t.last - t.first + 1)
                    await report(t.work * min(1.0, frames / span))

                finished = await redis.exists(_done(t.key))
                slots = ctx.get("segment_slots")
                if (not finished and not await redis.exists(_lease(t.key)) and not (slots and slots.locked())
                        and await _mine_to_take(ctx, t, unclaimed_since)):
                    try:  # nobody runs it, and this process has room
                        finished = await run_here(ctx, t, holder, progress_of)
                    except (SeedError, VideoProbeError, ValueError):
                        raise
                    except Exception as error:
                        raise _failure(str(error)) from error
                    # not run here: stored meanwhile (its done mark can have expired), or just leased
                    finished = finished or await asyncio.to_thread(storage.exists, result_key(t.dataset_id, t.key))
                if finished:
                    remaining.remove(t)
                    stored.add(t.key)
                    done_work += t.work
                    await report()
            # the heartbeat keeps the row fresh meanwhile; progress moves as segments end (and
            # a chunk whose predecessor just ended is enqueued at once)
            if remaining and len(stored) == ended:
                await asyncio.sleep(WAIT_S)
