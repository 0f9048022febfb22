"""Propagate keyframe boxes through a whole video.

For every object, from each of its keyframes a pass runs forward to its next keyframe (or
the end) and backward to its previous keyframe (or the start). Between two keyframes both
estimates exist and are fused, weighted by the distance to each keyframe and by their
confidence, and their agreement feeds the confidence. A ``gone`` keyframe ends the object
until its next keyframe with a box.

Speed: one thread decodes into a disk-backed ring of small grey frames while a pool of
processes (threads for small jobs, where starting processes would cost more than it saves)
runs the passes; each pass starts as soon as its frames exist. Processes, because a pass
spends half its time in Python between OpenCV calls, and threads would share one GIL. The
ring holds the longest backward pass (it reads its segment from the far end) plus
``PropagationParams.store_ahead`` frames; the decoder waits for the slowest pass, so memory and disk do not grow
with the video's length.

Re-propagation: given the ``Reusable`` of an earlier call on the same video (``reuse=``),
only the passes inside the spans that the keyframe changes touch run again, and their
frames are spliced into the earlier tracks (src.vision.segments).
"""

from __future__ import annotations

import contextlib
import copy
import multiprocessing
import os
import pickle
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from src.vision import kernels
from src.vision.confidence import fused_confidence
from src.vision.frame_cache import FrameCache
from src.vision.frames import FrameReader, FrameSpec, FrameStore, FrameTap, feed_tap
from src.vision.hard_frames import select_hard_frames
from src.vision.history import with_history
from src.vision.metrics import iou
from src.vision.segments import Reusable, Span, balanced_groups, changed_spans, pass_length
from src.vision.tracker import ObjectTracker
from src.vision.types import (
    SOURCE_KEYFRAME,
    SOURCE_PROPAGATED,
    PropagationResult,
    SeedObject,
    Track,
    VideoInfo,
)
from src.vision.video import VideoProbeError, probe

LK_ENGINE = "lk-ncc"  # the built-in tracker's name in results and datasets
CANCEL_POLL_S = 0.1  # how often a running propagation asks whether it is still wanted
CANCEL_GRACE_S = 1.0  # how long a cancelled one waits for its passes to stop before it returns


@dataclass(frozen=True)
class PropagationParams:
    """How a propagation runs around its trackers (their own thresholds: TrackerParams):
    working resolution, the frame ring, threads or processes, strides, fusion. ``propagate(...,
    params=PropagationParams(store_ahead=3))`` tries a variant without touching the module."""

    work_long_side: int = 640  # working resolution: long side in px ...
    # ... raised (up to full resolution) so the smallest seed box keeps this (was 24: synthetic
    # 720p 5 / 20 objects 0.926 / 0.827 -> 0.940 / 0.838 mean IoU; per-object cost is set by the
    # normalized crops, not by this; the frame store on disk grows with the square of the scale)
    min_object_px: int = 48
    max_store_bytes: int = 8 << 30  # the frame ring on disk stays under this: far-apart keyframes track smaller
    store_ahead: int = 256  # frames the decoder may run ahead of the slowest pass
    process_min_work: int = 1000  # object-frames from which passes run in processes rather than threads
    # A pass tracks every other frame (the one between is interpolated) while its object is
    # confidently tracked and slow: confidence at least stride_conf, speed at most stride_speed
    # box sizes per frame; every third frame at half that speed. A longer step that ends below
    # stride_conf is undone and retaken one frame at a time. Easy stretches cost a half to a
    # third; hard ones get every frame.
    stride_conf: float = 0.8
    stride_speed: float = 0.08
    fuse_min_iou: float = 0.3  # forward and backward boxes overlapping this much are averaged, else one is chosen
    # two same-class boxes overlapping this much are one object (exclude_collapsed). In the
    # ground truth of the four crowd sequences two people overlap IoU >= 0.75 on 58 pair-frames
    # and >= 0.9 on none; at 0.75 the learned engine dropped correct boxes of people passing
    # each other (150-frame cuts: pets09 0.561 -> 0.590, kitti17 0.236 -> 0.254 at 0.9). Nearer
    # boxes are left to the confidence (src.vision.history's brush).
    collapse_iou: float = 0.9
    # the confidence reads the track's way from its keyframe too (src.vision.history); off:
    # the passes' fused confidence, which bench.fit_history fits that step on
    history: bool = True


DEFAULT_PARAMS = PropagationParams()


class SeedError(ValueError):
    """The keyframes do not fit the video; ``str(err)`` is a human message."""


class PropagationCancelled(RuntimeError):
    """``propagate(cancelled=)`` said stop: its caller no longer wants the result."""



