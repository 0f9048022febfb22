"""Mean IoU with the seed on different frames: a steadier measure than one start per sequence.

    python -m bench.multistart

Each single-object shared sequence is seeded (ground truth) on frame 0, on 1/4, 1/2 and 3/4 of
its length and on its last frame; the engine propagates both ways from there and the mean IoU
over all frames is printed per start, per sequence and over everything. One start can swing by
0.1 with a small engine change (a tracker that jumps onto a passing car, or not); five starts
per sequence show whether a change helps in general.
"""

from __future__ import annotations

import sys

import numpy as np

from bench.common import SEQUENCES, load_sequence, score, seeds_at
from src.vision.propagate import propagate, start_processes

SINGLE = [s for s in SEQUENCES if not s.startswith("mot17")]


def main() -> int:
    start_processes()
    everything = []
    for name in SINGLE:
        path, info, gt = load_sequence(name)
        n = info.frames
        means, good = [], []
        for start in [0, n // 4, n // 2, 3 * n // 4, n - 1]:
            seeds = [s for s in seeds_at(gt, start) if not s.gone]
            if not seeds:
                continue
            s = score(propagate(path, {start: seeds}, budget=0), gt)
            means.append(s["miou"])
            good.append(s["ok50"])
        everything += means
        print(f"{name:20s} " + " ".join(f"{m:.3f}" for m in means)
              + f"   mean IoU {np.mean(means):.3f}   IoU>=0.5 {np.mean(good):.1%}", flush=True)
    print(f"overall mean IoU {np.mean(everything):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
