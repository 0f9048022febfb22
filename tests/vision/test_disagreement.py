"""The disagreement ranking on hand-made frames whose order is known."""

from __future__ import annotations

import numpy as np
import pytest

from src.vision.disagreement import as_error_tracks, frame_scores, iou_matrix, rarity_from_counts
from src.vision.hard_frames import frame_error

NAN4 = [np.nan] * 4
BOX = [10, 10, 50, 50]


def _case():
    """Five frames, one track of class 0; what the detector says on each frame:
    0 the same box, confident (agree) · 1 a box shifted to IoU ~0.33 · 2 nothing (missed)
    3 the same box but class 1 · 4 the same box, confidence 0.3 (hesitant)."""
    tracks = np.array([[BOX]] * 5, np.float32)  # (5 frames, 1 track, 4)
    det = np.array([[BOX, NAN4], [[30, 10, 70, 50], NAN4], [NAN4, NAN4], [BOX, NAN4], [BOX, NAN4]], np.float32)
    scores = np.array([[0.9, 0], [0.9, 0], [0, 0], [0.9, 0], [0.3, 0]], np.float32)
    classes = np.array([[0, -1], [0, -1], [-1, -1], [1, -1], [0, -1]], np.int32)
    return tracks, np.array([0]), det, scores, classes


def test_iou_matrix():
    iou = iou_matrix(np.array([BOX], float), np.array([BOX, [30, 10, 70, 50], [100, 100, 120, 120]], float))
    assert iou[0] == pytest.approx([1.0, 20 * 40 / (2 * 1600 - 800), 0.0])


def test_known_ranking():
    scores = frame_scores(*_case())
    assert scores[0] == 0.0  # full agreement
    assert scores[2] == pytest.approx(1.0)  # the track box no detection sees
    assert scores[3] == pytest.approx(1.0)  # class disagreement
    assert scores[1] == pytest.approx(1 - (800 / 2400) / 0.5)  # IoU 1/3 under 0.5
    assert scores[4] == pytest.approx(0.5 * (0.5 - 0.3) / 0.5)  # hesitant detector
    assert list(np.argsort(-scores, kind="stable")) == [2, 3, 1, 4, 0]


def test_unmatched_detection_and_rare_class():
    tracks = np.full((2, 1, 4), np.nan, np.float32)  # nothing tracked
    det = np.array([[BOX], [BOX]], np.float32)
    scores = np.array([[0.8], [0.8]], np.float32)
    classes = np.array([[0], [1]], np.int32)
    rarity = rarity_from_counts(["person", "helmet"], {"person": 100, "helmet": 5})
    assert rarity == pytest.approx([0.0, 0.95])
    out = frame_scores(tracks, np.array([-1]), det, scores, classes, rarity=rarity)
    assert out[0] == pytest.approx(0.8)  # an object nobody labelled
    assert out[1] == pytest.approx(0.8 + 0.5 * 0.95)  # ... of a rare class ranks higher


def test_scores_add_to_tracker_error():
    scores = np.array([0.0, 0.4, 2.5])
    extra = frame_error(as_error_tracks(scores), 3)
    assert extra == pytest.approx(scores)


def test_frames_must_line_up():
    tracks, ids, det, scores, classes = _case()
    with pytest.raises(ValueError):
        frame_scores(tracks[:3], ids, det, scores, classes)