def validate_keyframes(keyframes: dict[int, list[SeedObject]], info: VideoInfo) -> dict[int, list[SeedObject]]:
    """The keyframes with every box clipped to the frame (an object entering at the edge is
    drawn partly outside it). Raise SeedError for: keyframe out of range, box wholly outside
    the frame, box smaller than 2x2 px (inside the frame), duplicate track id on one keyframe,
    one track id with two classes, no box at all."""
    classes: dict[int, str] = {}
    any_box = False
    out: dict[int, list[SeedObject]] = {}
    for f, objs in keyframes.items():
        if not 0 <= f < info.frames:
            raise SeedError(f"keyframe {f} is outside the video (frames 0-{info.frames - 1})")
        seen: set[int] = set()
        out[f] = []
        for o in objs:
            if o.track_id in seen:
                raise SeedError(f"track_id {o.track_id} appears twice on keyframe {f}")
            seen.add(o.track_id)
            if o.gone:
                out[f].append(o)
                continue
            if o.box is None or np.shape(o.box) != (4,) or not np.isfinite(o.box).all():
                raise SeedError(f"track_id {o.track_id} on keyframe {f}: box must be 4 numbers x1, y1, x2, y2")
            x1, y1, x2, y2 = (float(v) for v in o.box)
            if x2 - x1 < 2 or y2 - y1 < 2:
                raise SeedError(f"track_id {o.track_id} on keyframe {f}: box smaller than 2x2 px (or x2 < x1)")
            if x2 <= 0 or y2 <= 0 or x1 >= info.width or y1 >= info.height:
                raise SeedError(
                    f"track_id {o.track_id} on keyframe {f}: box {[x1, y1, x2, y2]} is outside the "
                    f"{info.width}x{info.height} frame"
                )
            clipped = np.array([max(x1, 0.0), max(y1, 0.0), min(x2, info.width), min(y2, info.height)], np.float32)
            if clipped[2] - clipped[0] < 2 or clipped[3] - clipped[1] < 2:
                raise SeedError(
                    f"track_id {o.track_id} on keyframe {f}: box {[x1, y1, x2, y2]} has less than 2x2 px inside the "
                    f"{info.width}x{info.height} frame"
                )
            if classes.setdefault(o.track_id, o.class_name) != o.class_name:
                raise SeedError(f"track_id {o.track_id} has two classes: {classes[o.track_id]!r}, {o.class_name!r}")
            out[f].append(SeedObject(o.track_id, o.class_name, clipped))
            any_box = True
    if not any_box:
        raise SeedError("no keyframe has a box")
    return out


def _pass_jobs(per_object: dict[int, list[tuple[int, SeedObject]]], n: int):
    """Every pass: ([(track id, "fwd" | "bwd", keyframe index)], [(start, box, stop, step)])."""
    keys, jobs = [], []
    for tid, kfs in per_object.items():
        for j, (f, o) in enumerate(kfs):
            if o.gone:
                continue
            nxt = kfs[j + 1][0] - 1 if j + 1 < len(kfs) else n - 1
            prv = kfs[j - 1][0] + 1 if j > 0 else 0
            keys += [(tid, "fwd", j), (tid, "bwd", j)]
            # backward from a track's first keyframe nothing says the object was there yet
            jobs += [(f, o.box, nxt, 1, False), (f, o.box, prv, -1, j == 0)]
    return keys, jobs


def store_slots(n: int, jobs: list[tuple], params: PropagationParams = DEFAULT_PARAMS) -> int:
    """Frames the ring must hold: a backward pass reads its whole segment (from its keyframe
    back to the previous one) after the decoder reached its keyframe, so the longest of
    those, plus ``params.store_ahead`` frames of slack for the decoder."""
    longest = max((j[0] - j[2] + 1 for j in jobs if j[3] < 0 and j[2] < j[0]), default=0)
    return min(n, longest + params.store_ahead)


def working_scale(info: VideoInfo, keyframes: dict[int, list[SeedObject]], slots: int | None = None,
                  params: PropagationParams = DEFAULT_PARAMS) -> float:
    """Downscale factor (<= 1) of the tracking copy: long side ``params.work_long_side``,
    unless the smallest seed box would shrink below ``min_object_px``; but never so large that
    a frame ring of ``slots`` frames (default: the whole video) of pyramids (4/3 of a frame)
    would pass ``max_store_bytes``."""
    s = min(1.0, params.work_long_side / max(info.width, info.height))
    sides = [min(o.box[2] - o.box[0], o.box[3] - o.box[1]) for objs in keyframes.values() for o in objs if not o.gone]
    if sides:
        s = max(s, min(1.0, params.min_object_px / max(min(sides), 1.0)))
    frames = max(1, slots or info.frames)
    cap = (params.max_store_bytes / (frames * info.width * info.height * 4 / 3)) ** 0.5
    return float(min(s, cap))


class PassResult(NamedTuple):
    """One pass between keyframes, frame by frame in the pass's own order (a backward pass runs
    from its keyframe down): ``frames`` (m,), ``boxes`` (m, 4) full-res xyxy with NaN rows,
    ``confidence`` (m,), ``lost`` (m,) bool: absent because tracking failed, ``left`` (m,)
    bool: absent because the tracker judged the object out of the picture, or, before a
    track's first keyframe, not yet there."""

    frames: np.ndarray
    boxes: np.ndarray
    confidence: np.ndarray
    lost: np.ndarray
    left: np.ndarray


class Checkpoint(NamedTuple):
    """A pass stopped part-way, at the end of one chunk of a long pass (src.vision.segments):
    its whole state (the tracker's included, its model not), for the next chunk to go on from
    on any machine, box for box as if it had never stopped. Pickled (and compressed): it is
    written and read only by the workers, in the platform's own store (never anything a user
    uploads)."""

    data: bytes


