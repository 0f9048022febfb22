"""The dataset job's CPU stages with one decode against separate decodes (issue 19).

Separate (the job before 2026-12-02): propagate, sample over a decode of its own, then the
build decodes the delivered frames again for their images. One decode (today's
`pipeline.run_tracking` + `run_build(images_dir=)`): the engine's decoder hands every frame to
the delivery tap, which samples and writes the images; the build reads them. A synthetic 720p
video with 5 objects, YOLO export, each way `--repeats` times, alternating; wall seconds. With
the built-in tracker (its store reads the decoder's luma plane) the tap is fed by a second
decode alongside the passes; with `--tracker-model` (the learned tracker reads BGR) by the
engine's own decode.

    python -m bench.decode_once [--frames 900] [--repeats 2] [--tracker-model DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import first_seeds
from src.datasets import pipeline
from src.vision.formats.model import ExportSpec
from src.vision.propagate import propagate
from src.vision.sampling import sample_frames
from src.vision.synthetic import make_video
from src.vision.video import probe

SPLIT = {"train": 0.8, "valid": 0.2, "test": 0.0, "seed": 0}


def separate(video: Path, seeds, info, spec: ExportSpec, sampling: dict, out: Path, model: str | None) -> float:
    t0 = time.perf_counter()
    result = propagate(video, pipeline.seed_objects(seeds), budget=0, info=info, tracker_model=model)
    delivered = list(range(info.frames)) if sampling["mode"] == "all" else sample_frames(video, **sampling)
    pipeline.run_build(str(video), result, spec, delivered, SPLIT, True, str(out / "build"), str(out / "p.json"))
    return time.perf_counter() - t0


def one_decode(video: Path, seeds, info, spec: ExportSpec, sampling: dict, out: Path, model: str | None) -> float:
    t0 = time.perf_counter()
    tracked = pipeline.run_tracking(str(video), seeds, info, model, None, None, sampling, str(out / "images"),
                                    progress_path=str(out / "p.json"))
    pipeline.run_build(str(video), tracked.result, spec, tracked.delivered, SPLIT, True, str(out / "build"),
                       str(out / "p2.json"), images_dir=tracked.images)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=900)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tracker-model", default=None, help="NanoTrack v2 folder (default: the built-in tracker)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="forge-decode-once-"))
    video = tmp / "synthetic_720p.mp4"
    gt = make_video(video, width=1280, height=720, n_frames=args.frames, n_objects=5, seed=3)
    seeds = {f: [{"track_id": o.track_id, "class": "object", "box": [float(v) for v in o.box]} for o in objs]
             for f, objs in first_seeds(gt).items()}
    info = probe(video)
    spec = ExportSpec("bench", "bench", "video", video.name, info.width, info.height, info.fps, info.frames, ["object"],
                      formats=("yolo",))
    engine = "learned tracker" if args.tracker_model else "built-in tracker"
    print(f"\n{args.frames} frames 1280x720, 5 objects, YOLO export, {engine}; wall seconds\n")
    print("| sampling | separate decodes | one decode | saved |")
    print("|---|---|---|---|")
    for sampling in ({"mode": "all"}, {"mode": "every_n", "every_n": 1}):
        for _ in range(args.repeats):
            times = []
            for way in (separate, one_decode):
                out = tmp / way.__name__
                times.append(way(video, seeds, info, spec, sampling, out, args.tracker_model))
                shutil.rmtree(out, ignore_errors=True)
            print(f"| {sampling['mode']} | {times[0]:.1f} | {times[1]:.1f} | {1 - times[1] / times[0]:.0%} |", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
