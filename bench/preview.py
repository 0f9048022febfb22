"""How long the editor waits for a preview: the preview job's CPU step (`pipeline.run_preview`:
propagate the keyframes, pick the hard frames, build the stored document) on a 1,000-frame
720p H.264 video with 5 objects:

1. seeded on frame 0 only (the first preview of a draft);
2. keyframes every 300 frames (0, 300, 600, 900) on every object, from scratch;
3. a fix in place: one object's box dragged on frame 450, so a keyframe between 300 and 600:
   on top of 2 (only frames 300-600 of that track re-run, the job's way since issue 20), and
   from scratch as before, with the largest box difference between the two;
4. the fix in place again with the frame cache (src/vision/frame_cache.py) the worker's preview
   jobs use: case 1 kept the decoded video, so the segment is tracked without decoding.

Prints wall seconds, the CPU seconds of this process and its pass processes (on a shared host
the wall time is the load's; the CPU time is the work), and the machine's load; not a test.

    python -m bench.preview [--frames 1000] [--objects 5]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import psutil

from src.datasets.pipeline import run_preview
from src.vision import kernels
from src.vision.propagate import start_processes
from src.vision.synthetic import make_video
from src.vision.video import probe


def _cpu_seconds() -> float:
    """User + system CPU of this process and every process under it (the pass processes)."""
    me = psutil.Process()
    return sum(sum(p.cpu_times()[:2]) for p in [me, *me.children(recursive=True)])


def _timed(label: str, video: Path, keyframes: dict, info, tmp: Path, frames: int, **kwargs) -> dict:
    cpu, started = _cpu_seconds(), time.perf_counter()
    doc = run_preview(str(video), keyframes, info, None, 0.05, str(tmp / "progress.json"), **kwargs)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    size = len(json.dumps(doc, separators=(",", ":")))
    spans = doc.get("spans")
    ran = frames * len(doc["tracks"]) if spans is None else sum(stop - start + 1 for _, start, stop in spans)
    print(f"{label}: {seconds:.2f} s, CPU {cpu:.2f} s ({ran} object-frames tracked, {ran / seconds:.0f}/s), document {size / 1e6:.2f} MB, "
          f"{len(doc['hard_frames'])} hard frames, engine {doc['engine']}, spans {spans}", flush=True)
    return doc


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=5)
    args = parser.parse_args()
    n = args.frames
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = tmp / "preview.mp4"
        truth = make_video(video, n_frames=n, n_objects=args.objects, codec="h264")
        info = probe(video)
        start_processes()
        kernels.warm_up()  # as the worker's pool processes do: small runs track in this process

        def on(frames, shift=None):
            return {f: [{"track_id": t, "class": "object", "box": [float(v) + (shift or {}).get(t, 0) for v in boxes[f]]}
                        for t, boxes in truth.items()] for f in frames}

        print(f"{n} frames 720p, {args.objects} objects", flush=True)
        _timed("1. one keyframe (frame 0)", video, on([0]), info, tmp, n)
        step = 300 if n > 600 else n // 3
        grid = list(range(0, n, step))
        base = tmp / "base.npz"
        _timed(f"2. keyframes on {grid}, from scratch", video, on(grid), info, tmp, n, keep_path=str(base))
        fixed = on(grid)
        mid = grid[1] + step // 2
        moved = on([mid], shift={1: 5.0})[mid][:1]  # track 1 dragged 5 px on frame `mid`
        fixed[mid] = moved
        spliced = _timed(f"3a. fix in place on {mid} (track 1), neighbouring segment only", video, fixed, info, tmp, n,
                         reuse_path=str(base))
        whole = _timed(f"3b. the same keyframes from scratch", video, fixed, info, tmp, n)
        diff = max(abs(a - b) for ta, tb in zip(spliced["tracks"], whole["tracks"])
                   for ba, bb in zip(ta["boxes"], tb["boxes"]) if ba and bb for a, b in zip(ba, bb))
        same = all(ta["boxes"] == tb["boxes"] for ta, tb in zip(spliced["tracks"], whole["tracks"]))
        print(f"3a vs 3b: largest box difference {diff:.1f} px, identical documents' tracks: {same}", flush=True)
        cache = str(tmp / "frame-cache")
        _timed("4. (1 again, keeping the decoded frames)", video, on([0]), info, tmp, n, frame_cache_dir=cache)
        kept = _timed(f"4. fix in place on {mid} (track 1) from the kept frames", video, fixed, info, tmp, n,
                      reuse_path=str(base), frame_cache_dir=cache)
        print(f"4 vs 3a: identical tracks: {all(ta['boxes'] == tb['boxes'] for ta, tb in zip(kept['tracks'], spliced['tracks']))}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