class _Pass:
    """One tracking pass: from keyframe ``start`` (box in full-res px) over frames
    ``start+step .. stop`` inclusive; each ``advance`` covers one frame, or two or three (see
    PropagationParams.stride_conf). ``mark``: its mark in the frame ring (FrameReader.hold), if any.
    ``until``: stop once this many of its frames are done (a chunk of the pass; None: its end)."""

    def __init__(self, start: int, box: np.ndarray, stop: int, step: int, mark: int | None = None,
                 open_end: bool = False, model_dir: str | None = None, params: PropagationParams = DEFAULT_PARAMS):
        self.until: int | None = None
        self.params = params
        self.start, self.box, self.step, self.mark = start, np.asarray(box, np.float64), step, mark
        self.open_end = open_end  # no keyframe beyond ``stop``: report only while the evidence holds
        self.model_dir = model_dir  # the learned tracker's files (None: the LK+NCC tracker)
        self.frames = np.arange(start + step, stop + step, step)
        m = len(self.frames)
        self.boxes = np.full((m, 4), np.nan, np.float64)
        self.conf = np.zeros(m, np.float64)
        self.lost = np.zeros(m, bool)
        self.left = np.zeros(m, bool)  # absent: judged out of the picture (or not yet in it)
        self.i = 0  # frames done
        self.tracker: ObjectTracker | None = None

    @property
    def done(self) -> bool:
        """Done with this run: at the pass's end, or at ``until``."""
        return self.finished or (self.until is not None and self.i >= self.until)

    @property
    def finished(self) -> bool:
        return self.i >= len(self.frames)

    def checkpoint(self) -> Checkpoint:
        state = {k: v for k, v in self.__dict__.items() if k not in ("mark", "model_dir", "until")}
        return Checkpoint(zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1))

    @classmethod
    def resume(cls, checkpoint: bytes, mark: int | None = None, model_dir: str | None = None) -> _Pass:
        """The pass as ``checkpoint`` left it, going on in this process (``model_dir``: its
        copy of the learned tracker's files)."""
        p = cls.__new__(cls)
        p.__dict__.update(pickle.loads(zlib.decompress(checkpoint)))  # the workers' own (see Checkpoint)
        p.mark, p.model_dir, p.until = mark, model_dir, None
        if model_dir is not None and p.tracker is not None:
            from src.vision.nanotrack import NanoModel

            p.tracker.attach(NanoModel.load(model_dir))
        return p

    def outcome(self) -> PassResult | Checkpoint:
        """Its result at its end; where it stopped at ``until``, its checkpoint."""
        return self.result() if self.finished else self.checkpoint()

    def _stride(self) -> int:
        tr = self.tracker
        p = self.params
        if tr is None or tr.lost or tr.last_conf < p.stride_conf or self.i + 1 >= len(self.frames):
            return 1
        size = max(tr.box[2] - tr.box[0], tr.box[3] - tr.box[1])
        speed = np.abs(tr.velocity).max() / size
        if speed <= p.stride_speed / 2 and self.i + 2 < len(self.frames):
            return 3
        return 2 if speed <= p.stride_speed else 1

    @property
    def needs(self) -> int:
        """The frame the next ``advance`` reads."""
        return self.start if self.tracker is None else int(self.frames[self.i + self._stride() - 1])

    @property
    def waits_for(self) -> int:
        """The highest frame the next ``advance`` touches: ``needs``, or for a backward pass the
        frame its tracker last saw (the camera motion from it is known once it is decoded).
        From its keyframe, which it read first, that frame is always decoded; a backward chunk
        going on from a checkpoint, in a store that starts lower, may have to wait for it."""
        if self.step > 0 or self.tracker is None:
            return self.needs
        return self.start if self.i == 0 else int(self.frames[self.i - 1])

    def first_frame(self) -> int:
        """The lowest frame this pass will still read (its ring mark)."""
        if self.done:
            return np.iinfo(np.int64).max
        if self.step < 0:
            return int(self.frames[-1])
        return self.start if self.i == 0 else int(self.frames[self.i - 1])  # the tracker's previous frame

    def batchable(self) -> bool:
        """Whether the next ``advance`` is one learned-tracker step another can share a model
        call with (see ``_run_passes``)."""
        return self.tracker is not None and not self.done and getattr(self.tracker, "wants_batch", bool)()

    def advance(self, store: FrameReader, nano=None) -> None:
        """One step (``nano``: the learned tracker's result on ``needs``, computed in a batch)."""
        self._advance(store, nano)
        if self.mark is not None and (self.step > 0 or self.done):
            store.hold(self.mark, self.first_frame())

    def _advance(self, store: FrameReader, nano=None) -> None:
        s = store.scale
        if self.tracker is None:
            frame = store.get(self.start)
            if self.model_dir is None:
                self.tracker = ObjectTracker(frame, self.box * s, open_end=self.open_end)
            else:
                from src.vision.nanotrack import LearnedObjectTracker, NanoModel

                model = NanoModel.load(self.model_dir)
                self.tracker = LearnedObjectTracker(frame, self.box * s, self.open_end, model=model)
            return
        dt = self._stride()
        if dt > 1:
            saved = copy.copy(self.tracker)  # step() rebinds its state, never mutates it in place
            r = self._step(store.get(self.needs), dt, nano, store)
            if r.box is not None and r.confidence >= self.params.stride_conf:
                # the skipped frames: on the straight line, as sure as the less sure end
                for k in range(1, dt):
                    self.boxes[self.i] = (saved.box + (r.box - saved.box) * k / dt) / s
                    self.conf[self.i] = min(saved.last_conf, r.confidence)
                    self.i += 1
            else:
                self.tracker = saved
                r = self._step(store.get(int(self.frames[self.i])), 1, None, store)
        else:
            r = self._step(store.get(int(self.frames[self.i])), 1, nano, store)
        if r.box is None:
            # before a track's first keyframe, absent is "not there yet" as much as "lost"
            self.left[self.i] = self.tracker.left_frame or self.open_end
            self.lost[self.i] = not self.left[self.i]
        else:
            self.boxes[self.i] = r.box / s
            self.conf[self.i] = r.confidence
        self.i += 1
        if self.tracker.retract:
            # an open-ended pass whose evidence failed: the boxes since it started failing go
            k = slice(max(0, self.i - self.tracker.retract), self.i - 1)
            self.boxes[k], self.conf[k], self.left[k], self.lost[k] = np.nan, 0.0, True, False
            self.tracker.retract = 0

    @property
    def stride_dt(self) -> int:
        return self._stride()

    def set_camera(self, store: FrameReader, dt: int | None = None) -> None:
        """Tell the tracker the camera motion from its last frame to the one its next step
        (``dt`` frames on; default: the stride) reads."""
        prev = self.start if self.i == 0 else int(self.frames[self.i - 1])
        k = self.i + (self._stride() if dt is None else dt) - 1
        self.tracker.camera = store.camera(prev, int(self.frames[k]))

    def _step(self, frame, dt: int, nano, store: FrameReader | None = None):
        if store is not None and nano is None:
            self.set_camera(store, dt)
        return self.tracker.step(frame, dt) if nano is None else self.tracker.step(frame, dt, nano)

    def result(self) -> PassResult:
        return PassResult(self.frames, self.boxes, self.conf, self.lost, self.left)


