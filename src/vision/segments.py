"""Re-propagate only what a keyframe change touches.

A track's boxes between two of its keyframes come from the two passes that start there
(src.vision.propagate): forward from the earlier, backward from the later. Change, add or
remove a keyframe of a track and only the frames between the track's nearest *unchanged*
keyframes before and after it (or the video's ends) can change: a ``Span``. Everything
else of that track, and every other track, is what the previous propagation said.

So a propagation can hand on a ``Reusable`` (its validated keyframes, its tracks before the
cross-track exclusion, its working scale and engine) and the next one, given it, runs the
engine only on the spans (``propagate(..., reuse=)``), splices them into copies of the
previous tracks, and redoes the whole-video steps that are cheap (exclusion of collapsed
boxes, hard frames). With the same working scale and engine the passes are the same, so
the result equals a full propagation (tests/vision/test_segments.py).

The editor's preview uses it after a fix in place; the post-review dataset run can use it
the same way, with the reviewed frames as the changed keyframes.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from src.vision.types import SeedObject, Track


@dataclass(frozen=True)
class Span:
    """Frames ``start`` .. ``stop`` (inclusive) of track ``track_id`` to run again: each end
    is an unchanged keyframe of the track or an end of the video."""

    track_id: int
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start + 1


@dataclass
class Reusable:
    """What a later propagation of the same video needs to re-run only the changed spans.

    keyframes: the validated keyframes ({frame: [SeedObject]}, boxes clipped to the frame);
    tracks: the tracks before ``exclude_collapsed`` (which drops boxes of one track where it
    overlaps another: those must come back when the other track moves); scale: the working
    resolution the passes ran at; engine: the tracker's name and model folder."""

    frames: int
    keyframes: dict[int, list[SeedObject]]
    tracks: list[Track]
    scale: float
    engine: str

    def to_bytes(self) -> bytes:
        """An ``.npz`` with the arrays of every track and the rest as JSON."""
        meta = {
            "frames": self.frames, "scale": self.scale, "engine": self.engine,
            "tracks": [[int(t.track_id), t.class_name] for t in self.tracks],
            "keyframes": {str(f): [_seed_json(o) for o in objs] for f, objs in self.keyframes.items()},
        }
        arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
        for k, t in enumerate(self.tracks):
            arrays |= {f"boxes{k}": t.boxes, f"confidence{k}": t.confidence, f"source{k}": t.source,
                       f"lost{k}": t.lost, f"left{k}": t.left}
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Reusable:
        with np.load(io.BytesIO(data)) as z:
            meta = json.loads(z["meta"].tobytes())
            tracks = [Track(tid, name, z[f"boxes{k}"], z[f"confidence{k}"], z[f"source{k}"], z[f"lost{k}"], z[f"left{k}"])
                      for k, (tid, name) in enumerate(meta["tracks"])]
        keyframes = {int(f): [_seed(o) for o in objs] for f, objs in meta["keyframes"].items()}
        return cls(int(meta["frames"]), keyframes, tracks, float(meta["scale"]), meta["engine"])


def _seed_json(o: SeedObject) -> dict:
    box = None if o.box is None else [float(v) for v in o.box]
    return {"track_id": int(o.track_id), "class": o.class_name, "box": box, "gone": bool(o.gone)}


def _seed(d: dict) -> SeedObject:
    box = None if d["box"] is None else np.asarray(d["box"], np.float32)
    return SeedObject(int(d["track_id"]), d["class"], box, gone=bool(d["gone"]))


def _per_track(keyframes: dict[int, list[SeedObject]]) -> dict[int, dict[int, SeedObject]]:
    out: dict[int, dict[int, SeedObject]] = {}
    for f in sorted(keyframes):
        for o in keyframes[f]:
            out.setdefault(o.track_id, {})[f] = o
    return out


def _same(a: SeedObject, b: SeedObject) -> bool:
    """The same seed for the passes (the class is not: it does not move a box)."""
    if a.gone or b.gone:
        return a.gone == b.gone
    return bool(np.array_equal(np.asarray(a.box, np.float32), np.asarray(b.box, np.float32)))


