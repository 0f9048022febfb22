"""The confidence model's weights are named after its features (src/vision/confidence.py)."""

import numpy as np
import pytest

from src.vision.confidence import (FEATURES, LEARNED_FEATURES, LEARNED_WEIGHTS, SINGLE_WEIGHTS, fused_confidence,
                                   in_order, single_pass_confidence)


def test_weights_follow_their_features_by_name():
    assert len(SINGLE_WEIGHTS) == len(FEATURES) and len(LEARNED_WEIGHTS) == len(LEARNED_FEATURES)
    reordered = in_order({"b": 2.0, "a": 1.0}, ("a", "b"))
    np.testing.assert_array_equal(reordered, [1.0, 2.0])
    with pytest.raises(ValueError, match="do not name exactly"):
        in_order({"a": 1.0}, ("a", "b"))
    with pytest.raises(ValueError, match="do not name exactly"):
        in_order({"a": 1.0, "b": 2.0, "typo": 0.0}, ("a", "b"))


def test_confidence_moves_the_way_its_signals_say():
    """A step whose crop still matches the keyframe is surer than one that does not; two
    passes that agree are surer than one alone."""
    base = np.zeros(len(FEATURES), np.float32)
    matching, lost = base.copy(), base.copy()
    matching[FEATURES.index("ncc_key")] = 0.9
    lost[FEATURES.index("lk_failed")] = 1.0
    assert single_pass_confidence(matching) > single_pass_confidence(base) > single_pass_confidence(lost)
    one = fused_confidence(np.array([0.7]), np.array([0.0]), np.array([0.0]))
    agreeing = fused_confidence(np.array([0.7]), np.array([0.95]), np.array([1.0]))
    assert agreeing[0] > one[0]
