"""Attribute checks at the AVA timestamps: which frames AVA writes, the risk of a value there
(a change nearby, a value seen long ago), and the spread pick."""

from __future__ import annotations

import math

import numpy as np
import pytest

from src.vision.attribute_checks import (
    AttributeRiskParams, attribute_check_count, attribute_risk, ava_frames, select_attribute_frames,
)
from src.vision.attributes import AttributeSpec
from src.vision.types import SOURCE_PROPAGATED, Track

ACTION = AttributeSpec("person", "action", "select", ("stand", "walk"))
COLOUR = AttributeSpec("car", "colour", "select", ("red", "blue"), mutable=False)


def _track(track_id: int, class_name: str, n: int, present: range | None = None) -> Track:
    on = np.zeros(n, bool)
    on[present if present is not None else range(n)] = True
    boxes = np.full((n, 4), np.nan, np.float32)
    boxes[on] = [10, 10, 50, 90]
    return Track(track_id, class_name, boxes, on.astype(np.float32), np.where(on, SOURCE_PROPAGATED, 0).astype(np.uint8))


def test_ava_frames_are_the_frames_nearest_each_sampled_second():
    assert ava_frames(30, 120) == [0, 30, 60, 90]
    assert ava_frames(25, 100) == [0, 25, 50, 75]
    assert ava_frames(29.97, 91) == [0, 30, 60, 90]  # floor(t * fps + 0.5)
    assert ava_frames(30, 300, ava_rate=0.5) == [0, 60, 120, 180, 240]  # a row every 2 s
    assert ava_frames(0, 100) == []


def test_the_share_of_the_review_frames_rounds_and_never_exceeds_them():
    assert attribute_check_count(6, 0.5) == 3
    assert attribute_check_count(5, 0.5) == 3  # 2.5 rounds up
    assert attribute_check_count(6, 0) == 0
    assert attribute_check_count(6, 1.0) == 6


def test_risk_grows_with_the_time_since_the_value_was_seen_and_peaks_at_a_change():
    fps, n = 10.0, 200
    params = AttributeRiskParams(change_seconds=1.0, stale_seconds=5.0)
    tracks = [_track(1, "person", n)]
    # walk on frame 0, stand on frame 100: a change there
    keyframes = {0: {1: {"action": "walk"}}, 100: {1: {"action": "stand"}}}
    frames = [10, 50, 90, 100, 110, 190]
    risk = attribute_risk([ACTION], tracks, keyframes, frames, fps=fps, params=params)
    stale = [1 - math.exp(-d / 50) for d in (10, 50, 90, 0, 10, 90)]
    near = [math.exp(-abs(f - 100) / 10) for f in frames]
    assert risk == pytest.approx([max(s, c) for s, c in zip(stale, near)])
    assert risk[2] > risk[1] > risk[0]  # further from frame 0's keyframe; 90 is also near the change
    assert risk[3] == pytest.approx(1.0)  # the change itself (seen there, but when did it happen?)


def test_no_risk_without_mutable_attributes_or_where_the_track_is_absent():
    n, fps = 100, 10.0
    keyframes = {0: {1: {"colour": "red"}, 2: {}}}
    cars = [_track(1, "car", n)]
    assert not attribute_risk([COLOUR], cars, keyframes, [30, 60], fps=fps).any()  # fixed per track
    person = [_track(2, "person", n, present=range(0, 40))]
    risk = attribute_risk([ACTION], person, keyframes, [30, 60], fps=fps)
    assert risk[0] > 0 and risk[1] == 0  # never set: its default, seen at the keyframe; gone by 60


def test_the_pick_takes_the_riskiest_ava_frames_spread_in_time_and_only_allowed_ones():
    fps, n = 10.0, 300  # AVA frames every 10 frames
    tracks = [_track(1, "person", n)]
    keyframes = {0: {1: {"action": "walk"}}, 150: {1: {"action": "stand"}}}
    picked = select_attribute_frames([ACTION], tracks, keyframes, fps=fps, n_frames=n, count=3,
                                     allowed=set(range(n)) - {0, 150})
    assert len(picked) == 3 and all(f % 10 == 0 for f in picked)
    assert 0 not in picked and 150 not in picked
    assert any(140 <= f <= 160 for f in picked)  # beside the change
    assert max(picked) >= 250  # the far end, stand seen 150 frames ago
    assert min(b - a for a, b in zip(picked, picked[1:])) > 20  # not three frames of one moment
    # only the allowed frames (e.g. delivered), and nothing to pick without attributes
    assert select_attribute_frames([ACTION], tracks, keyframes, fps=fps, n_frames=n, count=3,
                                   allowed={10, 20}) == [10, 20]
    assert select_attribute_frames([], tracks, keyframes, fps=fps, n_frames=n, count=3) == []