def _make_pass(start: int, box: np.ndarray, stop: int, step: int, mark: int | None = None, open_end: bool = False,
               model_dir: str | None = None, params: PropagationParams = DEFAULT_PARAMS,
               resume: bytes | None = None, until: int | None = None) -> _Pass:
    """A pass from its keyframe, or (``resume``: a Checkpoint's data) from where it stopped;
    ``until``: see ``_Pass``."""
    p = _Pass(start, box, stop, step, mark, open_end, model_dir, params) if resume is None else \
        _Pass.resume(resume, mark, model_dir)
    p.until = until
    return p


def _run_passes(spec: FrameSpec, passes: list[tuple]) -> list[PassResult | Checkpoint]:
    """Run a group of passes (``_make_pass`` arguments: start, box, stop, step, mark, open_end,
    model_dir, params[, resume, until]) together, one frame of each in turn, so that every pass
    of the group follows the decoder instead of the last ones waiting for the first to finish.
    Returns each pass's ``_Pass.outcome()``, in order."""
    store = FrameReader(spec)
    todo = [_make_pass(*p) for p in passes]
    active = [p for p in todo if not p.done]
    while active:
        if store.cancelled():
            raise PropagationCancelled("propagation cancelled")
        moved = False
        ready = [p for p in active if store.ready(p.waits_for)]
        # learned-tracker steps of this round share one model call (one batch per round)
        batch = [p for p in ready if p.batchable()]
        pre = {}
        if len(batch) > 1:
            from src.vision.nanotrack import track_batch

            frames = [store.get(p.needs) for p in batch]
            for p in batch:
                p.set_camera(store)
            states = [p.tracker.search_state(p.stride_dt) for p in batch]  # a stride undone keeps the old state
            pre = {id(p): (*r, st) for p, r, st in zip(batch, track_batch(states, frames), states)}
        for p in ready:
            p.advance(store, pre.get(id(p)))
            moved = True
        active = [p for p in active if not p.done]
        if not moved:
            store.get(min(p.waits_for for p in active))  # wait for the decoder
    return [p.outcome() for p in todo]


def _run_all(store: FrameStore, jobs: list[tuple], workers: int, processes: bool, progress,
             cancelled: Callable[[], bool] | None = None) -> list[tuple]:
    """Decode into ``store`` while the passes ``jobs`` run in ``workers`` balanced groups (in
    the shared process pool, or in threads); each pass's ``_Pass.result()``, in order.
    ``cancelled()`` is asked every CANCEL_POLL_S: when it says so, the decoder and the passes
    stop (within a frame each) and PropagationCancelled is raised."""
    n = store.n_frames - store.first
    # Parallelism comes from the passes; OpenCV's own threads on the small per-object
    # crops only add scheduling cost (measured: ~20% less CPU for the same passes).
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        store.start(None if progress is None else (lambda done: progress(done, n)))
        groups = balanced_groups([pass_length(j) for j in jobs], workers)
        pool = _process_pool(workers) if processes else ThreadPoolExecutor(workers)
        results: list = [None] * len(jobs)
        try:
            futures = [pool.submit(_run_passes, store.spec, [jobs[i] for i in g]) for g in groups]
            while cancelled is not None:
                finished, running = wait_futures(futures, timeout=CANCEL_POLL_S, return_when=FIRST_EXCEPTION)
                if not running or any(f.exception() for f in finished):
                    break
                if cancelled():
                    # running passes stop within a frame; ones still waiting for a process
                    # (a cold pool starts in seconds) are dropped, or fail on the closed store
                    store.cancel()
                    for f in futures:
                        f.cancel()
                    wait_futures(futures, timeout=CANCEL_GRACE_S)
                    raise PropagationCancelled("propagation cancelled")
            for g, fut in zip(groups, futures):
                for i, res in zip(g, fut.result()):
                    results[i] = res
            store.join()
        except BrokenProcessPool as exc:
            _drop_process_pool()
            raise RuntimeError("a tracking process died (out of memory?)") from exc
        except RuntimeError as exc:
            store.stop()
            if store.cancelled:
                raise PropagationCancelled("propagation cancelled") from exc
            if store.broken_at is not None:  # bad input (damaged, or replaced since its probe), not our failure
                raise VideoProbeError(
                    f"the video stops decoding at frame {store.broken_at} of {n} (damaged, or changed since it was checked)"
                ) from exc
            raise
        finally:
            if not processes:
                pool.shutdown(cancel_futures=True)
        return results
    finally:
        cv2.setNumThreads(cv_threads)


