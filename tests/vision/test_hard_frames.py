import numpy as np

from src.vision.hard_frames import budget_to_count, select_hard_frames
from src.vision.types import SOURCE_PROPAGATED, Track


def _track(conf):
    n = len(conf)
    t = Track.empty(1, "a", n)
    t.boxes[:] = [0, 0, 10, 10]
    t.confidence[:] = conf
    t.source[:] = SOURCE_PROPAGATED
    return t


def test_budget_to_count():
    assert budget_to_count(0.05, 200) == 10
    assert budget_to_count(3, 200) == 3
    assert budget_to_count(500, 200) == 200


def test_hard_frames_are_spread():
    conf = np.full(200, 0.95, np.float32)
    conf[50:60] = 0.1  # one long bad moment
    conf[150] = 0.3  # a second, milder one
    picked = select_hard_frames([_track(conf)], 200, 2)
    assert len(picked) == 2
    assert 50 <= picked[0] < 60, picked
    assert picked[1] == 150, picked


def test_hard_frames_exclude_and_order():
    conf = np.linspace(1.0, 0.0, 100).astype(np.float32)
    picked = select_hard_frames([_track(conf)], 100, 3, exclude=[99])
    assert 99 not in picked and picked == sorted(picked) and len(set(picked)) == 3
    assert min(np.diff(picked)) >= 5


def test_no_error_no_pick():
    assert select_hard_frames([_track(np.ones(50, np.float32))], 50, 5) == []


def test_long_bad_run_beats_isolated_dip():
    """One review re-propagated from the middle of a long bad run fixes more than one on a
    single worse frame."""
    conf = np.full(200, 0.95, np.float32)
    conf[100:140] = 0.2
    conf[30] = 0.0
    picked = select_hard_frames([_track(conf)], 200, 1)
    assert len(picked) == 1 and 110 <= picked[0] < 130, picked


def test_lost_frames_are_picked():
    t = _track(np.full(100, 0.95, np.float32))
    t.source[60:80] = 0
    t.confidence[60:80] = 0
    t.boxes[60:80] = np.nan
    t.lost[60:80] = True
    picked = select_hard_frames([t], 100, 1)
    assert picked and 60 <= picked[0] < 80, picked
