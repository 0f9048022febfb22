"""Fit the learned tracker's confidence weights (src.vision.confidence.LEARNED_*) on every
shared sequence, leaving one sequence out at a time to see that they generalise.

    python -m bench.fit_learned [--model DIR] [--max-frames 300] [--max-objects 10]

Each object is tracked forward from its first appearance by the learned tracker alone (no
fusion, no review); every step's signals (LEARNED_FEATURES) and its IoU are collected. The
same weighted L2 logistic regression as bench.fit_confidence (label IoU >= 0.5, each
sequence weighted equally). Prints held-out AUROC and Brier score, hand-set against fitted,
then the weights fitted on all sequences.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import SHARED
from bench.engine import ALL, first_appearance, prepare
from bench.fit_confidence import fit, predict
from src.vision.confidence import LEARNED_BIAS, LEARNED_FEATURES, LEARNED_WEIGHTS
from src.vision.frames import FrameStore
from src.vision.metrics import confidence_auroc, iou
from src.vision.nanotrack import LearnedObjectTracker, NanoModel
from src.vision.propagate import working_scale


def collect(path, info, gt, model) -> tuple[np.ndarray, np.ndarray]:
    seeds = first_appearance(gt)
    # colour, as propagate gives the learned tracker
    store = FrameStore(path, info.frames, info.width, info.height, working_scale(info, seeds), colour=True)
    store.start()
    store.join()
    reader, s = store.reader(), store.scale
    feats, ious = [], []
    try:
        for f0, objs in seeds.items():
            for o in objs:
                tr = LearnedObjectTracker(reader.get(f0), np.asarray(o.box, np.float64) * s, model=model)
                g = gt[o.track_id]
                for f in range(f0 + 1, info.frames):
                    was_lost = tr.lost
                    r = tr.step(reader.get(f))
                    if was_lost or r.box is None or not np.isfinite(g[f]).all():
                        continue
                    feats.append(tr.learned_features)
                    ious.append(float(iou(r.box / s, g[f])[0]))
    finally:
        store.close()
    return np.array(feats, np.float64).reshape(-1, len(LEARNED_FEATURES)), np.array(ious)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(SHARED.parent / "models" / "nanotrack-v2"))
    ap.add_argument("--max-frames", type=int, default=300)
    ap.add_argument("--max-objects", type=int, default=10)
    args = ap.parse_args(argv)
    model = NanoModel.load(args.model)
    data = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ALL:
            path, info, gt = prepare(name, Path(tmp), args.max_frames, args.max_objects)
            data[name] = collect(path, info, gt, model)
    hand = np.r_[LEARNED_BIAS, LEARNED_WEIGHTS]
    print("| held-out sequence | steps | IoU<0.5 | AUROC hand-set | AUROC fitted | Brier hand-set | Brier fitted |")
    print("|---|---|---|---|---|---|---|")
    for out in data:
        train = [v for k, v in data.items() if k != out]
        x = np.concatenate([f for f, _ in train])
        y = np.concatenate([(v >= 0.5).astype(float) for _, v in train])
        w = np.concatenate([np.full(len(v), 1 / max(len(v), 1)) for _, v in train])
        beta = fit(x, y, w / w.mean())
        fx, fv = data[out]
        if not len(fv):
            continue
        ch, cf = predict(hand, fx), predict(beta, fx)
        bad = (fv < 0.5).astype(float)
        print(f"| {out} | {len(fv)} | {bad.mean():.1%} | {confidence_auroc(ch, fv):.3f} | {confidence_auroc(cf, fv):.3f} | "
              f"{np.mean((ch - (1 - bad)) ** 2):.3f} | {np.mean((cf - (1 - bad)) ** 2):.3f} |", flush=True)
    x = np.concatenate([f for f, _ in data.values()])
    y = np.concatenate([(v >= 0.5).astype(float) for _, v in data.values()])
    w = np.concatenate([np.full(len(v), 1 / max(len(v), 1)) for _, v in data.values()])
    beta = fit(x, y, w / w.mean())
    print("\nfitted on all sequences:")
    print(f"LEARNED_BIAS = {beta[0]:.2f}")
    print("LEARNED_WEIGHTS = in_order({" + ", ".join(f'"{n}": {b:.2f}' for n, b in zip(LEARNED_FEATURES, beta[1:])) + "}, LEARNED_FEATURES)")
    print("# " + ", ".join(LEARNED_FEATURES))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
