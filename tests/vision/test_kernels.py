"""The tracker's compiled kernels against motions and correlations known in advance."""

import cv2
import numpy as np

from src.vision.kernels import lk_motion, unit
from src.vision.tracker import _ALL_UV, _NG, INLIER_PX

BOX = 48.0  # the box's side in crop pixels, with a margin of half a box around it


def _points() -> np.ndarray:
    return (_ALL_UV * BOX + BOX / 2).astype(np.float32)


def _motion(q0, q1, *, gx=2.0, st1=None, q0b=None):
    n = len(q0)
    ones = np.ones(n, np.uint8)
    return lk_motion(q0, q1.astype(np.float32), ones if st1 is None else st1, ones,
                     q0 if q0b is None else q0b, _NG, gx, gx, gx, INLIER_PX)


def test_a_shift_is_read_in_frame_pixels():
    q0 = _points()
    found, dx, dy, s, fb, good = _motion(q0, q0 + (3.0, -2.0), gx=2.0)
    assert found and good == 1.0 and fb == 0.0
    assert (dx, dy) == (1.5, -1.0) and s == 1.0


def test_growth_is_read_from_the_object_not_from_background_inside_the_box():
    """The camera pans (the ring of points outside the box moves 1 crop px on each axis); the
    object moves 2 and grows by 10% about the box's centre; the box's two left columns of
    points lie on background and move with the pan, close enough to the object's motion to
    pass for it. The ring tells them apart: without it the scale reads 1.096."""
    q0 = _points()
    centre = np.float32(BOX)
    q1 = centre + (q0 - centre) * np.float32(1.1) + np.float32(2.0)
    background = np.r_[_ALL_UV[:_NG, 0] < 0.4, np.ones(len(q0) - _NG, bool)]
    q1[background] = q0[background] + np.float32(1.0)
    found, dx, dy, s, _, _ = _motion(q0, q1)
    assert found and abs(s - 1.1) < 1e-4


def test_points_that_fail_either_way_are_not_used():
    q0 = _points()
    st1 = np.zeros(len(q0), np.uint8)
    st1[:3] = 1  # three good points are too few
    assert not _motion(q0, q0 + 1.0, st1=st1)[0]
    # a point whose backward track lands far from where it started is dropped from the motion
    q1 = q0 + (2.0, 0.0)
    q1[0] += (40.0, 40.0)
    q0b = q0.copy()
    q0b[0] += (5.0, 5.0)
    found, dx, dy, _, _, good = _motion(q0, q1, q0b=q0b)
    assert found and (dx, dy) == (1.0, 0.0) and good == (_NG - 1) / _NG


def test_unit_vectors_give_opencv_normalized_correlation():
    rng = np.random.default_rng(3)
    a = rng.random((12, 20)).astype(np.float32) * 255
    b = (0.5 * a + rng.random((12, 20)) * 60).astype(np.float32)
    ncc = float(unit(a).dot(unit(b)))
    assert abs(ncc - cv2.matchTemplate(a, b, cv2.TM_CCOEFF_NORMED)[0, 0]) < 1e-5
    assert abs(float(unit(a).dot(unit(a))) - 1.0) < 1e-5
    assert not unit(np.full((4, 4), 7.0, np.float32)).any()  # a flat crop has no direction
