"""Engine benchmark over every shared sequence (issue 17): both engines beside two baselines.

    python -m bench.engine [--model DIR] [--sequences a,b] [--max-frames 300] [--max-objects 10]
                           [--budgets 0.02,0.05,0.10] [--out FILE.md]

Each track is seeded at its first appearance (its first ground-truth box, one keyframe per
track). Methods, run the same way on the same frames and objects:
- the engine with the learned tracker (NanoTrack v2, when ``--model`` / TRACKER_MODEL_DIR
  holds its files) and with the built-in LK+NCC tracker;
- CSRT: one cv2.TrackerCSRT per object, forward from its first appearance, full resolution;
- NanoTrack alone: one cv2.TrackerNano per object, forward, full resolution, colour.
Figures: mean IoU over the frames where ground truth has a box (a missing box scores 0),
share of object-frames at IoU >= 0.5, then, for the engines, the share at IoU >= 0.5 after
reviewing a budget of frames (ground truth as the reviewer, every object on a reviewed frame,
re-propagated) chosen as the engine's hard frames, evenly spaced and at random (seed 0);
confidence AUROC for IoU < 0.5, ECE (10 bins, confidence against IoU >= 0.5), the share of
wrong boxes (IoU < 0.5) with confidence >= 0.7, frames per second beside decode alone, and
MOTA / IDF1 (py-motmetrics, a match at IoU >= 0.5) for the engine and both baselines.
Long and large sequences are cut to their first ``--max-frames`` frames and the
``--max-objects`` longest-present objects (the cut is written once as H.264).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import SHARED, decode_fps
from src.vision.metrics import confidence_auroc, frame_ious, iou_matrix, load_ground_truth
from src.vision.propagate import propagate, start_processes
from src.vision.synthetic import _H264Writer
from src.vision.types import SeedObject
from src.vision.video import iter_frames, probe

ALL = sorted(p.name for p in (SHARED / "sequences").iterdir() if (p / "video.mp4").exists()) if (SHARED / "sequences").is_dir() else []


def prepare(name: str, tmp: Path, max_frames: int, max_objects: int):
    """(video path, VideoInfo, {track id: (n, 4) clipped gt}) cut to the limits."""
    d = SHARED / "sequences" / name
    info = probe(d / "video.mp4")
    gt = load_ground_truth(d)
    n = min(info.frames, max_frames)
    lim = np.array([info.width, info.height] * 2, np.float32)
    gt = {t: np.clip(g[:n], 0, lim) for t, g in gt.items()}
    gt = {t: g for t, g in gt.items() if (np.isfinite(g).all(1) & ((g[:, 2] - g[:, 0]) >= 2) & ((g[:, 3] - g[:, 1]) >= 2)).sum() >= 2}
    if len(gt) > max_objects:
        keep = sorted(gt, key=lambda t: -np.isfinite(gt[t]).all(1).sum())[:max_objects]
        gt = {t: gt[t] for t in sorted(keep)}
    path = d / "video.mp4"
    if n < info.frames:
        path = tmp / f"{name}_{n}.mp4"
        writer = _H264Writer(path, info.fps, info.width, info.height)
        for i, frame in enumerate(iter_frames(d / "video.mp4")):
            if i >= n:
                break
            writer.write(frame)
        writer.release()
        info = probe(path)
    return path, info, gt


def _ok(b) -> bool:
    return bool(np.isfinite(b).all() and b[2] - b[0] >= 2 and b[3] - b[1] >= 2)


def first_appearance(gt) -> dict[int, list[SeedObject]]:
    kf: dict[int, list[SeedObject]] = {}
    for t, g in gt.items():
        f = next(i for i in range(len(g)) if _ok(g[i]))
        kf.setdefault(f, []).append(SeedObject(t, "object", g[f].copy()))
    return kf


def reviewed(keyframes, gt, frames):
    kf = {f: list(v) for f, v in keyframes.items()}
    for f in frames:
        objs = {o.track_id: o for o in kf.get(int(f), [])}
        for t, g in gt.items():
            if _ok(g[f]):
                objs[t] = SeedObject(t, "object", g[f].copy())
            elif any(_ok(g[i]) for i in range(f)):  # seen before, not here now: gone
                objs[t] = SeedObject(t, "object", None, gone=True)
        kf[int(f)] = list(objs.values())
    return kf


def ious_of(tracks_boxes: dict[int, np.ndarray], gt) -> np.ndarray:
    return np.concatenate([frame_ious(tracks_boxes[t], gt[t]) for t in gt])


def scored(tracks, gt) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, IoU) of every object-frame, one ground-truth track after another, aligned:
    the tracks come sorted by id, the ground truth in its file's order (until 2026-12-03 the
    confidences were taken in the tracks' order, so AUROC, ECE and "wrong with conf >= 0.7"
    paired boxes with other objects' confidences on clips whose ids were not in order)."""
    by_id = {t.track_id: t for t in tracks}
    return (np.concatenate([by_id[t].confidence for t in gt]),
            np.concatenate([frame_ious(by_id[t].boxes, g) for t, g in gt.items()]))


