"""How much a review budget fixes: engine hard frames vs evenly spaced frames.

    python -m bench.review_efficiency

For each shared sequence, seeded on frame 0: spend 2%, 5% and 10% of the frames on review
(ground truth stands in for the reviewer), re-propagate with those frames as keyframes, and
report the share of frames with IoU >= 0.5.
"""

from __future__ import annotations

import sys

import numpy as np

from bench.common import SEQUENCES, first_seeds, load_sequence, review, score
from src.vision.hard_frames import budget_to_count
from src.vision.propagate import propagate

BUDGETS = [0.02, 0.05, 0.10]


def main(argv: list[str]) -> int:
    print("| sequence | frames | no review | " + " | ".join(f"{b:.0%} hard | {b:.0%} even" for b in BUDGETS) + " |")
    print("|---|---|---|" + "---|---|" * len(BUDGETS))
    for name in SEQUENCES:
        path, info, gt = load_sequence(name)
        n = info.frames
        seeds = first_seeds(gt)
        cells = []
        base = None
        for b in BUDGETS:
            res = propagate(path, seeds, budget=b)
            base = base or score(res, gt)
            k = budget_to_count(b, n)
            even = [int(round(x)) for x in np.linspace(0, n - 1, k + 2)[1:-1]] if k else []
            hard = score(propagate(path, review(res, gt, res.hard_frames, seeds), budget=0), gt)
            ev = score(propagate(path, review(res, gt, even, seeds), budget=0), gt)
            cells.append(f"{hard['ok50']:.1%} ({len(res.hard_frames)}) | {ev['ok50']:.1%} ({len(even)})")
        print(f"| {name} | {n} | {base['ok50']:.1%} | " + " | ".join(cells) + " |", flush=True)
    print("\n(n) = frames reviewed. Cells: share of frames with IoU >= 0.5 after re-propagation.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
