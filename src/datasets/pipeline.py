"""The CPU-heavy steps of a dataset job, run in the worker's process pool.

Plain functions over paths and small values (picklable), importing only `src.vision`.
Progress goes through a small JSON file that the job's coroutine polls
(src.vision.progress.ProgressFile).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from src.vision.attribute_checks import attribute_check_count, select_attribute_frames
from src.vision.attributes import AttributeSpec, keyframe_values
from src.vision.delivery import Delivery
from src.vision.disagreement import as_error_tracks
from src.vision.formats.build import build_exports
from src.vision.frame_cache import FrameCache
from src.vision.formats.model import ExportSpec, labeled_frames, split_by_blocks
from src.vision.hard_frames import select_hard_frames
from src.vision.progress import ProgressFile
from src.vision.propagate import propagate
from src.vision.types import PropagationResult, SeedObject, VideoInfo
from src.vision.video import probe


def seed_objects(seeds: dict[int, list[dict[str, Any]]]) -> dict[int, list[SeedObject]]:
    """`{frame: [{"track_id", "class", "box"} | {"track_id", "gone": True}]}` -> engine seeds."""
    out: dict[int, list[SeedObject]] = {}
    for frame, objects in seeds.items():
        out[int(frame)] = [
            SeedObject(int(o["track_id"]), o.get("class") or "", None, gone=True) if o.get("gone")
            else SeedObject(int(o["track_id"]), o["class"], np.asarray(o["box"], np.float32))
            for o in objects
        ]
    return out


@dataclass(frozen=True)
class Tracked:
    """The tracking stage's output: the tracks, the frames to deliver (sampling), and the
    folder holding those frames' images when they were written in the same decode (None:
    the build decodes them)."""

    result: PropagationResult
    delivered: list[int]
    images: str | None = None


def run_tracking(
    video_path: str, seeds: dict[int, list[dict]], info: VideoInfo | None, tracker_model: str | None,
    reuse_path: str | None, keep_path: str | None, sampling: dict[str, Any], images_dir: str | None,
    progress_path: str,
) -> Tracked:
    """Propagate, sample and (with ``images_dir``) write the delivered frames' images while the
    engine decodes (src.vision.delivery, the engine's tap: see ``propagate``).

    ``info``: what the upload's probe stored (None: probe again). The probe decodes the end
    of the file to check the frame count (a GOP, often a few hundred frames): once is enough.
    ``tracker_model``: TRACKER_MODEL_DIR (the result says which engine ran: ``engine``).
    ``keep_path``: where the run's Reusable goes (src.vision.segments); ``reuse_path``: an
    earlier run's, so that only the spans next to the keyframes added since (the review's
    corrections) are tracked again: the same tracks as a whole run; the sampling and the
    images still see the whole video."""
    from src.vision.segments import Reusable

    info = info or probe(video_path)
    delivery = Delivery(sampling, info.width, Path(images_dir) if images_dir else None)
    tap = delivery if delivery.needs_frames else None  # every frame delivered, no images: no frame to see
    reuse = Reusable.from_bytes(Path(reuse_path).read_bytes()) if reuse_path else None
    try:
        result = propagate(video_path, seed_objects(seeds), budget=0, info=info, progress=ProgressFile(Path(progress_path)),
                           tracker_model=tracker_model, reuse=reuse, keep=keep_path is not None, tap=tap)
    finally:
        delivered = delivery.close() if tap is not None else list(range(info.frames))
    if keep_path is not None:
        Path(keep_path).write_bytes(result.reusable.to_bytes())
    return Tracked(result, delivered, images_dir)


@dataclass(frozen=True)
class SegmentPlan:
    """A propagation split into segment jobs (src.datasets.segment_jobs): the plan, its
    segments and each one's result name (``keys``, src.vision.segments.segment_key)."""

    plan: Any  # src.vision.propagate.Plan
    segments: list[Any]  # src.vision.segments.Segment
    keys: list[str]


def plan_segments(
    video_path: str, seeds: dict[int, list[dict]], info: VideoInfo, tracker_model: str | None,
    reuse_path: str | None, target_work: int, video_identity: str, engine_version: str, chunk_frames: int = 0,
) -> SegmentPlan:
    """The passes a propagation of ``seeds`` runs (after a review, with ``reuse_path``: only
    those next to the corrections), in segments of about ``target_work`` frames of passes,
    passes longer than ``chunk_frames`` in chunks (src.vision.segments.split_passes)."""
    from dataclasses import asdict

    from src.vision.propagate import DEFAULT_PARAMS, plan_propagation
    from src.vision.segments import Reusable, segment_key, split_passes

    reuse = Reusable.from_bytes(Path(reuse_path).read_bytes()) if reuse_path else None
    plan = plan_propagation(video_path, seed_objects(seeds), info=info, tracker_model=tracker_model, reuse=reuse)
    segments = split_passes(plan.jobs, target_work, chunk_frames)
    engine = f"{plan.engine.name}:{engine_version}"
    keys = [segment_key(s, plan.jobs, video=video_identity, engine=engine, scale=plan.scale,
                        params=asdict(DEFAULT_PARAMS)) for s in segments]
    return SegmentPlan(plan, segments, keys)


