"""The built-in tracker's thresholds are one frozen TrackerParams, passed to the tracker (issue
19: no monkeypatching a module to try a variant), and the defaults are what the engine runs."""

import dataclasses

import cv2
import numpy as np
import pytest

from src.vision.frames import pyramid
from src.vision.tracker import DEFAULT_PARAMS, ObjectTracker, TrackerParams


def _frames(n=12, size=40, speed=3):
    """A textured square moving right over a textured background: grey pyramids, true boxes."""
    rng = np.random.default_rng(3)
    background = cv2.resize((rng.random((30, 40)) * 255).astype(np.uint8), (320, 240))
    texture = cv2.resize((rng.random((10, 10)) * 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    frames, boxes = [], []
    for f in range(n):
        img = background.copy()
        x = 60 + speed * f
        img[100:100 + size, x:x + size] = texture
        frames.append(pyramid(img))
        boxes.append(np.array([x, 100, x + size, 100 + size], np.float64))
    return frames, boxes


def test_the_tracker_runs_with_the_params_it_is_given():
    frames, boxes = _frames()
    default = ObjectTracker(frames[0], boxes[0])
    assert default.p is DEFAULT_PARAMS
    steps = [default.step(f) for f in frames[1:]]
    assert all(s.box is not None and np.abs(s.box - b).max() < 2 for s, b in zip(steps, boxes[1:]))
    # a variant that counts any box as out of the picture: the object leaves on the first step
    strict = ObjectTracker(frames[0], boxes[0], params=TrackerParams(min_visible=1.01))
    first = strict.step(frames[1])
    assert first.box is None and strict.left_frame


def test_params_are_frozen_and_their_defaults_are_the_documented_ones():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_PARAMS.lost_conf = 0.5
    assert (DEFAULT_PARAMS.lost_conf, DEFAULT_PARAMS.lost_frames, DEFAULT_PARAMS.reacquire_ncc) == (0.25, 6, 0.72)
    assert dataclasses.replace(DEFAULT_PARAMS, lost_frames=2).lost_frames == 2 and DEFAULT_PARAMS.lost_frames == 6
