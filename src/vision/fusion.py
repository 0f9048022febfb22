"""Fuse a detector's tracked detections into the seed-box propagation (pure numpy).

The user's seeds decide which objects exist; the detector only helps where the tracker
gave up. For each propagated track, on frames where it is lost (`track.lost`) or hesitant
(propagated with confidence < `weak`), a detection of the same class takes the place of the
tracker's box when it continues the track: either it carries the detector track id that
matched this track on its confident frames (majority vote over frames with IoU >= `vote_iou`),
or it overlaps the track's reference box (the coasted box on a hesitant frame, else the last
box the fused track holds) with IoU >= `min_iou`. The filled frame becomes `SOURCE_DETECTOR`
(exports say "detector" for it) with confidence `min(detection score, cap)`. Keyframes and
confident frames are never touched,
and a detection no track claims creates nothing (it stays a hard-frame signal, see
`disagreement.py`). A detection that sits on another track's confident box is left alone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from src.vision.disagreement import iou_matrix
from src.vision.types import SOURCE_ABSENT, SOURCE_DETECTOR, SOURCE_KEYFRAME, SOURCE_PROPAGATED, Track


class Detections(Protocol):
    """What `inference.track_video` returns (`VideoDetections`), padded to `k` per frame:
    boxes `(n_frames, k, 4)` float32 xyxy px (NaN pad), scores `(n_frames, k)`, class_ids
    `(n_frames, k)` int (index into the detector's classes, -1 pad), track_ids `(n_frames, k)`
    int (ByteTrack id, -1 when not tracked)."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    track_ids: np.ndarray


@dataclass(frozen=True)
class FusionParams:
    weak: float = 0.3  # a propagated frame under this confidence may be replaced
    min_iou: float = 0.3  # a detection this close to the reference box continues the track
    vote_iou: float = 0.5  # confident frames where a detector track id votes for this track
    min_score: float = 0.25  # weaker detections never fill a frame
    cap: float = 0.6  # a filled frame's confidence is min(score, cap)
    taken_iou: float = 0.5  # a detection this close to another track's confident box is that track's


def fuse(tracks: list[Track], detections: Detections, class_map: dict[int, str],
         params: FusionParams = FusionParams()) -> list[Track]:
    """New tracks (the inputs are not modified) with lost / hesitant frames filled by detections.

    class_map: detector class id -> the tracks' class name (mapped by name; ids missing from it
    are classes the dataset does not have and are ignored). Frames beyond the detections'
    length are left as they are."""
    n = min(detections.boxes.shape[0], min((len(t.source) for t in tracks), default=0))
    det_class = np.full(detections.class_ids.shape, "", object)
    for cid, name in class_map.items():
        det_class[detections.class_ids == cid] = name
    usable = (~np.isnan(detections.boxes).any(axis=2)) & (det_class != "") & (detections.scores >= params.min_score)
    confident = [_confident(t, params)[:n] for t in tracks]
    taken = _taken(tracks, confident, detections.boxes, usable, n, params)
    used = np.zeros(usable.shape, bool)  # one detection fills one track per frame
    return [_fuse_one(t, i, confident[i], detections, det_class, usable, taken, used, n, params)
            for i, t in enumerate(tracks)]


def _confident(track: Track, params: FusionParams) -> np.ndarray:
    return (track.source == SOURCE_KEYFRAME) | ((track.source == SOURCE_PROPAGATED) & (track.confidence >= params.weak))


def _taken(tracks, confident, det_boxes, usable, n, params) -> np.ndarray:
    """`(n, k, t)` bool: detection j of frame f sits on track i's confident box."""
    taken = np.zeros((*usable.shape, len(tracks)), bool)
    for i, t in enumerate(tracks):
        for f in np.flatnonzero(confident[i]):
            cols = np.flatnonzero(usable[f])
            if len(cols):
                iou = iou_matrix(t.boxes[f][None], det_boxes[f, cols])[0]
                taken[f, cols[iou >= params.taken_iou], i] = True
    return taken


def _vote(track: Track, confident: np.ndarray, detections: Detections, same: np.ndarray,
          params: FusionParams) -> int | None:
    """The detector track id that overlaps this track most often on its confident frames."""
    votes: Counter[int] = Counter()
    for f in np.flatnonzero(confident):
        cols = np.flatnonzero(same[f] & (detections.track_ids[f] >= 0))
        if not len(cols):
            continue
        iou = iou_matrix(track.boxes[f][None], detections.boxes[f, cols])[0]
        best = int(np.argmax(iou))
        if iou[best] >= params.vote_iou:
            votes[int(detections.track_ids[f, cols[best]])] += 1
    if not votes:
        return None
    (winner, count), *rest = votes.most_common(2) + [(None, 0)]
    return winner if count > rest[0][1] else None  # a tie elects nobody


def _fuse_one(track: Track, index: int, confident: np.ndarray, detections: Detections, det_class: np.ndarray,
              usable: np.ndarray, taken: np.ndarray, used: np.ndarray, n: int, params: FusionParams) -> Track:
    boxes, conf = track.boxes.copy(), track.confidence.copy()
    source, lost, left = track.source.copy(), track.lost.copy(), track.left.copy()
    out = Track(track.track_id, track.class_name, boxes, conf, source, lost, left)
    same = usable & (det_class == track.class_name)
    others = np.delete(taken, index, axis=2).any(axis=2) if taken.shape[2] > 1 else np.zeros(usable.shape, bool)
    same = same & ~others
    matched_id = _vote(track, confident, detections, same, params)
    reference: np.ndarray | None = None
    for f in range(n):
        if confident[f]:
            reference = boxes[f]
            continue
        hesitant = source[f] == SOURCE_PROPAGATED  # (confidence under `weak`)
        # lost, or judged to have left the picture (a drifting box at the edge looks the same:
        # a detection continuing the object says it did not)
        missing = source[f] == SOURCE_ABSENT and (lost[f] or left[f])
        if not (hesitant or missing):
            continue  # gone, or before the object appears: nothing to fill
        cols = np.flatnonzero(same[f] & ~used[f])
        if not len(cols):
            continue
        pick = None
        if matched_id is not None:
            hits = cols[detections.track_ids[f, cols] == matched_id]
            pick = int(hits[np.argmax(detections.scores[f, hits])]) if len(hits) else None
        if pick is None:
            refs = [b for b in ((boxes[f] if hesitant else None), reference) if b is not None]
            if refs:
                iou = iou_matrix(np.stack(refs), detections.boxes[f, cols]).max(axis=0)
                best = int(np.argmax(iou))
                pick = int(cols[best]) if iou[best] >= params.min_iou else None
        if pick is None:
            continue
        used[f, pick] = True
        boxes[f] = detections.boxes[f, pick]
        conf[f] = min(float(detections.scores[f, pick]), params.cap)
        source[f], lost[f], left[f] = SOURCE_DETECTOR, False, False
        reference = boxes[f]
    return out


def filled_frames(before: list[Track], after: list[Track]) -> int:
    """How many (track, frame) boxes fusion replaced or added."""
    return sum(int((~np.isclose(a.boxes, b.boxes, equal_nan=True)).any(axis=1).sum()) for a, b in zip(before, after))
