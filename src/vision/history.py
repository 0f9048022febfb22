"""A track's history in its confidence: what happened to it on the way from its keyframe.

A pass's confidence (src.vision.confidence) reads the current step: how well the box matches
the object's templates, how plausible its motion is. A tracker that slid onto a neighbour in
a crowd, or onto the background in a weak moment, matches its new object well a few frames
later, and its step confidence recovers while the box stays wrong. Two facts of the way there
say so, and they generalise because they are about tracking, not about a clip:

- ``log_min``: the weakest confidence since the keyframe (log; it restarts where the object
  is found again after being absent). A box after a dip may be on something else.
- ``brush``: the closest brush with another object since the keyframe (the largest IoU of
  this box with any other track's box). After two boxes overlapped, either may carry the
  other's identity: the classic switch in a crowd or a crossing.

Both are taken along the pass that reaches the frame: forward from the keyframe before it,
backward from the keyframe after it; between two keyframes the cleaner way counts (the
larger minimum, the smaller brush), as one clean pass is enough to trust a box.

The final confidence of a propagated frame is ``sigmoid(bias + w . (logit(confidence),
log_min, brush))``, weights per engine, fitted by ``python -m bench.fit_history`` on every
shared sequence (label IoU >= 0.5, each sequence weighted equally; the bench prints the
leave-one-sequence-out figures, docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from src.vision.metrics import iou
from src.vision.types import SOURCE_ABSENT, SOURCE_KEYFRAME, SOURCE_PROPAGATED, Track

HISTORY_FEATURES = ("logit", "log_min", "brush")
# (bias, weights in HISTORY_FEATURES' order) per engine name; an engine not named here keeps
# its passes' confidence. Fitted 2026-12-03 on the 150-frame cuts of the 15 shared sequences
# (with mutual exclusion at IoU 0.9).
HISTORY_WEIGHTS: dict[str, tuple[float, tuple[float, float, float]]] = {
    "lk-ncc": (1.06, (0.90, 0.24, -7.13)),
    "nanotrack-v2": (2.45, (0.27, 0.76, -2.83)),
}
_EPS = 1e-4


def history_features(tracks: Sequence[Track]) -> list[np.ndarray]:
    """Per track, ``(n_frames, len(HISTORY_FEATURES))`` float64 (rows of frames that are not
    propagated are undefined)."""
    brushes = _brushes(tracks)
    out = []
    for t, brush in zip(tracks, brushes):
        c = np.clip(t.confidence.astype(np.float64), _EPS, 1 - _EPS)
        keys = t.source == SOURCE_KEYFRAME
        present = t.source != SOURCE_ABSENT
        low_f = _running(c, keys, present, np.minimum)
        low_b = _running(c[::-1], keys[::-1], present[::-1], np.minimum)[::-1]
        brush_f = _running(brush, keys, None, np.maximum)
        brush_b = _running(brush[::-1], keys[::-1], None, np.maximum)[::-1]
        after = np.maximum.accumulate(keys)  # a keyframe at or before the frame
        before = np.maximum.accumulate(keys[::-1])[::-1]  # ... at or after it
        low = np.where(after & before, np.maximum(low_f, low_b), np.where(after, low_f, low_b))
        brushed = np.where(after & before, np.minimum(brush_f, brush_b), np.where(after, brush_f, brush_b))
        out.append(np.stack([np.log(c / (1 - c)), np.log(low), brushed], 1))
    return out


def with_history(tracks: Sequence[Track], engine: str) -> None:
    """Replace the confidence of every propagated frame by the history-aware one (in place)."""
    if engine not in HISTORY_WEIGHTS or not tracks:
        return
    bias, w = HISTORY_WEIGHTS[engine]
    for t, x in zip(tracks, history_features(tracks)):
        p = t.source == SOURCE_PROPAGATED
        if p.any():
            z = bias + x[p] @ np.asarray(w)
            t.confidence[p] = (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(t.confidence.dtype)


def _brushes(tracks: Sequence[Track]) -> list[np.ndarray]:
    """Per track, ``(n,)`` the largest IoU of its box with any other track's box per frame."""
    out = [np.zeros(len(t.source)) for t in tracks]
    for a in range(len(tracks)):
        for b in range(a + 1, len(tracks)):
            with np.errstate(invalid="ignore"):
                o = np.nan_to_num(iou(tracks[a].boxes, tracks[b].boxes))
            np.maximum(out[a], o, out=out[a])
            np.maximum(out[b], o, out=out[b])
    return out


def _running(values: np.ndarray, keys: np.ndarray, present: np.ndarray | None, op: np.ufunc) -> np.ndarray:
    """``op``'s running value of ``values`` along the array, restarting at every key (the key's
    own value ignored: the first frame after it starts afresh) and, when ``present`` is given,
    where the object is present again after being absent."""
    n = len(values)
    starts = keys.copy()
    starts[1:] |= keys[:-1]
    if present is not None:  # the first present frame after an absent run
        starts[1:] |= ~present[:-1] & present[1:]
    starts[0] = True
    out = np.empty(n, np.float64)
    bounds = np.r_[np.flatnonzero(starts), n]
    for s, e in zip(bounds[:-1], bounds[1:]):
        out[s:e] = op.accumulate(values[s:e])
    return out