def _fuse(n: int, a: int, b: int, fwd: PassResult | None, bwd: PassResult | None, box_a=None, box_b=None,
          min_iou: float = DEFAULT_PARAMS.fuse_min_iou):
    """Combine passes between keyframes ``a`` < ``b`` (either may be None) into
    (boxes (n, 4), single-pass conf (n,), agreement (n,), both (n,), lost (n,), left (n,)) for
    frames a+1..b-1."""
    m = b - a - 1
    out_b = np.full((m, 4), np.nan)
    out_c = np.zeros(m)
    agree = np.zeros(m)
    both = np.zeros(m)
    F = fwd.boxes[:m] if fwd is not None else np.full((m, 4), np.nan)
    cf = fwd.confidence[:m] if fwd is not None else np.zeros(m)
    if bwd is not None:  # backward pass runs b-1 .. a+1: reverse to frame order
        B, cb = bwd.boxes[:m][::-1], bwd.confidence[:m][::-1]
    else:
        B, cb = np.full((m, 4), np.nan), np.zeros(m)
    lost = np.zeros(m, bool)
    left = np.zeros(m, bool)
    if fwd is not None:
        lost |= fwd.lost[:m]
        left |= fwd.left[:m]
    if bwd is not None:
        lost |= bwd.lost[:m][::-1]
        left |= bwd.left[:m][::-1]
    t = np.arange(a + 1, b)
    wf = (b - t) / (b - a) if (fwd is not None and bwd is not None) else np.ones(m)
    wb = 1.0 - wf if (fwd is not None and bwd is not None) else np.ones(m)
    hf, hb = ~np.isnan(F).any(1), ~np.isnan(B).any(1)
    two = fwd is not None and bwd is not None
    for i in range(m):
        if hf[i] and hb[i]:
            u = float(iou(F[i], B[i])[0])
            pf, pb = wf[i] * (cf[i] + 1e-3), wb[i] * (cb[i] + 1e-3)
            if u >= min_iou:
                out_b[i] = (pf * F[i] + pb * B[i]) / (pf + pb)
                out_c[i] = (pf * cf[i] + pb * cb[i]) / (pf + pb)
            elif pf >= pb:
                out_b[i], out_c[i] = F[i], cf[i]
            else:
                out_b[i], out_c[i] = B[i], cb[i]
            agree[i], both[i] = u, 1.0
        elif hf[i] or hb[i]:
            out_b[i], out_c[i] = (F[i], cf[i]) if hf[i] else (B[i], cb[i])
            both[i] = 1.0 if two else 0.0  # the other pass says "absent": agreement 0
    if two and box_a is not None and box_b is not None:
        _settle_end_runs(F, cf, B, cb, hf & hb & (agree < min_iou), box_a, box_b, out_b, out_c)
    absent = np.isnan(out_b).any(1)
    lost &= absent
    left &= absent & ~lost
    return out_b, out_c, agree, both, lost, left


def _settle_end_runs(F, cf, B, cb, apart, box_a, box_b, out_b, out_c) -> None:
    """Frames where the two passes disagree (``apart``) in a run that reaches keyframe a or b.

    Next to a keyframe, the pass that starts there is one step from a box a person drew, so
    the pass that arrives there on something else has followed something else since the far
    end of the run (where the passes last agreed): take the other pass for the whole run,
    whatever its distance weight says (a pass that jumped onto a passing car keeps a good
    confidence all the way back to the keyframe). A run spanning both ends keeps the per-frame
    choice."""
    m = len(apart)
    if m == 0 or apart.all():
        return
    if apart[0]:
        k = int(np.argmin(apart))  # the run is 0 .. k-1
        take_f = iou(F[0], box_a)[0] >= iou(B[0], box_a)[0]
        out_b[:k], out_c[:k] = (F[:k], cf[:k]) if take_f else (B[:k], cb[:k])
    if apart[-1]:
        k = m - int(np.argmin(apart[::-1]))  # the run is k .. m-1
        take_b = iou(B[-1], box_b)[0] >= iou(F[-1], box_b)[0]
        out_b[k:], out_c[k:] = (B[k:], cb[k:]) if take_b else (F[k:], cf[k:])


class _TapFeed:
    """A second decode of the whole video feeding a tap, in a thread alongside the passes (the
    built-in tracker's store reads the decoder's luma plane, a tap wants BGR). Leaving the
    block waits for it and raises what it raised; VideoProbeError when the video stops early."""

    def __init__(self, video_path: str | Path, n: int, tap: FrameTap):
        self.video_path, self.n, self.tap = video_path, n, tap
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="forge-tap")
        self._stop = threading.Event()

    def __enter__(self) -> _TapFeed:
        self._future = self._pool.submit(feed_tap, self.video_path, self.n, self.tap, self._stop)
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None:
            self._stop.set()
        self._pool.shutdown(wait=True)
        if exc[0] is None:
            self._future.result()


def propagate(
    video_path: str | Path,
    keyframes: dict[int, list[SeedObject]],
    *,
    budget: float = 0.05,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    info: VideoInfo | None = None,
    processes: bool | None = None,
    tracker_model: str | Path | None = None,
    reuse: Reusable | None = None,
    keep: bool = False,
    cancelled: Callable[[], bool] | None = None,
    params: PropagationParams = DEFAULT_PARAMS,
    frame_cache: FrameCache | None = None,
    tap: FrameTap | None = None,
) -> PropagationResult:
    """Propagate ``keyframes`` ({frame: [SeedObject]}, boxes full-res xyxy) through the video.

    ``tracker_model``: a folder with the learned tracker's files (src.vision.nanotrack); when
    it is None or unusable the built-in LK+NCC tracker runs, and the result says which engine
    ran and why (``engine``, ``engine_note``).

    ``reuse``: an earlier result's ``reusable`` for the same video: only the spans of the
    tracks whose keyframes changed are propagated again (``result.spans``); when the engine
    or the working scale differ from that run, everything is. ``keep``: put this run's
    ``Reusable`` on the result. ``cancelled()``: asked every CANCEL_POLL_S while the passes
    run; True stops them and raises PropagationCancelled.

    ``progress(done, total)`` is called from the decode thread as frames arrive (``total``:
    the frames decoded, the spans' extent on a re-propagation). ``budget`` picks the hard
    frames (share < 1 or count >= 1). ``workers`` passes run at once (default: one per core),
    in processes when ``processes`` (default: when the job has at least
    ``params.process_min_work`` object-frames), else in threads. ``params``: the settings around
    the trackers (PropagationParams). ``frame_cache``: read the frames from there when this video
    was decoded at this scale before, and keep them there after a whole-video run (a preview's
    next fix in place then decodes nothing). ``tap``: sees every frame of the video, full size,
    BGR, in order (src.vision.frames.FrameTap; a dataset job's sampling and export images,
    src.vision.delivery). When the frame store reads BGR anyway (the learned tracker) the tap
    sees the engine's own decode, which then covers the whole video (also on a re-propagation)
    and never reads ``frame_cache``; the built-in tracker reads the decoder's luma plane, so
    there a second decode feeds the tap alongside the passes (``_TapFeed``). The tracks are
    the same with a tap or without. Raises VideoProbeError / SeedError.
    """
    t0 = time.perf_counter()
    plan = plan_propagation(video_path, keyframes, info=info, tracker_model=tracker_model, reuse=reuse, params=params)
    n, first, last = plan.info.frames, plan.first, plan.last
    colour = plan.engine.model_dir is not None  # the learned tracker reads colour crops: BGR frames
    store_tap = tap if colour and plan.jobs else None
    if store_tap is not None:  # the tap sees every frame: decode them all, the spans' passes read theirs
        first, last, frame_cache = 0, n - 1, None
    if processes is None:
        processes = (workers or max(1, os.cpu_count() or 1)) > 1 and plan.work >= params.process_min_work
    results = []
    with _TapFeed(video_path, n, tap) if tap is not None and store_tap is None else contextlib.nullcontext():
        if plan.jobs:
            results = track_passes(video_path, plan.info, plan.jobs, plan.scale, plan.engine.model_dir, first=first,
                                   last=last, workers=workers, processes=processes, progress=progress,
                                   cancelled=cancelled, params=params, frame_cache=frame_cache, tap=store_tap)
    return assemble(plan, dict(zip(plan.keys, results)), reuse=reuse, keep=keep, budget=budget, params=params,
                    seconds=time.perf_counter() - t0)