def changed_spans(before: dict[int, list[SeedObject]], after: dict[int, list[SeedObject]], n: int,
                  known: set[int] | None = None) -> dict[int, Span]:
    """The span of every track of ``after`` whose keyframes differ from ``before`` (a box
    moved, a keyframe or gone mark added or removed): from its last unchanged keyframe before
    the first change (or frame 0) to its first unchanged keyframe after the last change (or
    the last frame). A track not in ``known`` (default: the tracks of ``before``)
    is new: its whole length. Tracks whose keyframes are all the same are not in the answer."""
    old, new = _per_track(before), _per_track(after)
    known = set(old) if known is None else known
    spans: dict[int, Span] = {}
    for tid, kfs in new.items():
        if tid not in known or tid not in old:
            spans[tid] = Span(tid, 0, n - 1)
            continue
        was = old[tid]
        changed = sorted(f for f in set(kfs) | set(was) if f not in kfs or f not in was or not _same(kfs[f], was[f]))
        if not changed:
            continue
        steady = [f for f in kfs if f in was and _same(kfs[f], was[f])]
        start = max((f for f in steady if f < changed[0]), default=0)
        stop = min((f for f in steady if f > changed[-1]), default=n - 1)
        spans[tid] = Span(tid, start, stop)
    return spans


# --- segment jobs --------------------------------------------------------------------------
# A long video's passes (src.vision.propagate.Plan) split into parts that separate jobs, on
# separate machines, run at once (src.datasets.segment_jobs). A pass restarted half-way from
# its own last box would lose the keyframe it started from (its template, its appearance
# check) and give other boxes. So the parts are groups of whole passes, and a pass longer
# than ``chunk_frames`` (a long stretch without keyframes) is cut into chunks that run one
# after another, each going on from the checkpoint of the one before (the pass's whole state:
# src.vision.propagate.Checkpoint): a worker that dies loses one chunk, not the whole pass,
# and the chunks of one pass may run on different machines. Either way the tracks assembled
# from the parts are box for box those of one piece.
#
# A chunk reads one frame before its first (the frame the pass's tracker last saw) and up to
# two after its last (a stride of three frames may cross the chunk's end): that is the
# chunks' overlap. Chunks cannot run at the same time: each needs where the one before
# left the object.


class Chunk(NamedTuple):
    """Chunk ``index`` of ``count`` of one long pass: from ``start`` of its frames done (0: at
    the keyframe; otherwise going on from chunk ``index - 1``'s checkpoint) to ``until``."""

    index: int
    count: int
    start: int
    until: int

    @property
    def last_one(self) -> bool:
        return self.index == self.count - 1


@dataclass(frozen=True)
class Segment:
    """Passes ``passes`` (indices into the plan's jobs), reading frames ``first`` .. ``last``;
    ``work``: the frames they step through together; ``chunk``: for a chunk of a long pass
    (one pass), which one."""

    first: int
    last: int
    passes: tuple[int, ...]
    work: int
    chunk: Chunk | None = None

    @property
    def checkpoint_only(self) -> bool:
        """A chunk before its pass's last: its result is the pass's checkpoint, not its boxes."""
        return self.chunk is not None and not self.chunk.last_one


def _interval(job: tuple) -> tuple[int, int]:
    return min(job[0], job[2]), max(job[0], job[2])


def pass_length(job: tuple) -> int:
    """The frames a pass ((start, box, stop, ...)) steps through."""
    return abs(job[2] - job[0])


