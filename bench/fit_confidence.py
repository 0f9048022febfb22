"""Fit the single-pass confidence weights and check that they generalise.

    python -m bench.fit_confidence

For every shared sequence and three synthetic H.264 videos, each object is tracked forward
from its first ground-truth box; every step's signals (src.vision.confidence.FEATURES) and
its IoU against ground truth are collected. A logistic regression (label: IoU >= 0.5, each
video weighted equally, L2-regularised) is fitted leaving one video out at a time, and the
confidence of the held-out video is scored: AUROC for IoU < 0.5 (ranking) and Brier score
(calibration: mean squared difference between confidence and the 0/1 outcome). The weights
fitted on all videos are printed last, in the form src/vision/confidence.py uses.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import SEQUENCES, load_sequence
from src.vision.confidence import FEATURES, SINGLE_BIAS, SINGLE_WEIGHTS
from src.vision.frames import FrameStore
from src.vision.metrics import confidence_auroc, iou
from src.vision.propagate import working_scale
from src.vision.synthetic import make_video
from src.vision.tracker import ObjectTracker
from src.vision.types import SeedObject
from src.vision.video import probe

L2 = 1.0


def collect(path, gt) -> tuple[np.ndarray, np.ndarray]:
    """(features (m, k), IoU (m,)) of every confident-state step of every object."""
    info = probe(path)
    seeds = {0: [SeedObject(t, "object", g[0]) for t, g in gt.items() if np.isfinite(g[0]).all()]}
    store = FrameStore(path, info.frames, info.width, info.height, working_scale(info, seeds))
    store.start()
    store.join()
    reader, s = store.reader(), store.scale
    feats, ious = [], []
    try:
        for o in seeds[0]:
            tr = ObjectTracker(reader.get(0), np.asarray(o.box, np.float64) * s)
            g = gt[o.track_id]
            for f in range(1, info.frames):
                was_lost = tr.lost
                r = tr.step(reader.get(f))
                if was_lost or r.box is None or not np.isfinite(g[f]).all():
                    continue
                feats.append(r.features)
                ious.append(float(iou(r.box / s, g[f])[0]))
    finally:
        store.close()
    return np.array(feats, np.float64), np.array(ious)


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted L2 logistic regression by Newton's method: [bias, weights...]."""
    a = np.c_[np.ones(len(x)), x]
    beta = np.zeros(a.shape[1])
    reg = L2 * np.eye(a.shape[1])
    reg[0, 0] = 0
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(a @ beta, -30, 30)))
        grad = a.T @ (w * (p - y)) + reg @ beta
        hess = (a * (w * p * (1 - p))[:, None]).T @ a + reg
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta


def predict(beta: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(beta[0] + x @ beta[1:], -30, 30)))


def main(argv: list[str]) -> int:
    data = {}
    for name in SEQUENCES:
        path, _, gt = load_sequence(name)
        data[name] = collect(path, gt)
    with tempfile.TemporaryDirectory() as tmp:
        for w, h, k in [(1280, 720, 5), (1280, 720, 20), (1920, 1080, 5)]:
            p = Path(tmp) / f"synth_{h}p_{k}.mp4"
            gt = make_video(p, width=w, height=h, n_frames=300, n_objects=k, seed=100 + k, object_size=(h // 12, h // 5), codec="h264")
            data[f"synthetic {h}p {k} objects"] = collect(p, gt)
    hand = np.r_[SINGLE_BIAS, SINGLE_WEIGHTS]
    print("| held-out video | steps | IoU<0.5 | AUROC hand-set | AUROC fitted | Brier hand-set | Brier fitted |")
    print("|---|---|---|---|---|---|---|")
    for out in data:
        train = [v for k, v in data.items() if k != out]
        x = np.concatenate([f for f, _ in train])
        y = np.concatenate([(v >= 0.5).astype(float) for _, v in train])
        w = np.concatenate([np.full(len(v), 1 / len(v)) for _, v in train])
        beta = fit(x, y, w / w.mean())
        fx, fv = data[out]
        ch, cf = predict(hand, fx), predict(beta, fx)
        bad = (fv < 0.5).astype(float)
        print(
            f"| {out} | {len(fv)} | {bad.mean():.1%} | {confidence_auroc(ch, fv):.3f} | {confidence_auroc(cf, fv):.3f} | "
            f"{np.mean((ch - (1 - bad)) ** 2):.3f} | {np.mean((cf - (1 - bad)) ** 2):.3f} |",
            flush=True,
        )
    x = np.concatenate([f for f, _ in data.values()])
    y = np.concatenate([(v >= 0.5).astype(float) for _, v in data.values()])
    w = np.concatenate([np.full(len(v), 1 / len(v)) for _, v in data.values()])
    beta = fit(x, y, w / w.mean())
    print("\nfitted on all videos:")
    print(f"SINGLE_BIAS = {beta[0]:.2f}")
    print("SINGLE_WEIGHTS = in_order({" + ", ".join(f'"{n}": {b:.2f}' for n, b in zip(FEATURES, beta[1:])) + "}, FEATURES)")
    print("# " + ", ".join(FEATURES))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