@dataclass(frozen=True)
class Plan:
    """What a propagation will run, before it runs: the validated keyframes per track, the
    engine, the working scale, and the passes (``keys[i]`` = (track id, "fwd" | "bwd",
    keyframe index) names ``jobs[i]`` = (start, box, stop, step, open_end)). On a
    re-propagation (``spans`` not None) only the passes inside the spans are in ``jobs``;
    frames ``first`` .. ``last`` are what they read, ``work`` the object-frames they cover."""

    info: VideoInfo
    keyframes: dict[int, list[SeedObject]]
    per_object: dict[int, list[tuple[int, SeedObject]]]
    engine: Engine
    keys: list[tuple[int, str, int]]
    jobs: list[tuple]
    scale: float
    spans: dict[int, Span] | None
    first: int
    last: int
    work: int


def plan_propagation(video_path: str | Path, keyframes: dict[int, list[SeedObject]], *, info: VideoInfo | None = None,
                     tracker_model: str | Path | None = None, reuse: Reusable | None = None,
                     params: PropagationParams = DEFAULT_PARAMS) -> Plan:
    """The passes ``propagate`` would run for these arguments (src.vision.segments splits them
    into segment jobs). Raises SeedError for keyframes that do not fit the video."""
    info = info or probe(video_path)
    keyframes = validate_keyframes({int(f): list(objs) for f, objs in keyframes.items()}, info)
    n = info.frames
    per_object: dict[int, list[tuple[int, SeedObject]]] = {}
    for f in sorted(keyframes):
        for o in keyframes[f]:
            per_object.setdefault(o.track_id, []).append((f, o))
    engine = resolve_engine(tracker_model)
    keys, jobs = _pass_jobs(per_object, n)
    # the scale of a full run, also on a re-propagation: the same passes give the same boxes
    scale = working_scale(info, keyframes, store_slots(n, jobs, params), params)
    spans = _spans_to_rerun(reuse, keyframes, n, scale, engine)
    first, last, work = 0, n - 1, len(per_object) * n
    if spans is not None:
        inside = [i for i, ((tid, _, _), job) in enumerate(zip(keys, jobs))
                  if tid in spans and spans[tid].start <= min(job[0], job[2]) and max(job[0], job[2]) <= spans[tid].stop]
        keys, jobs = [keys[i] for i in inside], [jobs[i] for i in inside]
        first = min((sp.start for sp in spans.values()), default=0)
        last = max((sp.stop for sp in spans.values()), default=-1)
        work = sum(len(sp) for sp in spans.values())
    return Plan(info, keyframes, per_object, engine, keys, jobs, scale, spans, first, last, work)


def track_passes(video_path: str | Path, info: VideoInfo, jobs: list[tuple], scale: float, model_dir: str | None, *,
                 first: int = 0, last: int | None = None, workers: int | None = None, processes: bool = False,
                 progress: Callable[[int, int], None] | None = None, cancelled: Callable[[], bool] | None = None,
                 params: PropagationParams = DEFAULT_PARAMS, frame_cache: FrameCache | None = None,
                 tap: FrameTap | None = None, resume: list[bytes | None] | None = None,
                 until: list[int | None] | None = None) -> list[PassResult | Checkpoint]:
    """Run the passes ``jobs`` ((start, box, stop, step, open_end), see ``Plan``) over frames
    ``first`` .. ``last`` (default: the end) decoded at ``scale``: each pass's PassResult, in
    order. A segment job runs a part of a plan's passes this way, on any machine: the same
    passes at the same scale give the same boxes as in one piece.

    A chunk of a long pass (src.vision.segments.chunk_frames): ``until[i]`` stops pass ``i``
    once that many of its frames are done and gives its Checkpoint instead of its result;
    ``resume[i]`` (a Checkpoint's data) goes on from where an earlier chunk stopped."""
    n = info.frames
    last = n - 1 if last is None else last
    colour = model_dir is not None
    workers = workers or max(1, os.cpu_count() or 1)
    slots = store_slots(last + 1 - first, jobs, params)
    entry = decoded = None
    whole = first == 0 and last == n - 1
    if frame_cache is not None:
        entry = frame_cache.entry(video_path, n, info.width, info.height, scale, colour)
        cached = frame_cache.lookup(entry)
        decoded = (str(entry), cached) if cached is not None and cached >= last + 1 else None
        if decoded is None and whole:
            w, h = max(16, round(info.width * scale)), max(16, round(info.height * scale))
            if frame_cache.fits(int(n * w * h * (4 / 3) * (1.5 if colour else 1.0))):
                slots = n  # the whole video in the store, to be kept
    resume = resume or [None] * len(jobs)
    until = until or [None] * len(jobs)
    # the lowest frame each pass reads first; a chunk going on from a checkpoint reads nothing
    # below the store's first frame and moves its mark up with its first step
    marks = [min(max(_Pass(*job[:4]).first_frame(), first), n) if data is None else first
             for job, data in zip(jobs, resume)]
    store = FrameStore(
        video_path, last + 1, info.width, info.height, scale, slots, marks=marks, first=first, colour=colour,
        decoded=decoded, tap=tap,
    )
    # One call at a time uses the shared process pool: a call's decoder waits for all of its
    # passes, so its groups must not queue behind another call's.
    with _pool_user if processes else contextlib.nullcontext():
        try:
            runs = [(*job[:4], mark, job[4], model_dir, params, data, stop)
                    for mark, (job, data, stop) in enumerate(zip(jobs, resume, until))]
            results = _run_all(store, runs, workers, processes, progress, cancelled)
            if entry is not None and decoded is None and whole:
                frame_cache.put(entry, store)
        finally:
            store.close()
    return results


