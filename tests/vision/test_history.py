"""The history step of the confidence (src.vision.history): a track's weakest moment and its
closest brush with another object since its keyframe lower the confidence of what follows."""

import numpy as np
import pytest

from bench.engine import first_appearance, prepare
from src.vision.history import HISTORY_WEIGHTS, history_features, with_history
from src.vision.metrics import confidence_auroc, frame_ious
from src.vision.propagate import PropagationParams, propagate
from src.vision.types import SOURCE_KEYFRAME, SOURCE_PROPAGATED, Track

from .conftest import SEQUENCES

N = 30


def _track(tid: int, x0: float, conf: float = 0.9, keys=(0,)) -> Track:
    t = Track.empty(tid, "person", N)
    t.boxes[:] = [x0, 10, x0 + 20, 50]
    t.confidence[:] = conf
    t.source[:] = SOURCE_PROPAGATED
    for k in keys:
        t.source[k], t.confidence[k] = SOURCE_KEYFRAME, 1.0
    return t


def test_a_brush_with_another_object_lowers_the_confidence_for_the_rest_of_the_pass():
    alone, passer = _track(1, 0.0), _track(2, 200.0)
    passer.boxes[10:13] = alone.boxes[10:13] + [5, 0, 5, 0]  # crosses in front for three frames
    with_history([alone, passer], "lk-ncc")
    untouched = _track(1, 0.0)
    with_history([untouched, _track(2, 200.0)], "lk-ncc")
    assert np.allclose(alone.confidence[1:10], untouched.confidence[1:10])
    assert (alone.confidence[10:] < untouched.confidence[10:] - 0.2).all()
    assert alone.confidence[0] == 1.0  # the keyframe is what a person drew


def test_a_dip_is_remembered_after_the_step_confidence_recovers():
    t = _track(1, 0.0)
    t.confidence[8] = 0.1
    steady = _track(1, 0.0)
    with_history([t], "nanotrack-v2")
    with_history([steady], "nanotrack-v2")
    assert (t.confidence[9:] < steady.confidence[9:] - 0.1).all()
    assert np.allclose(t.confidence[1:8], steady.confidence[1:8])


def test_between_two_keyframes_the_cleaner_pass_counts():
    t = _track(1, 0.0, keys=(0, N - 1))
    other = _track(2, 200.0)
    other.boxes[5] = t.boxes[5]  # a brush near the first keyframe
    x = history_features([t, other])[0]
    assert x[4, 2] == 0 and x[5, 2] == 1.0  # forward from 0 the brush starts at 5 ...
    assert (x[6:N - 1, 2] == 0).all()  # ... the backward pass from the second keyframe never met it


def test_the_minimum_restarts_where_a_lost_object_is_found_again():
    t = _track(1, 0.0)
    t.source[10:12], t.confidence[10:12], t.boxes[10:12] = 0, 0.0, np.nan
    x = history_features([t])[0]
    assert np.allclose(x[12:, 1], np.log(0.9))  # not log(0): found again, it starts afresh


def test_an_engine_without_weights_keeps_its_passes_confidence():
    t = _track(1, 0.0)
    t.confidence[8] = 0.1
    before = t.confidence.copy()
    with_history([t], "some-other-engine")
    assert np.array_equal(t.confidence, before)
    assert set(HISTORY_WEIGHTS) == {"lk-ncc", "nanotrack-v2"}


MODEL_DIR = SEQUENCES.parent.parent / "models" / "nanotrack-v2"


@pytest.mark.parametrize(("name", "engine", "margin"), [
    ("mot15_pets09_s2l1", "lk-ncc", 0.06), ("mot15_kitti17", "lk-ncc", 0.04), ("mot15_pets09_s2l1", "nanotrack-v2", 0.03),
])
def test_history_ranks_the_wrong_boxes_of_a_crowd_better(name, engine, margin, tmp_path):
    """On 150-frame cuts of two crowds (the fit's held-out figures there: built-in pets09 AUROC
    0.67 -> 0.94, kitti17 0.59 -> 0.77; learned pets09 0.82 -> 0.94), the history step must rank
    wrong boxes better than the passes' confidence; the margin asked is about a quarter of what
    was measured."""
    if not (SEQUENCES / name).is_dir():
        pytest.skip(f"sequence {name} missing from {SEQUENCES}")
    model = None
    if engine == "nanotrack-v2":
        pytest.importorskip("onnxruntime")
        if not (MODEL_DIR / "nanotrack_head_sim.onnx").is_file():
            pytest.skip(f"NanoTrack v2 files not found in {MODEL_DIR}")
        model = MODEL_DIR
    path, info, gt = prepare(name, tmp_path, 150, 10)
    seeds = first_appearance(gt)
    aurocs = []
    for history in (False, True):
        res = propagate(path, seeds, budget=0, info=info, workers=2, tracker_model=model,
                        params=PropagationParams(history=history))
        assert res.engine == engine
        conf = np.concatenate([t.confidence for t in res.tracks])
        v = np.concatenate([frame_ious(t.boxes, gt[t.track_id]) for t in res.tracks])
        aurocs.append(confidence_auroc(conf, v))
    assert aurocs[1] >= aurocs[0] + margin, f"{name} ({engine}): AUROC {aurocs[0]:.3f} without history, {aurocs[1]:.3f} with"


def test_the_bench_pairs_each_box_with_its_own_confidence():
    """bench.engine scores confidence against IoU per object-frame; ground truth whose ids
    are not in order must not pair one object's boxes with another's confidences."""
    from bench.engine import scored

    right, wrong = _track(3, 0.0, conf=0.9), _track(7, 300.0, conf=0.2)
    wrong.boxes[1:] = [500, 10, 520, 50]  # lost its object after the keyframe
    gt = {7: np.tile(np.float32([300, 10, 320, 50]), (N, 1)), 3: np.tile(np.float32([0, 10, 20, 50]), (N, 1))}
    conf, v = scored([right, wrong], gt)
    assert confidence_auroc(conf, v) == 1.0