def ok50(v: np.ndarray) -> float:
    v = v[~np.isnan(v)]
    return float(np.mean(v >= 0.5)) if len(v) else float("nan")


def ece(conf: np.ndarray, good: np.ndarray, bins: int = 10) -> float:
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    return float(sum(abs(conf[idx == b].mean() - good[idx == b].mean()) * (idx == b).mean() for b in range(bins) if (idx == b).any()))


def engine_figures(path, info, gt, model, budgets, rng):
    seeds = first_appearance(gt)
    t0 = time.perf_counter()
    res = propagate(path, seeds, budget=max(budgets), info=info, tracker_model=model)
    fps = info.frames / (time.perf_counter() - t0)
    boxes = {t.track_id: t.boxes for t in res.tracks}
    conf, v = scored(res.tracks, gt)
    m = ~np.isnan(v)
    wrong = m & (v < 0.5)
    mota, idf1 = mot_scores(boxes, gt)
    out = {
        "engine": res.engine, "miou": float(np.nanmean(v)), "ok50": ok50(v), "fps": fps, "mota": mota, "idf1": idf1,
        "auroc": confidence_auroc(conf, v), "ece": ece(conf[m], v[m] >= 0.5),
        "wrong_hi": float(np.mean(conf[wrong] >= 0.7)) if wrong.any() else float("nan"),
    }
    n = info.frames
    keys = sorted(seeds)
    for b in budgets:
        hard = propagate(path, seeds, budget=b, info=info, tracker_model=model).hard_frames if b != max(budgets) else res.hard_frames
        k = max(1, len(hard))
        even = [int(round(x)) for x in np.linspace(0, n - 1, k + 2)[1:-1]]
        rand = sorted(rng.choice(np.setdiff1d(np.arange(n), keys), size=min(k, n - len(keys)), replace=False).tolist())
        for kind, frames in (("hard", hard), ("even", even), ("random", rand)):
            fixed = propagate(path, reviewed(seeds, gt, frames), budget=0, info=info, tracker_model=model)
            out[f"{kind}{round(b * 100)}"] = ok50(ious_of({t.track_id: t.boxes for t in fixed.tracks}, gt))
    return out


def mot_scores(pred: dict[int, np.ndarray], gt) -> tuple[float, float]:
    """(MOTA, IDF1) by py-motmetrics: a prediction matches a ground-truth box at IoU >= 0.5;
    the tracks keep the ids they were seeded with, so an identity switch is a box that moved
    to another object."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    n = len(next(iter(gt.values())))
    for f in range(n):
        truth = [t for t, g in gt.items() if _ok(g[f])]
        hyps = [t for t, b in pred.items() if np.isfinite(b[f]).all()]
        # 1 - IoU, no match under IoU 0.5 (motmetrics' own iou_matrix needs NumPy < 2)
        dist = np.full((len(truth), len(hyps)), np.nan)
        if truth and hyps:
            iou = iou_matrix(np.stack([gt[t][f] for t in truth]), np.stack([pred[t][f] for t in hyps]))
            dist = np.where(iou >= 0.5, 1.0 - iou, np.nan)
        acc.update(truth, hyps, dist)
    summary = mm.metrics.create().compute(acc, metrics=["mota", "idf1"], name="seq")
    return float(summary["mota"].iloc[0]), float(summary["idf1"].iloc[0])


def baseline(path, gt, make) -> dict:
    """One tracker per object from ``make()``, forward from each object's first appearance."""
    n = len(next(iter(gt.values())))
    first = {t: next(i for i in range(n) if _ok(g[i])) for t, g in gt.items()}
    pred = {t: np.full((n, 4), np.nan, np.float32) for t in gt}
    trackers = {}
    t0 = time.perf_counter()
    for i, frame in enumerate(iter_frames(path)):
        if i >= n:
            break
        for t, tr in trackers.items():
            ok, (x, y, w, h) = tr.update(frame)
            if ok:
                pred[t][i] = (x, y, x + w, y + h)
        for t, f in first.items():
            if f == i:
                b = gt[t][i]
                tr = make()
                tr.init(frame, tuple(int(round(v)) for v in (b[0], b[1], b[2] - b[0], b[3] - b[1])))
                trackers[t] = tr
                pred[t][i] = b
    v = ious_of(pred, gt)
    mota, idf1 = mot_scores(pred, gt)
    return {"miou": float(np.nanmean(v)), "ok50": ok50(v), "fps": n / (time.perf_counter() - t0), "mota": mota, "idf1": idf1}


