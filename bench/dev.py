"""Fast development loop: engine only (no CSRT), cached synthetic videos.

    python -m bench.dev [names...]   names: crossing faceocc1 wakeboard7 mot17 s720_5 s720_20 s1080_5 s1080_20
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from pathlib import Path

from bench.common import first_seeds, load_sequence, review, score
from src.vision.propagate import propagate
from src.vision.synthetic import make_video

CACHE = Path(os.environ.get("FORGE_DEV_CACHE", "/tmp/forge-dev"))
REAL = {"crossing": "otb_crossing", "faceocc1": "otb_faceocc1", "wakeboard7": "uav123_wakeboard7", "mot17": "mot17_04_mini"}
SYN = {"s720_5": (1280, 720, 5), "s720_20": (1280, 720, 20), "s1080_5": (1920, 1080, 5), "s1080_20": (1920, 1080, 20)}


def get(name):
    if name in REAL:
        p, _, gt = load_sequence(REAL[name])
        return p, gt
    w, h, k = SYN[name]
    CACHE.mkdir(parents=True, exist_ok=True)
    p = CACHE / f"{name}.mp4"
    g = CACHE / f"{name}.pkl"
    if not g.exists():
        gt = make_video(p, width=w, height=h, n_frames=300, n_objects=k, seed=k, object_size=(h // 12, h // 5))
        g.write_bytes(pickle.dumps(gt))
    return p, pickle.loads(g.read_bytes())


def main(argv):
    names = argv or list(REAL) + ["s720_5", "s720_20"]
    for name in names:
        p, gt = get(name)
        seeds = first_seeds(gt)
        t0 = time.perf_counter()
        res = propagate(p, seeds, budget=0.05)
        dt = time.perf_counter() - t0
        s = score(res, gt)
        fixed = propagate(p, review(res, gt, res.hard_frames, seeds), budget=0)
        s5 = score(fixed, gt)
        n = res.video.frames
        print(f"{name:11s} miou {s['miou']:.3f} auroc {s['auroc']:.3f} fps {n / dt:6.1f} ok50 {s['ok50']:.1%} "
              f"-> 5% review {s5['ok50']:.1%} ({len(res.hard_frames)} frames)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
