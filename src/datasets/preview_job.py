"""The editor's preview job: the engine on a draft's keyframes, kept in the store for the
editor (src/datasets/preview.py holds the keys and the Redis state the pages read).

Skipped when the keyframes changed since it was asked for, stopped ("cancelled") when they
change while it runs. A preview on top of an earlier one (`base`) propagates only the spans
around the changed keyframes, and the worker's frame cache keeps a whole-video preview's
decoded frames, so the next fix in place decodes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid

from src.config import get_settings
from src.datasets import pipeline, preview, service
from src.datasets.draft import service as drafts
from src.datasets.models import Dataset
from src.jobs import job_session, run_cpu
from src.storage import get_storage, resolve_model_dir
from src.vision.progress import ProgressFile
from src.videos import service as video_service
from src.videos.models import Video
from src.vision.propagate import PropagationCancelled, SeedError
from src.vision.video import VideoProbeError

log = logging.getLogger("forge.datasets")


async def run_preview(ctx: dict, did: uuid.UUID, key: str, base: str | None = None) -> str:
    """The preview `key` of dataset `did`: "ready", or why not ("superseded", "gone",
    "cancelled", "failed"); progress and state in Redis. `base`: the key of the preview it
    replaces: when that one's Reusable is stored, only the spans around the changed keyframes
    are propagated again."""
    redis, storage = ctx["redis"], get_storage()
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