def nano_factory(model_dir):
    def make():
        p = cv2.TrackerNano_Params()
        p.backbone = str(Path(model_dir) / "nanotrack_backbone_sim.onnx")
        p.neckhead = str(Path(model_dir) / "nanotrack_head_sim.onnx")
        return cv2.TrackerNano.create(p)
    return make


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.environ.get("TRACKER_MODEL_DIR") or str(SHARED.parent / "models" / "nanotrack-v2"))
    ap.add_argument("--sequences", default=",".join(ALL))
    ap.add_argument("--max-frames", type=int, default=300)
    ap.add_argument("--max-objects", type=int, default=10)
    ap.add_argument("--budgets", default="0.02,0.05,0.10")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--out", default=None, help="also write the table (markdown) here")
    args = ap.parse_args(argv)
    budgets = [float(b) for b in args.budgets.split(",")]
    start_processes()
    rows = []
    header = ("| sequence | frames | objects | engine | mean IoU | IoU>=0.5 | " + " | ".join(
        f"{round(b * 100)}% hard / even / random" for b in budgets)
        + " | AUROC | ECE | wrong with conf>=0.7 | fps (decode) | CSRT mean IoU / >=0.5 | NanoTrack alone mean IoU / >=0.5 "
        "| MOTA / IDF1: engine, CSRT, NanoTrack alone |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    with tempfile.TemporaryDirectory() as tmp:
        for name in [s for s in args.sequences.split(",") if s]:
            path, info, gt = prepare(name, Path(tmp), args.max_frames, args.max_objects)
            if not gt:
                print(f"| {name} | {info.frames} | 0 | no object in these frames |", flush=True)
                continue
            dec = decode_fps(path)
            base = {}
            if not args.no_baselines:
                base["csrt"] = baseline(path, gt, cv2.TrackerCSRT.create)
                if Path(args.model, "nanotrack_head_sim.onnx").exists():
                    base["nano"] = baseline(path, gt, nano_factory(args.model))
            for model in (args.model, None):
                e = engine_figures(path, info, gt, model, budgets, np.random.default_rng(0))
                review = " | ".join(f"{e[f'hard{round(b * 100)}']:.1%} / {e[f'even{round(b * 100)}']:.1%} / {e[f'random{round(b * 100)}']:.1%}" for b in budgets)
                c = base.get("csrt", {})
                nn = base.get("nano", {})
                row = (f"| {name} | {info.frames} | {len(gt)} | {e['engine']} | {e['miou']:.3f} | {e['ok50']:.1%} | {review} | "
                       f"{e['auroc']:.3f} | {e['ece']:.3f} | {e['wrong_hi']:.0%} | {e['fps']:.1f} ({dec:.0f}) | "
                       f"{c.get('miou', float('nan')):.3f} / {c.get('ok50', float('nan')):.1%} | "
                       f"{nn.get('miou', float('nan')):.3f} / {nn.get('ok50', float('nan')):.1%} | "
                       f"{e['mota']:.2f} / {e['idf1']:.2f}, {c.get('mota', float('nan')):.2f} / {c.get('idf1', float('nan')):.2f}, "
                       f"{nn.get('mota', float('nan')):.2f} / {nn.get('idf1', float('nan')):.2f} |")
                print(row, flush=True)
                rows.append(row)
    if args.out:
        Path(args.out).write_text(f"bench.engine, {datetime.date.today().isoformat()}\n\n{header}\n" + "|---" * (header.count("|") - 1) + "|\n" + "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