def run_segment(
    video_path: str, info: VideoInfo, jobs: list[tuple], first: int, last: int, scale: float,
    tracker_model: str | None, engine: str, out_path: str, progress_path: str,
    chunk: tuple | None = None, checkpoint_path: str | None = None,
) -> int:
    """One segment job's passes over frames ``first`` .. ``last`` at ``scale``, on whatever
    machine took it; their PassResults go to ``out_path`` (src.vision.segments.pack_passes).
    A chunk of a long pass (``chunk``: src.vision.segments.Chunk, ``checkpoint_path``: the
    checkpoint of the chunk before, for all but the first) writes the pass's checkpoint there
    instead, unless it is the pass's last. Refuses to run another engine than the plan's
    (``engine``: this machine lacks the learned tracker's files): its boxes would not be the
    dataset's. Returns the frames stepped through."""
    from src.vision.propagate import DEFAULT_PARAMS, resolve_engine, track_passes
    from src.vision.segments import Chunk, pack_passes, pass_length

    here = resolve_engine(tracker_model)
    if here.name != engine:
        raise RuntimeError(f"this worker runs the {here.name} engine, the dataset's segments need {engine}"
                           f"{f' ({here.note})' if here.note else ''}")
    chunk = None if chunk is None else Chunk(*chunk)
    work = sum(pass_length(j) for j in jobs) if chunk is None else chunk.until - chunk.start
    workers = max(1, os.cpu_count() or 1)
    resume = until = None
    if chunk is not None:
        resume = [Path(checkpoint_path).read_bytes() if chunk.index > 0 else None]
        until = [chunk.until]
    results = track_passes(video_path, info, jobs, scale, here.model_dir, first=first, last=last, workers=workers,
                           processes=workers > 1 and work >= DEFAULT_PARAMS.process_min_work,
                           progress=ProgressFile(Path(progress_path)), resume=resume, until=until)
    if chunk is not None and not chunk.last_one:
        Path(out_path).write_bytes(results[0].data)
    else:
        Path(out_path).write_bytes(pack_passes(results))
    return work


def finish_segments(
    segmented: SegmentPlan, result_paths: list[str], reuse_path: str | None, keep_path: str | None,
    progress_path: str,
) -> PropagationResult:
    """The tracks from every segment's passes: box for box those of one piece."""
    from src.vision.propagate import assemble
    from src.vision.segments import Reusable, unpack_passes

    plan = segmented.plan
    passes = {}
    for segment, path in zip(segmented.segments, result_paths):
        if segment.checkpoint_only:  # the pass's boxes are in its last chunk's result
            continue
        for i, result in zip(segment.passes, unpack_passes(Path(path).read_bytes())):
            passes[plan.keys[i]] = result
    reuse = Reusable.from_bytes(Path(reuse_path).read_bytes()) if reuse_path else None
    result = assemble(plan, passes, reuse=reuse, keep=keep_path is not None, budget=0)
    if keep_path is not None:
        Path(keep_path).write_bytes(result.reusable.to_bytes())
    return result


def deliver_frames(video_path: str, info: VideoInfo, sampling: dict[str, Any], images_dir: str | None) -> list[int]:
    """The delivered frames (and with ``images_dir`` their images) from one decode of the
    video, for a run in segment jobs (they decode only their own frames, so the sampling
    cannot ride on them). Runs while the segments do: it needs no track."""
    from src.vision.frames import feed_tap

    delivery = Delivery(sampling, info.width, Path(images_dir) if images_dir else None)
    if not delivery.needs_frames:
        return list(range(info.frames))
    try:
        feed_tap(video_path, info.frames, delivery)
    finally:
        delivered = delivery.close()
    return delivered


@dataclass(frozen=True)
class ReviewPick:
    """The review frames: `box_checks` by the hard-frame pick, `attribute_checks` at AVA
    timestamps by attribute risk (a share of the same budget); disjoint, each sorted."""

    box_checks: list[int]
    attribute_checks: list[int] = field(default_factory=list)

    @property
    def frames(self) -> list[int]:
        return sorted({*self.box_checks, *self.attribute_checks})


