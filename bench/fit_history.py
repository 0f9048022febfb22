"""Fit the history step of the confidence (src.vision.history.HISTORY_WEIGHTS) per engine,
leaving one sequence out at a time to see that it generalises.

    python -m bench.fit_history [--model DIR] [--max-frames 150] [--max-objects 10]

Every shared sequence is propagated as bench.engine does (each track from one keyframe at its
first appearance), with the history step off; every propagated object-frame's
HISTORY_FEATURES and its IoU are collected. The weighted L2 logistic regression of
bench.fit_confidence (label IoU >= 0.5, each sequence weighted equally) is fitted on all
sequences but one, and the held-out one is scored as bench.engine scores it (every
object-frame with ground truth: AUROC for IoU < 0.5, ECE, share of wrong boxes with
confidence >= 0.7), the passes' confidence against the history-aware one. Then, per engine:
the held-out figures pooled, a reliability diagram of the held-out confidences, and the
weights fitted on all sequences.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import SHARED
from bench.engine import ALL, ece, first_appearance, prepare
from bench.fit_confidence import fit, predict
from src.vision.history import HISTORY_FEATURES, history_features
from src.vision.metrics import confidence_auroc, frame_ious
from src.vision.propagate import PropagationParams, propagate, start_processes
from src.vision.types import SOURCE_PROPAGATED

WITHOUT = PropagationParams(history=False)


def collect(path, info, gt, model) -> tuple[str, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]]:
    """(the engine that ran, per ground-truth track: (features (n, k), confidence (n,), IoU (n,),
    propagated (n,)))."""
    res = propagate(path, first_appearance(gt), budget=0, info=info, tracker_model=model, params=WITHOUT)
    tracks = [t for t in res.tracks if t.track_id in gt]
    return res.engine, [(x, t.confidence.astype(np.float64), frame_ious(t.boxes, gt[t.track_id]), t.source == SOURCE_PROPAGATED)
            for t, x in zip(tracks, history_features(tracks))]


def scores(conf: np.ndarray, v: np.ndarray) -> tuple[float, float, float, int]:
    m = ~np.isnan(v)
    wrong = m & (v < 0.5)
    hi = float(np.mean(conf[wrong] >= 0.7)) if wrong.any() else float("nan")
    return confidence_auroc(conf, v), ece(conf[m], v[m] >= 0.5), hi, int(wrong.sum())


def training(data: dict, names) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, ys, ws = [], [], []
    for name in names:
        x = np.concatenate([f[p] for f, _, v, p in data[name]])
        v = np.concatenate([v[p] for f, _, v, p in data[name]])
        ok = ~np.isnan(v)
        if ok.any():
            xs.append(x[ok])
            ys.append((v[ok] >= 0.5).astype(float))
            ws.append(np.full(ok.sum(), 1 / ok.sum()))
    w = np.concatenate(ws)
    return np.concatenate(xs), np.concatenate(ys), w / w.mean()


def report(engine: str, data: dict) -> None:
    print(f"\n### {engine}\n")
    print("| held-out sequence | wrong / object-frames | AUROC passes → history | ECE | wrong with conf>=0.7 |")
    print("|---|---|---|---|---|")
    before, after, pooled = [], [], ([], [], [])
    for out in data:
        beta = fit(*training(data, [k for k in data if k != out]))
        c0 = np.concatenate([c for _, c, _, _ in data[out]])
        c1 = np.concatenate([np.where(p, predict(beta, f), c) for f, c, _, p in data[out]])
        v = np.concatenate([v for _, _, v, _ in data[out]])
        a, b = scores(c0, v), scores(c1, v)
        before.append(a)
        after.append(b)
        for lst, arr in zip(pooled, (c0, c1, v)):
            lst.append(arr)
        print(f"| {out} | {b[3]} / {int((~np.isnan(v)).sum())} | {a[0]:.3f} → {b[0]:.3f} | {a[1]:.3f} → {b[1]:.3f} | "
              f"{a[2]:.0%} → {b[2]:.0%} |", flush=True)
    a, b = np.array(before, float), np.array(after, float)
    c0, c1, v = (np.concatenate(x) for x in pooled)
    p0, p1 = scores(c0, v), scores(c1, v)
    print(f"| **mean over sequences** | | {np.nanmean(a[:, 0]):.3f} → {np.nanmean(b[:, 0]):.3f} | "
          f"{np.nanmean(a[:, 1]):.3f} → {np.nanmean(b[:, 1]):.3f} | {np.nanmean(a[:, 2]):.0%} → {np.nanmean(b[:, 2]):.0%} |")
    print(f"| **all object-frames pooled** | {p1[3]} / {int((~np.isnan(v)).sum())} | {p0[0]:.3f} → {p1[0]:.3f} | "
          f"{p0[1]:.3f} → {p1[1]:.3f} | {p0[2]:.0%} → {p1[2]:.0%} |")
    m = ~np.isnan(v)
    print("\nreliability (held-out, pooled): confidence bin | object-frames | mean confidence | share IoU >= 0.5, passes → history")
    for lo in np.arange(0, 1, 0.1):
        cells = []
        for c in (c0, c1):
            inside = m & (c >= lo) & ((c < lo + 0.1) | (lo >= 0.9))
            cells.append(f"{inside.sum()} / {c[inside].mean():.2f} / {np.mean(v[inside] >= 0.5):.2f}" if inside.any() else "-")
        print(f"  {lo:.1f}-{lo + 0.1:.1f}: {cells[0]}  →  {cells[1]}")
    beta = fit(*training(data, list(data)))
    print(f'\nfitted on all sequences: "{engine}": ({beta[0]:.2f}, ({", ".join(f"{b:.2f}" for b in beta[1:])})),'
          f"  # {', '.join(HISTORY_FEATURES)}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(SHARED.parent / "models" / "nanotrack-v2"))
    ap.add_argument("--max-frames", type=int, default=150)
    ap.add_argument("--max-objects", type=int, default=10)
    args = ap.parse_args(argv)
    start_processes()
    data: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ALL:
            path, info, gt = prepare(name, Path(tmp), args.max_frames, args.max_objects)
            if not gt:
                continue
            for model in (args.model, None):
                engine, rows = collect(path, info, gt, model)
                data.setdefault(engine, {})[name] = rows
    for engine, per_sequence in data.items():
        report(engine, per_sequence)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