def chunks_of(job: tuple, index: int, chunk_frames: int) -> list[Segment]:
    """Pass ``jobs[index]`` = ``job`` cut into chunks of at most ``chunk_frames`` of its frames
    (near-equal), in order; each reads its frames plus the overlap (see above)."""
    m = pass_length(job)
    count = -(-m // chunk_frames)
    size = -(-m // count)
    start, step = int(job[0]), int(job[3])
    out = []
    for k in range(count):
        lo, hi = k * size, min(m, (k + 1) * size)
        ends = (start + step * lo, start + step * min(hi + 2, m))  # the frame before .. two after
        out.append(Segment(min(ends), max(ends), (index,), hi - lo, Chunk(k, count, lo, hi)))
    return out


def split_passes(jobs: list[tuple], target_work: int, chunk_frames: int = 0) -> list[Segment]:
    """The passes ``jobs`` ((start, box, stop, step, open_end)) in segments of about
    ``target_work`` frames of passes each, in frame order, then (``chunk_frames`` > 0) every
    pass longer than ``chunk_frames`` in chunks (``chunks_of``).

    Passes whose frames overlap (more than the keyframe two of them start from) are tracked
    from frames they share, so they stay in one stretch; stretches apart from each other
    (between keyframes that every track has) are independent and small neighbours are merged
    up to ``target_work``; a stretch with more work than that (many objects, or one long
    stretch without keyframes) is split by passes into balanced groups, each decoding the
    stretch for itself."""
    long = [i for i, job in enumerate(jobs) if chunk_frames > 0 and pass_length(job) > chunk_frames]
    chunked = [c for i in long for c in chunks_of(jobs[i], i, chunk_frames)]
    whole = sorted(set(range(len(jobs))) - set(long))
    # a group of empty passes alone (back from a keyframe on frame 0, when every other pass is
    # chunked) has nothing to run: the assembly needs no result from it
    return [g for g in _group_passes(jobs, whole, target_work) if g.work > 0] + chunked


def _group_passes(jobs: list[tuple], indices: list[int], target_work: int) -> list[Segment]:
    if not indices:
        return []
    order = sorted(indices, key=lambda i: _interval(jobs[i]))
    stretches: list[list[int]] = []
    reach = None
    for i in order:
        lo, hi = _interval(jobs[i])
        if reach is None or lo >= reach:  # touching at one frame (a keyframe) is not sharing
            stretches.append([])
            reach = hi
        stretches[-1].append(i)
        reach = max(reach, hi)

    def work(group: list[int]) -> int:
        return sum(pass_length(jobs[i]) for i in group)

    merged: list[list[int]] = []
    for stretch in stretches:
        # a stretch of empty passes (backward from a track's first keyframe at frame 0) is no job
        if merged and (work(merged[-1]) + work(stretch) <= target_work or 0 in (work(stretch), work(merged[-1]))):
            merged[-1] = merged[-1] + stretch
        else:
            merged.append(list(stretch))
    out = []
    for group in merged:
        busy = sum(1 for i in group if jobs[i][2] != jobs[i][0])
        parts = max(1, min(busy, -(-work(group) // max(1, target_work))))
        for indices in balanced_groups([pass_length(jobs[i]) for i in group], parts):
            part = [group[j] for j in indices]
            lo = min(_interval(jobs[i])[0] for i in part)
            hi = max(_interval(jobs[i])[1] for i in part)
            out.append(Segment(lo, hi, tuple(sorted(part)), work(part)))
    return out


def balanced_groups(lengths: list[int], k: int) -> list[list[int]]:
    """Indices of ``lengths`` split into at most ``k`` groups of near-equal total (longest
    first, each to the lightest group)."""
    groups: list[list[int]] = [[] for _ in range(k)]
    load = [0] * k
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        g = load.index(min(load))
        groups[g].append(i)
        load[g] += lengths[i]
    return [g for g in groups if g]


def segment_key(segment: Segment, jobs: list[tuple], *, video: str, engine: str, scale: float, params: dict) -> str:
    """A name for a segment's result that changes with anything that changes its boxes: the
    video (``video``: its stored identity), the engine (name and version), the working scale,
    the passes' seeds and the propagation parameters."""
    import hashlib

    doc = {"video": video, "engine": engine, "scale": round(float(scale), 9), "first": segment.first,
           "last": segment.last, "params": params,
           "passes": [[int(jobs[i][0]), [round(float(v), 4) for v in jobs[i][1]], int(jobs[i][2]), int(jobs[i][3]),
                       bool(jobs[i][4])] for i in segment.passes]}
    if segment.chunk is not None:  # (whole passes keep the names they had before chunks)
        doc["chunk"] = [int(v) for v in segment.chunk]
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def pack_passes(results: list) -> bytes:
    """A segment's PassResults (src.vision.propagate), in order, as an ``.npz``."""
    arrays = {"count": np.asarray([len(results)])}
    for k, r in enumerate(results):
        arrays |= {f"frames{k}": r.frames, f"boxes{k}": r.boxes, f"confidence{k}": r.confidence,
                   f"lost{k}": r.lost, f"left{k}": r.left}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def unpack_passes(data: bytes) -> list:
    from src.vision.propagate import PassResult

    with np.load(io.BytesIO(data)) as z:
        return [PassResult(z[f"frames{k}"], z[f"boxes{k}"], z[f"confidence{k}"], z[f"lost{k}"], z[f"left{k}"])
                for k in range(int(z["count"][0]))]
