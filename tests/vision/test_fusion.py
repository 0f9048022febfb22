"""Fusing tracked detections into the propagation, on hand-made frames with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from src.vision.fusion import FusionParams, filled_frames, fuse
from src.detectors.inference import pack
from src.vision.types import SOURCE_ABSENT, SOURCE_DETECTOR, SOURCE_KEYFRAME, SOURCE_PROPAGATED, Track

N = 12
LOST = range(4, 9)  # the tracker loses the person on frames 4..8


def _box(f: int) -> list[float]:
    return [10 + 3 * f, 10, 50 + 3 * f, 90]  # a person walking right, 3 px a frame


def _person() -> Track:
    t = Track.empty(1, "person", N)
    for f in range(N):
        if f in LOST:
            t.lost[f] = True
            continue
        t.boxes[f] = _box(f)
        t.confidence[f] = 1.0 if f == 0 else 0.9
        t.source[f] = SOURCE_KEYFRAME if f == 0 else SOURCE_PROPAGATED
    return t


def _detections(per_frame: dict[int, list[tuple[list[float], float, int, int]]]):
    """`{frame: [(box, score, detector class id, detector track id)]}` -> VideoDetections."""
    rows = []
    for f in range(N):
        dets = per_frame.get(f, [])
        rows.append((np.array([d[0] for d in dets], np.float32).reshape(-1, 4), np.array([d[1] for d in dets], np.float32),
                     np.array([d[2] for d in dets], np.int32), np.array([d[3] for d in dets], np.int32)))
    return pack(rows, ["person", "car"], n_frames=N)


CLASS_MAP = {0: "person", 1: "car"}


def test_a_lost_run_is_filled_by_the_detector_track_that_continues_it():
    shifted = lambda f: [v + 2 for v in _box(f)]  # noqa: E731 - the detector sees it 2 px off
    per_frame = {f: [(shifted(f), 0.8, 0, 7)] for f in range(N)}
    for f in LOST:  # a car passes on the lost frames, right over the person
        per_frame[f].append((_box(f), 0.95, 1, 9))
    track = _person()
    before = [track.boxes.copy(), track.confidence.copy(), track.source.copy()]
    (fused,) = fuse([track], _detections(per_frame), CLASS_MAP)
    for f in LOST:
        assert fused.boxes[f] == pytest.approx(shifted(f))  # the person's detection, not the car
        assert fused.source[f] == SOURCE_DETECTOR and not fused.lost[f]
        assert fused.confidence[f] == pytest.approx(0.6)  # min(0.8, cap 0.6)
    confident = [f for f in range(N) if f not in LOST]
    assert np.array_equal(fused.boxes[confident], before[0][confident])  # the tracker's boxes stay
    assert np.array_equal(fused.confidence[confident], before[1][confident])
    assert fused.source[0] == SOURCE_KEYFRAME
    assert track.lost[4] and np.isnan(track.boxes[4]).all() and np.array_equal(track.source, before[2])  # input untouched
    assert filled_frames([track], [fused]) == len(LOST)


def test_another_class_or_a_far_detection_fills_nothing():
    per_frame = {f: [(_box(f), 0.9, 1, 3)] for f in LOST}  # only a car where the person was
    per_frame[6] = [([200, 10, 240, 90], 0.9, 0, 4)]  # a person, far from the track
    (fused,) = fuse([_person()], _detections(per_frame), CLASS_MAP)
    assert all(fused.source[f] == SOURCE_ABSENT and fused.lost[f] for f in LOST)
    assert np.isnan(fused.boxes[list(LOST)]).all()


def test_unseeded_objects_are_not_invented_and_hesitant_frames_use_the_coasted_box():
    track = _person()
    track.confidence[10] = 0.2  # hesitant but present: the coasted box is the reference
    per_frame = {10: [(_box(10), 0.5, 0, -1), ([300, 10, 340, 90], 0.99, 0, -1)],
                 2: [([300, 10, 340, 90], 0.99, 0, -1)]}  # an unlabeled person: stays unlabeled
    fused = fuse([track], _detections(per_frame), CLASS_MAP)
    assert len(fused) == 1
    assert fused[0].confidence[10] == pytest.approx(0.5) and fused[0].boxes[10] == pytest.approx(_box(10))
    assert fused[0].boxes[2] == pytest.approx(_box(2)) and fused[0].confidence[2] == pytest.approx(0.9)


def test_the_lost_run_follows_a_detection_chain_without_track_ids():
    # no ByteTrack id: each filled box becomes the reference of the next lost frame
    fast = lambda f: [10 + 12 * (f - 3), 10, 50 + 12 * (f - 3), 90] if f > 3 else _box(f)  # noqa: E731
    per_frame = {f: [(fast(f), 0.7, 0, -1)] for f in LOST}
    (fused,) = fuse([_person()], _detections(per_frame), CLASS_MAP, FusionParams(min_iou=0.5))
    assert all(fused.source[f] == SOURCE_DETECTOR for f in LOST)


def test_a_detection_on_another_tracks_box_is_left_to_it():
    other = Track.empty(2, "person", N)
    for f in range(N):
        other.boxes[f], other.confidence[f], other.source[f] = _box(f), 0.9, SOURCE_PROPAGATED
    per_frame = {f: [(_box(f), 0.9, 0, -1)] for f in LOST}  # the detection is the other person's
    first, second = fuse([_person(), other], _detections(per_frame), CLASS_MAP)
    assert all(first.source[f] == SOURCE_ABSENT for f in LOST)
    assert np.array_equal(second.boxes, other.boxes)


def test_a_false_exit_keeps_its_flag_and_a_detection_that_continues_the_object_fills_it():
    # the tracker judged the person gone on frames 4..8 (a drifting box at the edge looks the same)
    track = _person()
    track.lost[:] = False
    track.left[list(LOST)] = True
    per_frame = {f: [([v + 2 for v in _box(f)], 0.8, 0, 7)] for f in range(N) if f not in (6, 7, 8)}
    (fused,) = fuse([track], _detections(per_frame), CLASS_MAP)
    assert all(fused.source[f] == SOURCE_DETECTOR and not fused.left[f] for f in (4, 5))  # it had not left
    assert all(fused.source[f] == SOURCE_ABSENT and fused.left[f] for f in (6, 7, 8))  # no evidence: still gone
    assert track.left[4]  # input untouched
