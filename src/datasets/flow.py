"""The dataset job as named stages, each taking and giving typed values:

    claim -> review outcome -> track (propagate + sample + images) -> apply model
          -> pick review frames -> [open review: the job ends; the review's end resumes it]
          -> build -> deliver (store the files, settle the charge, mark ready)

A first run with a review budget ends at "open review"; the run after the review
(`Claim.resumed`) takes the corrections as keyframes, tracks again only the spans next to
them (on top of the first run's Reusable), and goes on to build. Sampling and, when the run
goes on to build, the export images see every frame as the engine tracks (src.vision.delivery,
a tap: the engine's own decode with the learned tracker, a second decode alongside with the
built-in one), so the build decodes nothing. A chosen detector decodes the video once more.

Idempotent: the state is checked under a row lock before each write (src.datasets.runs), a
stage's output is rewritten from scratch on a re-run, and the charge is settled once
(billing.settle is idempotent) in the transaction that marks the dataset ready. Review and
detectors are reached through `ctx["dataset_ports"]` (src.datasets.ports), never imported.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.config import get_settings
from src.datasets import pipeline, runs, segment_jobs, service
from src.datasets.models import DatasetState
from src.datasets.pipeline import Built, ReviewPick, Tracked
from src.datasets.ports import DatasetJobPorts, ModelApplied, ReviewOutcome
from src.datasets.runs import Cancelled, Claim, Superseded
from src.datasets.schemas import DatasetOptions
from src.jobs import job_session, run_cpu
from src.storage import get_storage, resolve_model_dir
from src.vision.progress import ProgressFile
from src.videos import service as video_service
from src.vision.attributes import keyframe_values, resolve_tracks
from src.vision.formats.model import ExportSpec
from src.vision.propagate import SeedError
from src.vision.types import PropagationResult
from src.vision.video import VideoProbeError

log = logging.getLogger("forge.datasets")

# Progress percent per stage. A dataset with a review: the first run goes 0-65 and stays at
# 65 in review (open_review), the review's end sets 75 (review.service), and the run after the
# review goes on from there, so the bar never goes back.
STAGES = {"propagating": (0, 65), "building": (65, 100)}
STAGES_AFTER_REVIEW = {"propagating": (75, 85), "building": (85, 100)}
IN_REVIEW_PERCENT = 65
REUSE_ARTIFACT = "propagation.reuse.npz"  # the first run's engine state, for the run after review


@dataclass
class Run:
    """One run of the job: its claim, options, scratch folder and stage timings."""

    ctx: dict
    claim: Claim
    options: DatasetOptions
    scratch: Path  # this run's temporary files (the images, the zips); removed at its end
    timings: dict[str, float] = field(default_factory=dict)  # wall time per stage, kept in timeline.json
    segments: int = 0  # segment jobs the track stage ran in (0: one piece), kept in timeline.json

    @property
    def ports(self) -> DatasetJobPorts:
        return self.ctx["dataset_ports"]

    @property
    def stages(self) -> dict[str, tuple[int, int]]:
        return STAGES_AFTER_REVIEW if self.claim.resumed else STAGES

    async def update(self, **fields: Any):
        return await runs.update(self.ctx, self.claim.dataset_id, self.claim.token, **fields)

    def heartbeat(self):
        return runs.heartbeat(self.ctx, self.claim.dataset_id, self.claim.token)

    async def cpu_stage(self, stage: str, fn: Callable, *args: Any, state: DatasetState | None = None,
                        span: tuple[float, float] | None = None, **kwargs: Any) -> Any:
        """`fn(*args, progress_path=..., **kwargs)` in the process pool, its progress file
        mirrored into the dataset row every second (percent, frames, ETA, heartbeat); ``span``:
        the part of the stage's percent range it covers (default: all of it)."""
        lo, hi = span or self.stages[stage]
        progress_path = get_storage().temp_file(".progress.json")
        await self.update(progress={"stage": stage, "percent": lo}, **({"state": state} if state else {}))
        started = time.monotonic()
        future = asyncio.ensure_future(run_cpu(self.ctx, fn, *args, progress_path=str(progress_path), **kwargs))
        try:
            while True:
                done, _ = await asyncio.wait({future}, timeout=1.0)
                if done:
                    self.timings[stage] = round(self.timings.get(stage, 0.0) + time.monotonic() - started, 3)
                    return future.result()
                report = await asyncio.to_thread(ProgressFile.read, progress_path) or {}
                await self.update(progress=_progress(stage, lo, hi, report, time.monotonic() - started))
        finally:
            progress_path.unlink(missing_ok=True)


