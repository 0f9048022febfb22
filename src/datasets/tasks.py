"""The dataset job: propagate -> sample -> pick hard frames -> (review) -> build -> settle.

Idempotent: the state is checked under a row lock before each stage, a stage's output is
rewritten from scratch on a re-run, and the charge is settled once (billing.settle is
idempotent) in the transaction that marks the dataset ready.

Ownership (docs/operations.md, "Crashed workers"): the dataset names the arq job entitled to
run it (`run_job_id`, set when it is enqueued) and the token of the run holding it
(`run_token`, new at each claim). A run claims in `_load` when it is that job (arq's own
re-run of an aborted job has the same id), when no job is named, or when the holder's
heartbeat is older than JOB_STALE_SECONDS; every later write checks the token, and a run
whose token is no longer the dataset's stops (`Superseded`) without touching anything. A worker
that dies leaves a stale heartbeat; `requeue_stale` (every minute, and at worker start) hands
such a dataset to a fresh job id in the same locked statement, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from arq.constants import default_queue_name, in_progress_key_prefix
from sqlalchemy import or_, select

from src.datasets.draft import service as drafts
from src.billing import service as billing_service
from src.config import get_settings
from src.database import utcnow
from src.datasets import pipeline, service
from src.datasets.models import Dataset, DatasetState
from src.datasets.pipeline import ProgressFile
from src.review import service as review_service
from src.webhooks import service as webhook_service
from src.webhooks.models import WebhookEvent
from src.review.models import ReviewBackend
from src.storage import get_storage, resolve_model_dir
from src.videos import service as video_service
from src.videos.models import Video
from src.vision.attributes import keyframe_values, resolve_tracks
from src.vision.formats.model import ExportSpec
from src.vision.propagate import SeedError
from src.vision.video import VideoProbeError
from src.jobs import job_session, run_cpu

log = logging.getLogger("forge.datasets")
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
RUNNING = (DatasetState.queued, DatasetState.propagating, DatasetState.building)
# percent ranges of the stages on the progress bar
# Progress percent per stage. A dataset with a review: the first run goes 0-65 and stays at
# 65 in review (_open_review), the review's end sets 75 (review.service), and the run after the
# review goes on from there, so the bar never goes back.
STAGES = {"propagating": (0, 60), "sampling": (60, 65), "building": (65, 100)}
STAGES_AFTER_REVIEW = {"propagating": (75, 85), "sampling": (85, 87), "building": (87, 100)}
REUSE_ARTIFACT = "propagation.reuse.npz"  # the first run's engine state, for the run after review


class Cancelled(Exception):
    pass


class Superseded(Exception):
    """Another run holds the dataset now (this one's worker was taken for dead): stop quietly."""


def _check_owner(dataset: Dataset | None, token: str) -> Dataset:
    if dataset is None or dataset.run_token != token:
        raise Superseded()
    if dataset.state not in RUNNING:
        raise Cancelled()
    return dataset


async def _update(ctx: dict, dataset_id: uuid.UUID, token: str, **fields: Any) -> Dataset:
    """Write fields (and the heartbeat) under the row lock; raise Superseded if another run
    holds the dataset now, Cancelled if the user cancelled meanwhile."""
    async with job_session(ctx) as session:
        dataset = _check_owner(await session.get(Dataset, dataset_id, with_for_update=True, populate_existing=True), token)
        for name, value in fields.items():
            setattr(dataset, name, value)
        dataset.heartbeat_at = utcnow()
        return dataset


@contextlib.asynccontextmanager
async def _heartbeat(ctx: dict, dataset_id: uuid.UUID, token: str, every_s: float = 5.0):
    """Keep the heartbeat fresh while a step without progress of its own runs, so the sweep
    does not take this live run for dead (a run that lost the dataset stops at its next write)."""
    async def beat() -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await _update(ctx, dataset_id, token)
            except (Superseded, Cancelled):
                return
            except Exception as error:  # an outage: the step's own writes will tell
                log.warning("dataset %s: heartbeat not written: %s", dataset_id, error)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _stage(
    ctx: dict, dataset_id: uuid.UUID, token: str, stage: str, fn: Callable, *args: Any,
    state: DatasetState | None = None, timings: dict[str, float], after_review: bool = False,
) -> Any:
    """Run `fn(*args, progress_path)` in the process pool, mirroring its progress file into the
    dataset row every second (percent, frames, ETA, heartbeat)."""
    lo, hi = (STAGES_AFTER_REVIEW if after_review else STAGES)[stage]
    progress_path = get_storage().temp_file(".progress.json")
    fields: dict[str, Any] = {"progress": {"stage": stage, "percent": lo}}
    if state is not None:
        fields["state"] = state
    await _update(ctx, dataset_id, token, **fields)
    started = time.monotonic()
    future = asyncio.ensure_future(run_cpu(ctx, fn, *args, str(progress_path)))
    try:
        while True:
            done, _ = await asyncio.wait({future}, timeout=1.0)
            if done:
                timings[stage] = round(timings.get(stage, 0.0) + time.monotonic() - started, 3)
                return future.result()
            report = await asyncio.to_thread(ProgressFile.read, progress_path) or {}
            frames_done, total = report.get("done"), report.get("total")
            progress = {"stage": stage, "percent": lo}
            if frames_done and total:
                share = frames_done / total
                elapsed = time.monotonic() - started
                progress = {
                    "stage": stage, "percent": round(lo + (hi - lo) * share, 1), "frames_done": frames_done,
                    "frames_total": total, "eta_s": round(elapsed * (1 - share) / share, 1) if share > 0 else None,
                }
            await _update(ctx, dataset_id, token, progress=progress)
    finally:
        progress_path.unlink(missing_ok=True)


async def _load(ctx: dict, dataset_id: uuid.UUID) -> dict[str, Any] | None:
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
        job = {
            "token": dataset.run_token, "video": video, "dataset": dataset, "classes": classes,
            "seeds": await drafts.seeds_for_engine(session, dataset_id=dataset.id),
            "attributes": await drafts.attribute_specs(session, dataset_id=dataset.id),
        }
    # This worker's copy of the video (docs/storage.md: fetched from an object store into the
    # local cache), after the row lock is released and off the event loop.
    job["video_path"] = str(await asyncio.to_thread(get_storage().local_path, video.storage_key))
    return job


def _spec(job: dict[str, Any], options, reviewed: list[int], seeds: dict | None = None) -> ExportSpec:
    """`seeds`: the keyframes and review corrections the engine ran on (their attribute values)."""
    dataset, video = job["dataset"], job["video"]
    return ExportSpec(
        dataset_id=str(dataset.id), dataset_name=dataset.name, video_id=str(video.id),
        video_name=video.display_name, width=video.width, height=video.height, fps=video.fps,
        n_frames=video.frame_count, classes=[c.name for c in job["classes"]],
        colors=[c.color for c in job["classes"]], formats=tuple(options.formats), ava_rate=options.ava_rate,
        sampling=options.sampling.model_dump(), split=options.split.model_dump(), reviewed_frames=frozenset(reviewed),
        attributes=tuple(job.get("attributes", ())), keyframe_attributes=keyframe_values(seeds or job["seeds"]),
        ava_action=options.ava_action_attribute,
    )


async def _save_outputs(dataset_id: uuid.UUID, built: dict[str, Any], out_dir: Path, timeline: dict) -> int:
    storage = get_storage()
    size = 0
    # Off the event loop: into an object store these are multipart uploads (docs/storage.md).
    for fmt, path in built["zips"].items():
        size += await asyncio.to_thread(storage.put_file, service.zip_key(dataset_id, fmt), Path(path))
    size += await asyncio.to_thread(storage.put_file, service.artifact_key(dataset_id, "manifest.json"),
                                    out_dir / "manifest.json")
    timeline_path = storage.temp_file(".json")
    timeline_path.write_text(json.dumps(timeline))
    size += await asyncio.to_thread(storage.put_file, service.artifact_key(dataset_id, "timeline.json"), timeline_path)
    return size


async def build_dataset(ctx: dict, dataset_id: str) -> str:
    """propagate -> sample -> hard frames -> review (ends the job; review resumes it) -> build -> settle."""
    did = uuid.UUID(dataset_id)
    job = await _load(ctx, did)
    if job is None:
        return "skipped"
    token = job["token"]
    timings: dict[str, float] = {}  # wall time per stage of this run, kept in timeline.json
    options = service.options_of(job["dataset"])
    resumed = job["dataset"].state == DatasetState.building  # the review is done: re-propagate and build
    review_seeds, reviewed, dropped, qc_reviewed = {}, [], [], 0
    if resumed:
        async with job_session(ctx) as session:
            review_seeds, reviewed, dropped = await review_service.corrections(session, dataset_id=did)
            qc_reviewed = await review_service.qc_reviewed_count(session, dataset_id=did)
    seeds = {**job["seeds"], **review_seeds}
    storage = get_storage()
    out_dir = storage.temp_file(".build")
    out_dir.unlink()
    # The first run keeps the engine's Reusable; after the review only the spans next to the
    # corrected frames are propagated again on top of it (the same tracks as a whole run).
    reuse_key = service.artifact_key(did, REUSE_ARTIFACT)
    reuse_path = keep_path = None
    if resumed and await asyncio.to_thread(storage.exists, reuse_key):
        reuse_path = str(await asyncio.to_thread(storage.local_path, reuse_key))
    elif not resumed:
        keep_path = storage.temp_file(".reuse.npz")
    try:
        result = await _stage(ctx, did, token, "propagating", pipeline.run_propagation, job["video_path"], seeds,
                              video_service.stored_probe(job["video"]),
                              await asyncio.to_thread(resolve_model_dir, get_settings().tracker_model_dir),
                              reuse_path, keep_path and str(keep_path),
                              state=None if resumed else DatasetState.propagating, timings=timings,
                              after_review=resumed)
        if keep_path is not None:
            await asyncio.to_thread(storage.put_file, reuse_key, keep_path)
        if result.spans is not None:
            log.info("dataset %s: after review, re-propagated %d span(s): %s", did, len(result.spans),
                     [[s.track_id, s.start, s.stop] for s in result.spans])
        log.info("dataset %s: tracks made by the %s engine%s", did, result.engine,
                 f" ({result.engine_note})" if result.engine_note else "")
        delivered = await _stage(ctx, did, token, "sampling", pipeline.run_sampling, job["video_path"], options.sampling.model_dump(),
                                 timings=timings, after_review=resumed)
        delivered = [f for f in delivered if f not in set(dropped)]
        keyframes = sorted(job["seeds"])
        model_scores, ranked, filled = None, result, None
        if options.model_id is not None:  # detections fill the tracks' lost frames; disagreement ranks
            from src.detectors.tasks import apply_model

            async with _heartbeat(ctx, did, token):  # a detector over the video reports no progress
                result, model_scores, filled = await apply_model(
                    ctx, dataset=job["dataset"], video_path=job["video_path"], result=result,
                    classes=[c.name for c in job["classes"]], rank=not resumed)
        if resumed:
            hard = reviewed + dropped
        else:
            pick = pipeline.pick_review_frames(
                ranked, delivered, options.review_budget, keyframes, model_scores,
                attribute_share=options.review_attribute_share, attributes=job["attributes"],
                keyframe_attributes=keyframe_values(seeds), ava_rate=options.ava_rate)
            hard = pick.frames
        if hard and not resumed:
            values = resolve_tracks(job["attributes"], {int(t.track_id): t.class_name for t in result.tracks},
                                    keyframe_values(seeds))
            await _open_review(ctx, did, token, result, hard, options, values=values,
                               attribute_checks=pick.attribute_checks)
            return "in_review"
        spec = _spec(job, options, reviewed, seeds)
        built = await _stage(ctx, did, token, "building", pipeline.run_build, job["video_path"], result, spec, delivered,
                             options.split.model_dump(), options.keep_empty, str(out_dir), state=DatasetState.building,
                             timings=timings, after_review=resumed)
        timeline = {
            "confidence": [round(float(c), 3) for c in result.frame_confidence()],
            "hard_frames": sorted(hard), "reviewed_frames": reviewed, "keyframes": keyframes,
            "delivered": len(delivered), "engine_seconds": round(result.seconds, 3),
            "engine": result.engine, "engine_note": result.engine_note,
            "stage_seconds": timings,
            # after a review: [[track_id, first, last]] propagated again (None: the whole video)
            "propagated_spans": None if result.spans is None else [[s.track_id, s.start, s.stop] for s in result.spans],
        }
        if filled is not None:
            timeline["model_filled_boxes"] = filled
        await _update(ctx, did, token)  # still the holder: only then overwrite the stored files
        async with _heartbeat(ctx, did, token):  # large zips into object storage take a while
            size = await _save_outputs(did, built, out_dir, timeline)
        await _finish(ctx, did, token, built, size, reviewed=len(reviewed) + len(dropped), qc_reviewed=qc_reviewed)
        return "ready"
    except Cancelled:
        return "cancelled"
    except Superseded:
        log.warning("dataset %s: %s stopped, another run holds the dataset now", did, ctx.get("job_id"))
        return "superseded"
    except (SeedError, VideoProbeError, ValueError) as error:
        await _fail(ctx, did, token, f"The dataset could not be made: {error}")
        return "failed"
    except Exception:
        log.exception("dataset %s: job failed (try %s)", did, ctx.get("job_try"))
        if ctx.get("job_try", 1) >= get_settings().job_max_tries:
            await _fail(ctx, did, token, "An internal error stopped this dataset. Your reservation was released; "
                                  "try again, or contact support if it happens again.")
            return "failed"
        raise  # arq retries the job
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
        if keep_path is not None:
            keep_path.unlink(missing_ok=True)


def proposed_boxes(result, frames: list[int], values: dict | None = None) -> dict[int, list[dict[str, Any]]]:
    """The engine's boxes on the hard frames, as the reviewer will first see them; `values`
    (`{track_id: TrackValues}`) adds each box's attribute values."""
    values = values or {}
    boxes = _proposed(result, frames)
    for f, objects in boxes.items():
        for o in objects:
            if o["track_id"] in values:
                o["attributes"] = values[o["track_id"]].at(f)
    return boxes


def _proposed(result, frames: list[int]) -> dict[int, list[dict[str, Any]]]:
    return {
        f: [{"track_id": int(t.track_id), "class": t.class_name, "box": [round(float(v), 2) for v in t.boxes[f]],
             "confidence": round(float(t.confidence[f]), 3)} for t in result.tracks if t.present[f]]
        for f in frames
    }


async def _open_review(ctx: dict, dataset_id: uuid.UUID, token: str, result, hard: list[int], options,
                       values: dict | None = None, attribute_checks: list[int] = ()) -> None:
    """Open the review and let go of the dataset: the job that resumes it after the review
    (review.service.resume_on_commit) claims it afresh. `attribute_checks`: the frames of
    `hard` picked to check the attribute values (pipeline.ReviewPick)."""
    backend = ReviewBackend(options.review_backend)
    async with job_session(ctx) as session:
        dataset = _check_owner(await session.get(Dataset, dataset_id, with_for_update=True, populate_existing=True), token)
        task = await review_service.open_review(
            session, dataset=dataset, proposed=proposed_boxes(result, hard, values), backend=backend,
            job_size=get_settings().review_job_size, double_review_share=options.double_review_share,
            auto_accept_agreement=options.auto_accept_agreement, by_owner=options.review_by == "me",
            attribute_checks=set(attribute_checks),
        )
        dataset.state = DatasetState.in_review
        dataset.progress = {"stage": "in_review", "percent": 65, "frames_total": len(hard)}
        await webhook_service.emit_dataset(session, ctx["redis"], dataset=dataset, event=WebhookEvent.dataset_needs_review)
        dataset.heartbeat_at, dataset.run_job_id, dataset.run_token = utcnow(), None, None
    if backend == ReviewBackend.cvat:
        await ctx["redis"].enqueue_job("cvat_create_task", task.id, _job_id=f"cvat-create:{task.id}")


async def _finish(
    ctx: dict, dataset_id: uuid.UUID, token: str, built: dict[str, Any], size: int, *, reviewed: int, qc_reviewed: int = 0
) -> None:
    """Settle the charge from the actual quantities and mark ready, in one transaction (the
    holder only: settle is idempotent besides)."""
    async with job_session(ctx) as session:
        dataset = _check_owner(await session.get(Dataset, dataset_id, with_for_update=True, populate_existing=True), token)
        version = (dataset.quote or {}).get("price_list_version")
        price_list = await billing_service.get_price_list(session, version=version) if version else None
        price_list = price_list or await billing_service.current_price_list(session)
        final = billing_service.price(price_list, frames=built["frames"], object_frames=built["object_frames"],
                                      review_frames=reviewed, qc_frames=qc_reviewed)
        dataset.charged_cents = await billing_service.settle(session, dataset_id=dataset.id, final_cents=final["total_cents"])
        dataset.delivered_frames = built["frames"]
        dataset.size_bytes = size
        dataset.state, dataset.finished_at = DatasetState.ready, utcnow()
        dataset.progress = {"stage": "ready", "percent": 100, "splits": built["splits"]}
        await webhook_service.emit_dataset(session, ctx["redis"], dataset=dataset, event=WebhookEvent.dataset_ready)


async def _fail(ctx: dict, dataset_id: uuid.UUID, token: str, message: str) -> None:
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


async def preview_dataset(ctx: dict, dataset_id: str, key: str, base: str | None = None) -> str:
    """Propagate a draft's keyframes for the editor's preview (src/datasets/preview.py): skipped
    when the keyframes changed since it was asked for, and stopped ("cancelled") when they
    change while it runs; progress and state in Redis. `base`: the key of the preview it
    replaces: when that one's Reusable is stored, only the spans around the changed keyframes
    are propagated again."""
    from src.datasets import preview
    from src.vision.propagate import PropagationCancelled

    did, redis, storage = uuid.UUID(dataset_id), ctx["redis"], get_storage()
    if not await preview.is_current(redis, did, key):
        return "superseded"
    async with job_session(ctx) as session:
        dataset = await session.get(Dataset, did)
        if dataset is None:
            return "gone"
        video = await session.get(Video, dataset.video_id)
        seeds = await drafts.seeds_for_engine(session, dataset_id=did)
        budget = service.options_of(dataset).review_budget
        checks = await preview.attribute_checks(session, dataset=dataset)
        info, video_key = video_service.stored_probe(video), video.storage_key
    if preview.preview_key(seeds, budget=budget, engine=preview.engine_id(), checks=checks) != key:
        return "superseded"
    video_path = str(await asyncio.to_thread(storage.local_path, video_key))  # this worker's copy
    model_dir = await asyncio.to_thread(resolve_model_dir, get_settings().tracker_model_dir)
    reuse_path = None
    if base and base != key and await asyncio.to_thread(storage.exists, preview.reuse_key(did, base)):
        reuse_path = str(await asyncio.to_thread(storage.local_path, preview.reuse_key(did, base)))
    spans = None  # the frames it will change, marked in the editor while it runs
    if reuse_path and info is not None:
        with contextlib.suppress(SeedError, OSError, ValueError):
            spans = await asyncio.to_thread(pipeline.preview_spans, reuse_path, seeds, info, model_dir)
    progress_path = storage.temp_file(".preview.json")
    keep_path = storage.temp_file(".reuse.npz")
    stop_path = progress_path.with_suffix(".stop")  # appears when the keyframes change: the run stops
    await preview.set_state(redis, did, key=key, state="running", done=0, total=video.frame_count or 0, base=base,
                            spans=spans)
    future = asyncio.ensure_future(run_cpu(ctx, pipeline.run_preview, video_path, seeds, info, model_dir, budget,
                                           str(progress_path), reuse_path=reuse_path, keep_path=str(keep_path),
                                           stop_path=str(stop_path),
                                           frame_cache_dir=str(get_settings().frame_cache_path), checks=checks))
    try:
        while True:
            done, _ = await asyncio.wait({future}, timeout=0.25)
            if done:
                break
            report = await asyncio.to_thread(ProgressFile.read, progress_path) or {}
            if await preview.is_current(redis, did, key):
                await preview.set_state(redis, did, key=key, state="running", done=report.get("done", 0),
                                        total=report.get("total", 0), base=base, spans=spans)
            else:
                stop_path.touch()
        try:
            document = future.result()
        except PropagationCancelled:
            log.info("dataset %s: preview %s cancelled, the keyframes changed", did, key)
            return "cancelled"
        except (SeedError, VideoProbeError) as error:
            await preview.set_state(redis, did, key=key, state="failed", error=str(error))
            return "failed"
        await asyncio.to_thread(storage.put_file, preview.reuse_key(did, key), keep_path)
        progress_path.write_text(json.dumps(document, separators=(",", ":")))
        await asyncio.to_thread(storage.put_file, preview.store_key(did, key), progress_path)
        if await preview.is_current(redis, did, key):
            await preview.set_state(redis, did, key=key, state="ready", done=document["frames"], total=document["frames"])
        await preview.prune(redis, did, stored=key)
        spans = document.get("spans")
        log.info("dataset %s: preview %s ready (%s, %d tracks, %s)", did, key, document["engine"], len(document["tracks"]),
                 "whole video" if spans is None else f"spans {spans} on top of {base}")
        return "ready"
    finally:
        for path in (progress_path, keep_path, stop_path):
            path.unlink(missing_ok=True)
