"""How long the editor waits for a preview: the preview job's CPU step (`pipeline.run_preview`:
propagate the keyframes, pick the hard frames, build the stored document) on a 1,000-frame
720p H.264 video with 5 objects, seeded on frame 0 (and again with a second keyframe on frame
500, as after a fix in place). Prints seconds and frames per second; not a test.

    python -m bench.preview [--frames 1000] [--objects 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from src.datasets.pipeline import run_preview
from src.vision.propagate import start_processes
from src.vision.synthetic import make_video
from src.vision.video import probe


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "preview.mp4"
        truth = make_video(video, n_frames=args.frames, n_objects=args.objects, codec="h264")
        info = probe(video)
        start_processes()
        seeds = {0: [{"track_id": t, "class": "object", "box": [float(v) for v in boxes[0]]} for t, boxes in truth.items()]}
        fixed = {**seeds, args.frames // 2: [{"track_id": t, "class": "object", "box": [float(v) for v in boxes[args.frames // 2]]}
                                             for t, boxes in truth.items()]}
        for label, keyframes in (("one keyframe", seeds), ("after a fix in place", fixed)):
            started = time.perf_counter()
            doc = run_preview(str(video), keyframes, info, None, 0.05, str(Path(tmp) / "progress.json"))
            seconds = time.perf_counter() - started
            size = len(json.dumps(doc, separators=(",", ":")))
            print(f"{label}: {args.frames} frames 720p, {args.objects} objects: {seconds:.1f} s "
                  f"({args.frames / seconds:.0f} frames/s), document {size / 1e6:.2f} MB, "
                  f"{len(doc['hard_frames'])} hard frames, engine {doc['engine']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