def _progress(stage: str, lo: int, hi: int, report: dict[str, int], elapsed: float) -> dict[str, Any]:
    frames_done, total = report.get("done"), report.get("total")
    if not (frames_done and total):
        return {"stage": stage, "percent": lo}
    share = frames_done / total
    return {"stage": stage, "percent": round(lo + (hi - lo) * share, 1), "frames_done": frames_done,
            "frames_total": total, "eta_s": round(elapsed * (1 - share) / share, 1) if share > 0 else None}


# --- the stages ----------------------------------------------------------------------------

async def review_outcome(run: Run) -> ReviewOutcome:
    """What the review gave (nothing on a first run)."""
    if not run.claim.resumed:
        return ReviewOutcome()
    async with job_session(run.ctx) as session:
        return await run.ports.review.outcome(session, dataset_id=run.claim.dataset_id)


def goes_to_build(claim: Claim, options: DatasetOptions) -> bool:
    """Whether this run builds the exports without a review in between: after the review, or
    when the budget cannot give a single review frame. Then the track stage writes the images."""
    n_frames = claim.video.frame_count or 0
    return claim.resumed or math.floor(options.review_budget * n_frames + 1e-9) == 0


async def track(run: Run, outcome: ReviewOutcome) -> Tracked:
    """Propagate the keyframes (and the review's corrections), sample the frames to deliver
    and, when the run goes on to build, write their images, while the engine decodes."""
    claim, storage = run.claim, get_storage()
    reuse_key = service.artifact_key(claim.dataset_id, REUSE_ARTIFACT)
    reuse_path = keep_path = None
    if claim.resumed and await asyncio.to_thread(storage.exists, reuse_key):
        reuse_path = str(await asyncio.to_thread(storage.local_path, reuse_key))
    elif not claim.resumed:
        keep_path = run.scratch / "propagation.reuse.npz"
    images = run.scratch / "images" if goes_to_build(claim, run.options) else None
    seeds = {**claim.seeds, **outcome.seeds}
    tracked = None
    if segment_jobs.wanted(claim.video.frame_count):  # a long video: in segment jobs any worker takes
        tracked = await segment_jobs.track(run, seeds, reuse_path, keep_path, images)
    if tracked is None:
        tracked = await run.cpu_stage(
            "propagating", pipeline.run_tracking, claim.video_path, seeds, video_service.stored_probe(claim.video),
            await asyncio.to_thread(resolve_model_dir, get_settings().tracker_model_dir),
            reuse_path, keep_path and str(keep_path), run.options.sampling.model_dump(), images and str(images),
            state=None if claim.resumed else DatasetState.propagating)
    if keep_path is not None:
        await asyncio.to_thread(storage.put_file, reuse_key, keep_path)
    result = tracked.result
    if result.spans is not None:
        log.info("dataset %s: after review, re-propagated %d span(s): %s", claim.dataset_id, len(result.spans),
                 [[s.track_id, s.start, s.stop] for s in result.spans])
    log.info("dataset %s: tracks made by the %s engine%s", claim.dataset_id, result.engine,
             f" ({result.engine_note})" if result.engine_note else "")
    dropped = set(outcome.dropped)
    return Tracked(result, [f for f in tracked.delivered if f not in dropped], tracked.images)


async def apply_model(run: Run, tracked: Tracked) -> ModelApplied:
    """The dataset's detector (`model_id`): detections fill the tracks' lost frames, and on a
    first run its disagreement with the tracks helps rank the review frames."""
    if run.options.model_id is None:
        return ModelApplied(tracked.result, None, 0)
    async with run.heartbeat():  # a detector over the video reports no progress
        return await run.ports.apply_model(
            run.ctx, dataset=run.claim.dataset, video_path=run.claim.video_path, result=tracked.result,
            classes=[c.name for c in run.claim.classes], rank=not run.claim.resumed)


