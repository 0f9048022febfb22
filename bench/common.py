"""Helpers shared by the benches: sequences, seeds from ground truth, scoring, baseline."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np

from src.vision.metrics import confidence_auroc, frame_ious, load_ground_truth, success_auc
from src.vision.types import SeedObject
from src.vision.video import iter_frames, probe

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FORGE_SHARED_DATA", REPO.parent / "shared" / "data"))
SEQUENCES = ["otb_crossing", "otb_faceocc1", "uav123_wakeboard7", "mot17_04_mini"]


def load_sequence(name: str):
    d = SHARED / "sequences" / name
    info = probe(d / "video.mp4")
    lim = np.array([info.width, info.height] * 2, np.float32)
    return d / "video.mp4", info, {t: np.clip(g, 0, lim) for t, g in load_ground_truth(d).items()}


def seeds_at(gt, frame: int) -> list[SeedObject]:
    out = []
    for t, g in gt.items():
        b = g[frame]
        if np.isfinite(b).all() and b[2] - b[0] >= 2 and b[3] - b[1] >= 2:
            out.append(SeedObject(t, "object", b.copy()))
        else:
            out.append(SeedObject(t, "object", None, gone=True))
    return out


def first_seeds(gt) -> dict[int, list[SeedObject]]:
    return {0: [s for s in seeds_at(gt, 0) if not s.gone]}


def score(result, gt, frames: int | None = None) -> dict:
    """mean IoU, success AUC, share of frames IoU >= 0.5, confidence AUROC over all objects
    seeded (frames where ground truth exists), on the first ``frames`` frames (default all)."""
    ious, confs = [], []
    for t in result.tracks:
        ious.append(frame_ious(t.boxes[:frames], gt[t.track_id][:frames]))
        confs.append(t.confidence[:frames])
    v, c = np.concatenate(ious), np.concatenate(confs)
    return {
        "miou": float(np.nanmean(v)),
        "auc": success_auc(v),
        "ok50": float(np.nanmean(np.where(np.isnan(v), np.nan, v >= 0.5))),
        "auroc": confidence_auroc(c, v),
    }


def review(result, gt, frames, keyframes):
    """Keyframes after a reviewer (ground truth) fixed ``frames``: every object on each."""
    kf = {f: list(v) for f, v in keyframes.items()}
    for f in frames:
        kf[int(f)] = [s for s in seeds_at(gt, int(f)) if s.track_id in {t.track_id for t in result.tracks}]
    return kf


def decode_fps(path, max_frames: int | None = None) -> float:
    t0, n = time.perf_counter(), 0
    for _ in iter_frames(path):
        n += 1
        if max_frames and n >= max_frames:
            break
    return n / (time.perf_counter() - t0)


def csrt_baseline(path, gt, max_frames: int | None = None):
    """One cv2.TrackerCSRT per object, forward only, full resolution, seeded on frame 0.
    Returns ({track_id: (n, 4) boxes}, fps, frames run)."""
    n_total = len(next(iter(gt.values())))
    n = min(n_total, max_frames or n_total)
    pred = {t: np.full((n_total, 4), np.nan, np.float32) for t in gt}
    trackers = {}
    t0 = time.perf_counter()
    for i, frame in enumerate(iter_frames(path)):
        if i >= n:
            break
        if i == 0:
            for t, g in gt.items():
                b = g[0]
                if np.isfinite(b).all() and b[2] - b[0] >= 2:
                    tr = cv2.TrackerCSRT.create()
                    tr.init(frame, tuple(int(round(v)) for v in (b[0], b[1], b[2] - b[0], b[3] - b[1])))
                    trackers[t] = tr
                    pred[t][0] = b
            continue
        for t, tr in trackers.items():
            ok, (x, y, w, h) = tr.update(frame)
            if ok:
                pred[t][i] = (x, y, x + w, y + h)
    fps = n / (time.perf_counter() - t0)
    v = np.concatenate([frame_ious(pred[t][:n], gt[t][:n]) for t in trackers])
    return {"miou": float(np.nanmean(v)), "ok50": float(np.nanmean(np.where(np.isnan(v), np.nan, v >= 0.5))), "fps": fps, "frames": n}