def pick_review_frames(
    result: PropagationResult, delivered: list[int], budget: float, keyframes: list[int],
    model_scores: list[float] | None = None, *, attribute_share: float = 0.0,
    attributes: Sequence[AttributeSpec] = (), keyframe_attributes: dict | None = None, ava_rate: float = 1.0,
) -> ReviewPick:
    """Up to floor(budget x delivered) review frames, chosen among the delivered frames only.

    `attribute_share` of them (rounded) are attribute checks: AVA frames picked by attribute
    risk (src.vision.attribute_checks, from `attributes` and the values the keyframes set,
    `keyframe_attributes`); what that pick leaves (no mutable attribute, no risk, no AVA frame
    delivered) goes back to the box checks: hard frames by the tracker's expected error, plus
    the detector's disagreement with the tracks (`model_scores`, per frame, from
    src.vision.disagreement) when given."""
    count = math.floor(budget * len(delivered) + 1e-9)
    if count <= 0:
        return ReviewPick([])
    delivered_set = set(delivered)
    attribute_checks = []
    if attribute_share > 0 and attributes:
        attribute_checks = select_attribute_frames(
            attributes, result.tracks, keyframe_attributes or {}, fps=result.video.fps, n_frames=result.video.frames,
            count=attribute_check_count(count, attribute_share), ava_rate=ava_rate,
            allowed=delivered_set - set(keyframes))
    exclude = set(keyframes) | set(attribute_checks) | {f for f in range(result.video.frames) if f not in delivered_set}
    tracks = result.tracks
    if model_scores is not None:
        tracks = [*tracks, *as_error_tracks(np.asarray(model_scores[: result.video.frames]))]
    box_checks = select_hard_frames(tracks, result.video.frames, count - len(attribute_checks), exclude=exclude)
    return ReviewPick(box_checks, attribute_checks)


@dataclass(frozen=True)
class Built:
    """The build stage's output: the zips (in the run's scratch folder), the manifest beside
    them, and the quantities the charge counts."""

    zips: dict[str, str]
    manifest: str
    frames: int
    object_frames: int
    splits: dict[str, int]


def run_build(
    video_path: str, result: PropagationResult, spec: ExportSpec, delivered: list[int],
    split: dict[str, Any], keep_empty: bool, out_dir: str, progress_path: str, images_dir: str | None = None,
) -> Built:
    """Split, label and export. ``images_dir``: the frames' images, already written
    (``Tracked.images``): the video is then not decoded."""
    assignment = split_by_blocks(delivered, split, int(split.get("seed", 0)))
    class_ids = {name: i for i, name in enumerate(spec.classes)}
    sequence = labeled_frames(result, delivered, assignment, class_ids, reviewed=spec.reviewed_frames, keep_empty=True)
    frames = [f for f in sequence if keep_empty or f.objects]
    zips = build_exports(Path(video_path), result, spec, frames, Path(out_dir), progress=ProgressFile(Path(progress_path)),
                         sequence=sequence, images=Path(images_dir) if images_dir else None)
    return Built(
        zips={fmt: str(path) for fmt, path in zips.items()}, manifest=str(Path(out_dir) / "manifest.json"),
        frames=len(frames), object_frames=sum(len(f.objects) for f in frames),
        splits={s: sum(1 for f in frames if f.split == s) for s in ("train", "valid", "test")},
    )


def preview_spans(reuse_path: str, seeds: dict[int, list[dict]], info: VideoInfo,
                  tracker_model: str | None) -> list[list[int]] | None:
    """`[[track_id, first, last], ...]`: the frames a preview on top of `reuse_path` will
    propagate again (None: all), for the editor to mark while it runs."""
    from src.vision.propagate import spans_to_rerun
    from src.vision.segments import Reusable

    reuse = Reusable.from_bytes(Path(reuse_path).read_bytes())
    spans = spans_to_rerun(seed_objects(seeds), info, reuse, tracker_model)
    return None if spans is None else [[s.track_id, s.start, s.stop] for s in sorted(spans.values(), key=lambda s: s.track_id)]


def run_preview(
    video_path: str, seeds: dict[int, list[dict]], info: VideoInfo | None, tracker_model: str | None,
    budget: float, progress_path: str, *, reuse_path: str | None = None, keep_path: str | None = None,
    stop_path: str | None = None, frame_cache_dir: str | None = None, checks: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The editor's preview (src/datasets/preview.py): the engine on the draft's keyframes, as
    the stored JSON document (tracks, confidence, the hard frames at `budget`).

    `reuse_path`: an earlier preview's Reusable (src.vision.segments): only the spans around
    the keyframes that changed since are propagated again. `keep_path`: where this one's
    Reusable goes. `stop_path`: a file whose appearance cancels the run (PropagationCancelled).
    `frame_cache_dir`: where this machine keeps decoded videos (src.vision.frame_cache): a
    whole-video preview keeps its frames there and the next fix in place decodes nothing.
    `checks`: how the review budget gives attribute checks (preview.attribute_checks)."""
    from src.datasets.preview import document
    from src.vision.segments import Reusable

    reuse = Reusable.from_bytes(Path(reuse_path).read_bytes()) if reuse_path else None
    stop = Path(stop_path) if stop_path else None
    result = propagate(video_path, seed_objects(seeds), budget=0, info=info, progress=ProgressFile(Path(progress_path)),
                       tracker_model=tracker_model, reuse=reuse, keep=keep_path is not None,
                       cancelled=stop.exists if stop is not None else None,
                       frame_cache=FrameCache(frame_cache_dir) if frame_cache_dir else None)
    if keep_path is not None:
        Path(keep_path).write_bytes(result.reusable.to_bytes())
    doc = document(result, budget=budget, keyframes=[int(f) for f in seeds], checks=checks,
                   keyframe_attributes=keyframe_values(seeds))
    doc["spans"] = None if result.spans is None else [[s.track_id, s.start, s.stop] for s in result.spans]
    return doc
