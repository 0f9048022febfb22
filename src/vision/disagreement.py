"""Rank frames by how much a detector and the propagated tracks disagree (pure numpy).

A frame deserves a human look when the detector and the tracker tell different stories:
a track box no detection overlaps (the tracker drifted, or the detector missed it), a
confident detection no track covers (an unlabeled object), a matched pair whose IoU is
below the threshold, a class disagreement, a detector hesitating (low confidence) or a
class that is rare across the user's reviewed datasets (the model needs those examples).
The result is an expected-error-like score per frame, added to the tracker's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.vision.types import SOURCE_PROPAGATED, Track


@dataclass(frozen=True)
class Weights:
    unmatched_track: float = 1.0  # a track box the detector does not see
    unmatched_detection: float = 1.0  # x the detection's confidence: an object no track covers
    low_iou: float = 1.0  # x (1 - iou / iou_threshold) for a matched pair below the threshold
    class_mismatch: float = 1.0
    low_confidence: float = 0.5  # x how far a matched detection's confidence is under `confident`
    rare_class: float = 0.5  # x rarity in [0, 1] of each class present


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of `(m, 4)` and `(k, 4)` xyxy boxes -> `(m, k)`."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float64)
    a, b = a[:, None, :].astype(np.float64), b[None, :, :].astype(np.float64)
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def _greedy_match(iou: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Pairs (track row, detection column) by decreasing IoU, each used once, IoU >= min_iou."""
    pairs = []
    if iou.size == 0:
        return pairs
    order = np.dstack(np.unravel_index(np.argsort(-iou, axis=None), iou.shape))[0]
    used_t, used_d = set(), set()
    for t, d in order:
        if iou[t, d] < min_iou:
            break
        if t in used_t or d in used_d:
            continue
        used_t.add(t)
        used_d.add(d)
        pairs.append((int(t), int(d)))
    return pairs


def frame_scores(
    track_boxes: np.ndarray,
    track_classes: np.ndarray,
    det_boxes: np.ndarray,
    det_scores: np.ndarray,
    det_classes: np.ndarray,
    *,
    rarity: np.ndarray | None = None,
    iou_threshold: float = 0.5,
    min_iou: float = 0.1,
    min_score: float = 0.25,
    confident: float = 0.5,
    weights: Weights = Weights(),
) -> np.ndarray:
    """Per-frame disagreement score, `(n_frames,)` float64, 0 where both agree.

    track_boxes: `(n_frames, t, 4)` xyxy px, NaN where the track is absent; track_classes `(t,)`
    int class ids. det_boxes `(n_frames, k, 4)` NaN padded; det_scores `(n_frames, k)`;
    det_classes `(n_frames, k)` int, -1 pad. Detections under `min_score` are ignored except
    for the low-confidence term. rarity: `(n_classes,)` in [0, 1] (1 = never seen), optional.
    """
    n = det_boxes.shape[0]
    if track_boxes.shape[0] != n:
        raise ValueError(f"tracks cover {track_boxes.shape[0]} frames, detections {n}")
    scores = np.zeros(n, np.float64)
    for f in range(n):
        t_ok = ~np.isnan(track_boxes[f]).any(axis=1)
        d_ok = (det_classes[f] >= 0) & ~np.isnan(det_boxes[f]).any(axis=1)
        d_strong = d_ok & (det_scores[f] >= min_score)
        t_idx, d_idx = np.flatnonzero(t_ok), np.flatnonzero(d_strong)
        iou = iou_matrix(track_boxes[f, t_idx], det_boxes[f, d_idx])
        pairs = _greedy_match(iou, min_iou)
        s = 0.0
        matched_t = {t for t, _ in pairs}
        matched_d = {d for _, d in pairs}
        s += weights.unmatched_track * (len(t_idx) - len(matched_t))
        for j, d in enumerate(d_idx):
            if j not in matched_d:
                s += weights.unmatched_detection * float(det_scores[f, d])
        for t, j in pairs:
            value, d = iou[t, j], d_idx[j]
            if value < iou_threshold:
                s += weights.low_iou * (1.0 - value / iou_threshold)
            if int(track_classes[t_idx[t]]) != int(det_classes[f, d]):
                s += weights.class_mismatch
            conf = float(det_scores[f, d])
            if conf < confident:
                s += weights.low_confidence * (confident - conf) / confident
        # weak detections where nothing was tracked: the detector hesitates about something
        weak = d_ok & ~d_strong
        if weak.any() and not t_ok.any():
            s += weights.low_confidence * float(det_scores[f, weak].max()) / max(min_score, 1e-9)
        if rarity is not None:
            present = set(int(c) for c in track_classes[t_idx]) | set(int(c) for c in det_classes[f, d_idx])
            s += weights.rare_class * sum(float(rarity[c]) for c in present if 0 <= c < len(rarity))
        scores[f] = s
    return scores


def rarity_from_counts(classes: list[str], counts: dict[str, int]) -> np.ndarray:
    """`(len(classes),)` in [0, 1]: 1 for a class never seen, 0 for the most common one."""
    values = np.array([counts.get(c, 0) for c in classes], np.float64)
    top = values.max() if len(values) and values.max() > 0 else 1.0
    return 1.0 - values / top


def tracks_as_arrays(tracks: list[Track], classes: list[str], n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Engine tracks -> `(n_frames, t, 4)` boxes (NaN absent) and `(t,)` class ids (-1 unknown)."""
    boxes = np.full((n_frames, max(len(tracks), 1), 4), np.nan, np.float32)
    ids = np.full(max(len(tracks), 1), -1, np.int64)
    for i, t in enumerate(tracks):
        present = t.present[:n_frames]
        boxes[: len(present)][present, i] = t.boxes[: len(present)][present]
        ids[i] = classes.index(t.class_name) if t.class_name in classes else -1
    return boxes, ids


def as_error_tracks(scores: np.ndarray, *, scale: float = 1.0) -> list[Track]:
    """Disagreement scores as pseudo-tracks whose `1 - confidence` adds `scale * score` to
    `vision.hard_frames.frame_error`, so the hard-frame picker weighs both with one rule."""
    left = np.clip(np.asarray(scores, np.float64) * scale, 0, None)
    out: list[Track] = []
    while (left > 1e-9).any():
        part = np.minimum(left, 1.0)
        t = Track.empty(-1 - len(out), "", len(left))
        on = part > 1e-9
        t.confidence[on] = (1.0 - part[on]).astype(np.float32)
        t.source[on] = SOURCE_PROPAGATED
        out.append(t)
        left = left - part
    return out