def pick_review(run: Run, tracked: Tracked, applied: ModelApplied) -> ReviewPick:
    """The review frames of a first run: hard frames by the engine's expected error (and the
    detector's disagreement), attribute checks by attribute risk; none after the review."""
    if run.claim.resumed:
        return ReviewPick([])
    claim, options = run.claim, run.options
    return pipeline.pick_review_frames(
        tracked.result, tracked.delivered, options.review_budget, sorted(claim.seeds), applied.scores,
        attribute_share=options.review_attribute_share, attributes=claim.attributes,
        keyframe_attributes=keyframe_values(claim.seeds), ava_rate=options.ava_rate)


async def open_review(run: Run, result: PropagationResult, pick: ReviewPick) -> None:
    """Open the review and let go of the dataset: the job that resumes it after the review
    (service.resume_after_review) claims it afresh."""
    claim = run.claim
    values = resolve_tracks(claim.attributes, {int(t.track_id): t.class_name for t in result.tracks},
                            keyframe_values(claim.seeds))
    async with job_session(run.ctx) as session:
        dataset = await runs.locked(session, claim.dataset_id, claim.token)
        await run.ports.review.open(session, run.ctx["redis"], dataset=dataset,
                                    proposed=proposed_boxes(result, pick.frames, values), options=run.options,
                                    attribute_checks=set(pick.attribute_checks))
        await service.enter_review(session, run.ctx["redis"], dataset=dataset, frames=len(pick.frames),
                                   percent=IN_REVIEW_PERCENT)


def proposed_boxes(result: PropagationResult, frames: list[int], values: dict | None = None) -> dict[int, list[dict[str, Any]]]:
    """The engine's boxes on the review frames, as the reviewer first sees them; `values`
    (`{track_id: TrackValues}`) adds each box's attribute values."""
    values = values or {}
    return {
        f: [{"track_id": int(t.track_id), "class": t.class_name, "box": [round(float(v), 2) for v in t.boxes[f]],
             "confidence": round(float(t.confidence[f]), 3),
             **({"attributes": values[int(t.track_id)].at(f)} if int(t.track_id) in values else {})}
            for t in result.tracks if t.present[f]]
        for f in frames
    }


def export_spec(claim: Claim, options: DatasetOptions, outcome: ReviewOutcome) -> ExportSpec:
    dataset, video = claim.dataset, claim.video
    return ExportSpec(
        dataset_id=str(dataset.id), dataset_name=dataset.name, video_id=str(video.id),
        video_name=video.display_name, width=video.width, height=video.height, fps=video.fps,
        n_frames=video.frame_count, classes=[c.name for c in claim.classes],
        colors=[c.color for c in claim.classes], formats=tuple(options.formats), ava_rate=options.ava_rate,
        sampling=options.sampling.model_dump(), split=options.split.model_dump(),
        reviewed_frames=frozenset(outcome.reviewed), attributes=claim.attributes,
        keyframe_attributes=keyframe_values({**claim.seeds, **outcome.seeds}), ava_action=options.ava_action_attribute,
    )


async def build(run: Run, tracked: Tracked, applied: ModelApplied, outcome: ReviewOutcome) -> Built:
    """The exports of the (fused) tracks on the delivered frames, from the track stage's images
    when it wrote them (else this stage decodes the frames it needs)."""
    out_dir = run.scratch / "build"
    return await run.cpu_stage(
        "building", pipeline.run_build, run.claim.video_path, applied.result, export_spec(run.claim, run.options, outcome),
        tracked.delivered, run.options.split.model_dump(), run.options.keep_empty, str(out_dir),
        images_dir=tracked.images, state=DatasetState.building)


