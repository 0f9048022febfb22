"""Box metrics and ground-truth loaders, shared by tests and benches.

Boxes are ``(n, 4)`` float xyxy in pixels; NaN rows mean "absent".
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two ``(n, 4)`` (or ``(4,)``) xyxy arrays -> ``(n,)`` float (NaN rows -> 0)."""
    a = np.atleast_2d(np.asarray(a, np.float64))
    b = np.atleast_2d(np.asarray(b, np.float64))
    ix = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = inter / (area_a + area_b - inter)
    return np.nan_to_num(out, nan=0.0)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(n, 4)`` x ``(m, 4)`` xyxy -> ``(n, m)`` IoU."""
    a = np.asarray(a, np.float64)[:, None, :]
    b = np.asarray(b, np.float64)[None, :, :]
    ix = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iy = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ix * iy
    union = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(inter / union, nan=0.0)


def frame_ious(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame IoU of a predicted track against ground truth, both ``(n, 4)``.

    Frames where ground truth is absent (NaN) are NaN (not scored); a missing prediction
    on a frame with ground truth scores 0.
    """
    out = iou(pred, gt)
    out[np.isnan(gt).any(axis=1)] = np.nan
    return out


def mean_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(np.nanmean(frame_ious(pred, gt)))


def success_auc(ious: np.ndarray) -> float:
    """OTB success-plot AUC: mean over thresholds 0, 0.05, ..., 1 of the share of frames
    with IoU > threshold (NaN frames ignored)."""
    v = np.asarray(ious, np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan")
    thr = np.linspace(0, 1, 21)
    return float(np.mean([(v > t).mean() for t in thr]))


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for boolean ``labels`` (Mann-Whitney, ties
    counted half). NaN when one class is empty."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    # average ranks over ties
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def confidence_auroc(confidence: np.ndarray, ious: np.ndarray) -> float:
    """How well low confidence predicts a bad frame: AUROC of ``-confidence`` for
    ``IoU < 0.5`` (frames with NaN IoU are skipped). 1.0 = perfect, 0.5 = chance."""
    c = np.asarray(confidence, np.float64)
    v = np.asarray(ious, np.float64)
    ok = ~np.isnan(v)
    return auroc(-c[ok], v[ok] < 0.5)


def xywh1_to_xyxy(rows: np.ndarray) -> np.ndarray:
    """OTB/MOT ``x, y, w, h`` with a 1-based top-left corner -> 0-based xyxy float32."""
    rows = np.asarray(rows, np.float32)
    x, y = rows[:, 0] - 1, rows[:, 1] - 1
    return np.stack([x, y, x + rows[:, 2], y + rows[:, 3]], axis=1).astype(np.float32)


def load_otb(path: str | Path) -> np.ndarray:
    """OTB ``groundtruth_rect.txt`` (comma, tab or space separated; NaN allowed) ->
    ``(n_frames, 4)`` float32 xyxy, NaN rows where the target is absent."""
    rows = []
    for line in Path(path).read_text().splitlines():
        parts = [p for p in re.split(r"[,\t ]+", line.strip()) if p]
        if parts:
            rows.append([float(p) for p in parts[:4]])
    boxes = xywh1_to_xyxy(np.array(rows, np.float32))
    boxes[~(np.isfinite(boxes).all(axis=1))] = np.nan
    return boxes


def load_mot(seq_dir: str | Path, n_frames: int | None = None) -> dict[int, np.ndarray]:
    """MOT ``gt/gt.txt`` -> ``{track_id: (n_frames, 4) float32 xyxy}`` with NaN rows where
    the pedestrian is not annotated. MOT16/17 (9 columns: ..., consider, class, visibility):
    keeps rows with consider == 1 and class == 1; MOT15 (10 columns: ..., 1, wx, wy, wz):
    every row is a pedestrian."""
    seq_dir = Path(seq_dir)
    data = np.loadtxt(seq_dir / "gt" / "gt.txt", delimiter=",", ndmin=2)
    if data.shape[1] != 10:
        data = data[(data[:, 6] == 1) & (data[:, 7] == 1)]
    if n_frames is None:
        m = re.search(r"seqLength\s*=\s*(\d+)", (seq_dir / "seqinfo.ini").read_text())
        n_frames = int(m.group(1)) if m else int(data[:, 0].max())
    tracks: dict[int, np.ndarray] = {}
    for row in data:
        f, tid = int(row[0]) - 1, int(row[1])
        if not 0 <= f < n_frames:
            continue
        arr = tracks.setdefault(tid, np.full((n_frames, 4), np.nan, np.float32))
        arr[f] = xywh1_to_xyxy(row[None, 2:6])[0]
    return tracks


def load_ground_truth(seq_dir: str | Path) -> dict[int, np.ndarray]:
    """Either format -> ``{track_id: (n_frames, 4) xyxy}`` (a single OTB target is id 1)."""
    seq_dir = Path(seq_dir)
    if (seq_dir / "groundtruth_rect.txt").exists():
        return {1: load_otb(seq_dir / "groundtruth_rect.txt")}
    return load_mot(seq_dir)
