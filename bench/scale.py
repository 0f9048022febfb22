"""A long video's propagation in segments across 1, 2 and 4 worker processes (issue 21).

A shared sequence is looped back and forth (so motion stays continuous) to 10,000+ frames,
with ground-truth keyframes every `--every` frames, as a user who drew several keyframes or
the run after a review has. Its passes are split as the platform splits them
(src.vision.segments.split_passes, SEGMENT_WORK frames of passes per segment) and run by N
worker processes, each pinned to one CPU of its own while there are enough (as N machines of
one CPU would be; with more workers than CPUs they share), each taking the next segment
from a shared queue and decoding only that segment's frames, as a segment job does. The
assembled tracks are checked box for box against one piece.

Scaling efficiency = T(1 worker) / (min(N, CPUs) x T(N workers)): 1.0 when N workers use N
CPUs fully. What it leaves out, and the platform adds (printed from what is measured here):
per segment, an arq job, a Redis lease and one result object (a few kB) in the store; per
machine, one copy of the video into its read cache; and, once per dataset, the coordinator's
decode of the whole video for the sampling and export images.

From one keyframe only, every pass runs from frame 0 to the end: the bench then runs those
passes as the platform does with SEGMENT_CHUNK_FRAMES, in chunks one after another, each from
the checkpoint of the one before, and prints the time, the checkpoints' size and whether the
tracks equal one piece.

    python -m bench.scale [--sequence otb_crossing] [--frames 10000] [--every 500]
                          [--workers 1 2 4] [--segment-work 2000] [--chunk-frames 2000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import load_sequence, seeds_at
from src.vision.propagate import assemble, plan_propagation, propagate, track_passes
from src.vision.segments import pack_passes, split_passes, unpack_passes
from src.vision.video import iter_frames

_CPUS: multiprocessing.Queue | None = None


def looped(source: Path, gt: dict, frames: int, out: Path) -> dict:
    """``source`` played forward, backward, forward... to ``frames`` frames in ``out``; the
    ground truth for those frames."""
    clip = list(iter_frames(source))
    order = list(range(len(clip))) + list(range(len(clip) - 2, 0, -1))
    index = [order[i % len(order)] for i in range(frames)]
    h, w = clip[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    for i in index:
        writer.write(clip[i])
    writer.release()
    return {t: g[index] for t, g in gt.items()}


def _pin(cpus) -> None:
    """A worker process: on its CPU, with the engine's kernels loaded (as a worker's pool
    processes are when it starts)."""
    from src.vision import kernels

    cpu = cpus.get()
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    cv2.setNumThreads(1)
    kernels.warm_up()


def _segment(video: str, info, jobs, scale, first, last) -> tuple[bytes, float]:
    started = time.perf_counter()
    results = track_passes(video, info, jobs, scale, None, first=first, last=last, workers=1, processes=False)
    return pack_passes(results), time.perf_counter() - started


def run(video: str, plan, segments, workers: int) -> tuple[float, list[float], list[bytes]]:
    """Wall seconds of N pinned worker processes taking the segments in turn; each segment's
    seconds and packed result."""
    cpus_here = sorted(os.sched_getaffinity(0))
    ctx = multiprocessing.get_context("spawn")
    cpus = ctx.Queue()
    for k in range(workers):
        cpus.put(cpus_here[k] if workers <= len(cpus_here) else None)
    with ctx.Pool(workers, initializer=_pin, initargs=(cpus,)) as pool:
        pool.map(abs, range(workers * 4))  # started and pinned before the clock runs
        started = time.perf_counter()
        futures = [pool.apply_async(_segment, (video, plan.info, [plan.jobs[i] for i in s.passes], plan.scale,
                                               s.first, s.last)) for s in segments]
        out = [f.get() for f in futures]
        wall = time.perf_counter() - started
    return wall, [o[1] for o in out], [o[0] for o in out]


def chained(video: str, plan, segments) -> tuple[float, dict, list[int]]:
    """The segments in order in this process, each chunk going on from the checkpoint of the
    chunk before (as chunk jobs on any machine do): seconds, the passes' results, and the size
    of each checkpoint handed on."""
    from src.vision.propagate import Checkpoint

    passes, checkpoints, sizes = {}, {}, []
    started = time.perf_counter()
    for s in segments:
        resume = until = None
        if s.chunk is not None:
            resume, until = [checkpoints.get((s.passes, s.chunk.index - 1))], [s.chunk.until]
        out = track_passes(video, plan.info, [plan.jobs[i] for i in s.passes], plan.scale, None, first=s.first,
                           last=s.last, workers=1, processes=False, resume=resume, until=until)
        if isinstance(out[0], Checkpoint):
            checkpoints[(s.passes, s.chunk.index)] = out[0].data
            sizes.append(len(out[0].data))
            continue
        passes |= {plan.keys[i]: r for i, r in zip(s.passes, unpack_passes(pack_passes(out)))}
    return time.perf_counter() - started, passes, sizes


def _same(got, want) -> bool:
    return all(np.array_equal(a.source, b.source) and np.allclose(a.boxes, b.boxes, atol=1e-3, equal_nan=True)
               for a, b in zip(got.tracks, want.tracks, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequence", default="otb_crossing")
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=500, help="a keyframe every this many frames")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--segment-work", type=int, default=2000, help="SEGMENT_WORK")
    parser.add_argument("--chunk-frames", type=int, default=2000, help="SEGMENT_CHUNK_FRAMES")
    args = parser.parse_args()

    source, _, gt = load_sequence(args.sequence)
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "long.mp4"
        gt = looped(source, gt, args.frames, video)
        keyframes = {f: seeds_at(gt, f) for f in range(0, args.frames, args.every)}
        keyframes = {f: objs for f, objs in keyframes.items() if any(not o.gone for o in objs)}
        plan = plan_propagation(video, keyframes)
        segments = split_passes(plan.jobs, args.segment_work)
        one_keyframe = split_passes(plan_propagation(video, {0: keyframes[0]}).jobs, args.segment_work,
                                    args.chunk_frames)
        cpus = len(os.sched_getaffinity(0))
        size = video.stat().st_size
        print(f"{args.sequence} looped to {args.frames} frames ({plan.info.width}x{plan.info.height}, "
              f"{size / 1e6:.1f} MB), {len(plan.per_object)} object(s), a keyframe every {args.every} frames: "
              f"{len(plan.jobs)} passes in {len(segments)} segments of ~{args.segment_work} frames of passes "
              f"(from one keyframe only: {len(one_keyframe)} segment(s)); {cpus} CPUs here")

        _pin_main()
        propagate(video, {0: keyframes[0]}, budget=0, workers=1, processes=False, info=plan.info)  # warm
        started = time.perf_counter()
        whole = propagate(video, keyframes, budget=0, workers=1, processes=False)
        piece = time.perf_counter() - started
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        print(f"one piece, one CPU: {piece:.1f} s")

        base = None
        for n in args.workers:
            wall, seconds, packed = run(str(video), plan, segments, n)
            base = base or wall
            used = min(n, cpus)
            passes = {}
            for s, blob in zip(segments, packed):
                passes |= {plan.keys[i]: r for i, r in zip(s.passes, unpack_passes(blob))}
            same = _same(assemble(plan, passes, budget=0), whole)
            print(f"{n} worker(s): {wall:6.1f} s wall, {args.frames / wall:6.0f} frames/s, efficiency "
                  f"{base / (used * wall):.2f} (on {used} CPU(s)); segments {min(seconds):.1f}-{max(seconds):.1f} s; "
                  f"tracks {'equal to' if same else 'DIFFERENT from'} one piece")
        overhead = (base - piece) / max(1, len(segments))
        result_bytes = sum(len(b) for b in packed)
        print(f"per segment overhead (1 worker, segments vs one piece): {overhead:+.2f} s; "
              f"storage traffic per frame: {result_bytes / args.frames:.0f} B of segment results, "
              f"{size / args.frames:.0f} B of video per machine (once, into its read cache)")

        # from one keyframe: each pass the whole video long, in chunks one after another
        single = plan_propagation(video, {0: keyframes[0]})
        chunks = split_passes(single.jobs, args.segment_work, args.chunk_frames)
        _pin_main()
        started = time.perf_counter()
        one = propagate(video, {0: keyframes[0]}, budget=0, workers=1, processes=False, info=plan.info)
        piece = time.perf_counter() - started
        seconds, passes, sizes = chained(str(video), single, chunks)
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        count = sum(1 for c in chunks if c.chunk is not None)
        print(f"from one keyframe: {len(single.jobs)} passes, {count} chunks of at most {args.chunk_frames} frames, "
              f"one after another on one CPU: {seconds:.1f} s against {piece:.1f} s in one piece "
              f"({(seconds - piece) / max(1, count):+.2f} s per chunk); checkpoints "
              f"{min(sizes, default=0) / 1e3:.0f}-{max(sizes, default=0) / 1e3:.0f} kB; tracks "
              f"{'equal to' if _same(assemble(single, passes, budget=0), one) else 'DIFFERENT from'} one piece")


def _pin_main() -> None:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)


if __name__ == "__main__":
    main()