def timeline(run: Run, tracked: Tracked, applied: ModelApplied, outcome: ReviewOutcome) -> dict[str, Any]:
    """timeline.json: what the job page's timeline and the bench read back."""
    result = applied.result
    doc = {
        "confidence": [round(float(c), 3) for c in result.frame_confidence()],
        "hard_frames": sorted(outcome.reviewed + outcome.dropped), "reviewed_frames": outcome.reviewed,
        "keyframes": sorted(run.claim.seeds), "delivered": len(tracked.delivered),
        "engine_seconds": round(result.seconds, 3), "engine": result.engine, "engine_note": result.engine_note,
        "stage_seconds": run.timings, "segments": run.segments,
        # after a review: [[track_id, first, last]] propagated again (None: the whole video)
        "propagated_spans": None if result.spans is None else [[s.track_id, s.start, s.stop] for s in result.spans],
    }
    if run.options.model_id is not None:
        doc["model_filled_boxes"] = applied.filled
    return doc


async def deliver(run: Run, built: Built, timeline_doc: dict[str, Any], outcome: ReviewOutcome) -> None:
    """Store the zips, the manifest and the timeline, then settle the charge and mark the
    dataset ready in one transaction (the holder only)."""
    claim, storage = run.claim, get_storage()
    await run.update()  # still the holder: only then overwrite the stored files
    async with run.heartbeat():  # large zips into object storage take a while
        size = 0
        for fmt, path in built.zips.items():  # off the event loop: multipart uploads into an object store
            size += await asyncio.to_thread(storage.put_file, service.zip_key(claim.dataset_id, fmt), Path(path))
        size += await asyncio.to_thread(storage.put_file, service.artifact_key(claim.dataset_id, "manifest.json"),
                                        Path(built.manifest))
        timeline_path = run.scratch / "timeline.json"
        timeline_path.write_text(json.dumps(timeline_doc))
        size += await asyncio.to_thread(storage.put_file, service.artifact_key(claim.dataset_id, "timeline.json"),
                                        timeline_path)
    async with job_session(run.ctx) as session:
        dataset = await runs.locked(session, claim.dataset_id, claim.token)
        await service.settle_ready(session, run.ctx["redis"], dataset=dataset, frames=built.frames,
                                   object_frames=built.object_frames,
                                   review_frames=len(outcome.reviewed) + len(outcome.dropped),
                                   qc_reviewed=outcome.qc_reviewed, size_bytes=size, splits=built.splits)


# --- the job -------------------------------------------------------------------------------

async def build_dataset(ctx: dict, dataset_id: uuid.UUID) -> str:
    """The whole flow for one run: "ready", "in_review", or why it stopped ("skipped",
    "cancelled", "superseded", "failed"); other errors are raised for arq to retry."""
    claim = await runs.claim(ctx, dataset_id)
    if claim is None:
        return "skipped"
    scratch = get_storage().temp_file(".run")
    scratch.unlink()
    scratch.mkdir()
    run = Run(ctx, claim, service.options_of(claim.dataset), scratch)
    try:
        outcome = await review_outcome(run)
        tracked = await track(run, outcome)
        applied = await apply_model(run, tracked)
        if (pick := pick_review(run, tracked, applied)).frames:
            await open_review(run, applied.result, pick)
            return "in_review"
        built = await build(run, tracked, applied, outcome)
        await deliver(run, built, timeline(run, tracked, applied, outcome), outcome)
        return "ready"
    except Cancelled:
        return "cancelled"
    except Superseded:
        log.warning("dataset %s: %s stopped, another run holds the dataset now", dataset_id, ctx.get("job_id"))
        return "superseded"
    except (SeedError, VideoProbeError, ValueError) as error:
        await runs.fail(ctx, dataset_id, claim.token, f"The dataset could not be made: {error}")
        return "failed"
    except Exception:
        log.exception("dataset %s: job failed (try %s)", dataset_id, ctx.get("job_try"))
        if ctx.get("job_try", 1) >= get_settings().job_max_tries:
            await runs.fail(ctx, dataset_id, claim.token, "An internal error stopped this dataset. Your reservation "
                            "was released; try again, or contact support if it happens again.")
            return "failed"
        raise  # arq retries the job
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