def assemble(plan: Plan, passes: dict[tuple[int, str, int], PassResult], *, reuse: Reusable | None = None,
             keep: bool = False, budget: float = 0.05, params: PropagationParams = DEFAULT_PARAMS,
             seconds: float = 0.0) -> PropagationResult:
    """The tracks from the plan's passes (``passes``: PassResult by ``Plan.keys`` entry): fused
    between keyframes, spliced into ``reuse``'s tracks on a re-propagation, collapsed boxes
    excluded, hard frames picked (``budget``); ``keep``: with this run's Reusable."""
    info, n, spans, per_object = plan.info, plan.info.frames, plan.spans, plan.per_object
    earlier = {t.track_id: t for t in reuse.tracks} if spans is not None else {}
    tracks = []
    for tid, kfs in per_object.items():
        name = next(o.class_name for _, o in kfs if not o.gone)
        span = Span(tid, 0, n - 1) if spans is None else spans.get(tid)
        if span is None:  # nothing of it changed (its class may have)
            tracks.append(_copy_track(earlier[tid], name))
            continue
        tr = _copy_track(earlier[tid], name) if tid in earlier else Track.empty(tid, name, n)
        _clear(tr, span.start, span.stop)
        # boundaries: virtual "gone" before the start and after the end
        bounds = [(-1, None)] + kfs + [(n, None)]
        for (a, oa), (b, ob) in zip(bounds[:-1], bounds[1:]):
            if a + 1 < span.start or b - 1 > span.stop:
                continue  # frames outside the span: as before
            ja = kfs.index((a, oa)) if oa is not None else None
            jb = kfs.index((b, ob)) if ob is not None else None
            fwd = passes.get((tid, "fwd", ja)) if oa is not None and not oa.gone else None
            bwd = passes.get((tid, "bwd", jb)) if ob is not None and not ob.gone else None
            if b - a <= 1 or (fwd is None and bwd is None):
                continue
            boxes, c, agree, both, lost, left = _fuse(n, a, b, fwd, bwd, oa.box if fwd else None, ob.box if bwd else None,
                                                           params.fuse_min_iou)
            ok = ~np.isnan(boxes).any(1)
            conf = fused_confidence(c, agree, both)
            sl = slice(a + 1, b)
            tr.boxes[sl][ok] = boxes[ok]
            tr.confidence[sl][ok] = conf[ok]
            tr.source[sl][ok] = SOURCE_PROPAGATED
            tr.lost[sl] = lost
            tr.left[sl] = left
        for f, o in kfs:
            if not o.gone:
                tr.boxes[f] = o.box
                tr.confidence[f] = 1.0
                tr.source[f] = SOURCE_KEYFRAME
        _clip(tr, info)
        tracks.append(tr)
    tracks.sort(key=lambda t: t.track_id)
    reusable = Reusable(n, plan.keyframes, [_copy_track(t) for t in tracks], plan.scale, _engine_key(plan.engine)) if keep else None
    exclude_collapsed(tracks, params.collapse_iou)
    if params.history:
        with_history(tracks, plan.engine.name)
    hard = select_hard_frames(tracks, n, budget, exclude=plan.keyframes.keys())
    return PropagationResult(info, tracks, hard, seconds, engine=plan.engine.name, engine_note=plan.engine.note,
                             reusable=reusable, spans=None if spans is None else sorted(spans.values(), key=lambda s: s.track_id))


def spans_to_rerun(keyframes: dict[int, list[SeedObject]], info: VideoInfo, reuse: Reusable | None,
                   tracker_model: str | Path | None = None, params: PropagationParams = DEFAULT_PARAMS,
                   ) -> dict[int, Span] | None:
    """What ``propagate(keyframes, info=info, reuse=reuse, tracker_model=...)`` will run again,
    without running it (e.g. to mark those frames while it runs); None: the whole video."""
    return plan_propagation("", keyframes, info=info, tracker_model=tracker_model, reuse=reuse, params=params).spans


def _spans_to_rerun(reuse: Reusable | None, keyframes: dict[int, list[SeedObject]], n: int, scale: float,
                    engine: Engine) -> dict[int, Span] | None:
    """The spans to propagate again on top of ``reuse``; None: the whole video (no earlier
    run, or one that ran another engine, at another scale, on another length)."""
    if reuse is None or reuse.frames != n or reuse.engine != _engine_key(engine) or abs(reuse.scale - scale) > 1e-9:
        return None
    return changed_spans(reuse.keyframes, keyframes, n, known={t.track_id for t in reuse.tracks})


def _engine_key(engine: Engine) -> str:
    return f"{engine.name}:{engine.model_dir or ''}"


def _copy_track(t: Track, class_name: str | None = None) -> Track:
    return Track(t.track_id, class_name or t.class_name, t.boxes.copy(), t.confidence.copy(), t.source.copy(),
                 t.lost.copy(), t.left.copy())


def _clear(t: Track, start: int, stop: int) -> None:
    """Frames ``start`` .. ``stop`` of ``t`` absent, as before anything was propagated."""
    sl = slice(start, stop + 1)
    t.boxes[sl], t.confidence[sl], t.source[sl], t.lost[sl], t.left[sl] = np.nan, 0.0, 0, False, False


@dataclass(frozen=True)
class Engine:
    """Which tracker a propagation runs: ``name`` ("nanotrack-v2" or "lk-ncc"), the learned
    model's folder (None for the built-in tracker) and, when it fell back, why."""

    name: str
    model_dir: str | None = None
    note: str = ""


def resolve_engine(tracker_model: str | Path | None) -> Engine:
    """The learned tracker when ``tracker_model`` holds its files and onnxruntime is there,
    else the built-in LK+NCC tracker with the reason."""
    from src.vision.nanotrack import ENGINE_NAME, model_problem

    problem = model_problem(tracker_model)
    if problem is None:
        return Engine(ENGINE_NAME, str(Path(tracker_model).resolve()))
    return Engine(LK_ENGINE, None, problem)


_pool: ProcessPoolExecutor | None = None
_pool_workers = 0
_pool_lock = threading.Lock()
_pool_user = threading.Lock()  # held by the propagate call whose passes use the pool


def _process_pool(workers: int) -> Executor:
    """The pass processes, started on first use and kept for later calls (a spawn start-up
    costs about a second)."""
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is None or _pool_workers != workers:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            ctx = multiprocessing.get_context("spawn")
            _pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_pass_process)
            _pool_workers = workers
        return _pool


def _init_pass_process() -> None:
    from src.vision.lifetime import die_with_parent

    die_with_parent()  # a worker process killed mid-run must not leave its pass processes behind
    cv2.setNumThreads(1)
    kernels.warm_up()


def start_processes(workers: int | None = None) -> None:
    """Start the pass processes now (the first large ``propagate`` call otherwise pays their
    start-up, a second or two with loading the compiled kernels), e.g. before timing it."""
    workers = workers or max(1, os.cpu_count() or 1)
    pool = _process_pool(workers)
    for f in [pool.submit(cv2.setNumThreads, 1) for _ in range(workers)]:
        f.result()


def _drop_process_pool() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


def exclude_collapsed(tracks: list[Track], min_iou: float = DEFAULT_PARAMS.collapse_iou) -> int:
    """Mutual exclusion: two objects of one class are not in one place. Where the propagated
    boxes of two same-class tracks overlap at least ``min_iou`` (one tracker slid onto the
    other's object, as in a crowd or a crossing), the less confident one (on a tie, the later
    one) is reported lost there: absent, and an error for the hard-frame pick. Keyframe boxes
    are never dropped. Returns the object-frames dropped."""
    from src.vision.metrics import iou_matrix

    dropped = 0
    by_class: dict[str, list[Track]] = {}
    for t in tracks:
        by_class.setdefault(t.class_name, []).append(t)
    for group in by_class.values():
        if len(group) < 2:
            continue
        boxes = np.stack([t.boxes for t in group])  # (k, n, 4)
        source = np.stack([t.source for t in group])  # (k, n)
        conf = np.stack([t.confidence for t in group]).astype(np.float64)
        # only frames where some pair overlaps that much can drop a box: find them for all
        # frames at once (a per-frame loop over a long video costs more than the rest)
        close = np.zeros(boxes.shape[1], bool)
        for a in range(len(group)):
            for b in range(a + 1, len(group)):
                close |= iou(boxes[a], boxes[b]) >= min_iou
        for f in np.flatnonzero(close & ((source == SOURCE_PROPAGATED).sum(0) >= 1) & ((source != 0).sum(0) >= 2)):
            here = np.flatnonzero(source[:, f] != 0)
            m = np.triu(iou_matrix(boxes[here, f], boxes[here, f]), 1)
            for a, b in zip(*np.nonzero(m >= min_iou)):
                ia, ib = here[a], here[b]
                if source[ia, f] == 0 or source[ib, f] == 0:
                    continue  # one of them already dropped here
                lose = ib if (conf[ia, f], -ia) >= (conf[ib, f], -ib) else ia
                if source[lose, f] != SOURCE_PROPAGATED:
                    lose = ia if lose == ib else ib
                if source[lose, f] != SOURCE_PROPAGATED:
                    continue  # two keyframe boxes: a person drew them
                t = group[lose]
                source[lose, f] = 0
                t.boxes[f], t.confidence[f], t.source[f], t.lost[f] = np.nan, 0.0, 0, True
                dropped += 1
    return dropped


def _clip(tr: Track, info: VideoInfo) -> None:
    """Clip boxes to the frame; a box with less than 1 px left is reported absent."""
    b = tr.boxes
    b[:, 0] = np.clip(b[:, 0], 0, info.width)
    b[:, 2] = np.clip(b[:, 2], 0, info.width)
    b[:, 1] = np.clip(b[:, 1], 0, info.height)
    b[:, 3] = np.clip(b[:, 3], 0, info.height)
    with np.errstate(invalid="ignore"):
        tiny = ((b[:, 2] - b[:, 0]) < 1) | ((b[:, 3] - b[:, 1]) < 1)
    gone = tiny & tr.present
    b[gone] = np.nan
    tr.confidence[gone] = 0
    tr.source[gone] = 0
