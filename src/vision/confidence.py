"""Per-frame confidence: a logistic combination of tracking signals, in [0, 1].

Signals of one pass (``FEATURES``, computed by tracker.ObjectTracker.step):
  log_fb      log(1 + median forward-backward LK error), normalized-box px
  good        share of LK points kept after the forward-backward check
  ncc_key     NCC of the current crop with the keyframe crop
  ncc_recent  NCC of the current crop with the recent (slowly updated) crop
  peak_gap    how much better the best NCC match nearby is than the chosen box
  motion      deviation of this step's motion from the recent velocity, in box sizes
  log_area    |log(area / keyframe area)|
  log_dist    log(1 + frames since the keyframe)
  lk_failed   1 when LK found too few consistent points
Between two keyframes the forward and backward passes are fused and their agreement (IoU)
is one more, strong, signal (``fused_confidence``).

Weights: a hand-set mapping (not fitted to any sequence): appearance similarity raises
confidence, forward-backward LK error, a better match elsewhere, implausible motion, scale
change and distance from the keyframe lower it; between keyframes, agreement of the two
passes (IoU) is worth +2.5 logits at full agreement and -1.25 at none. The benches report
how well it ranks errors (AUROC for IoU < 0.5). Refitting them by logistic regression on
all shared sequences together is the obvious next step.

After fusion, src.vision.history folds in the track's way from its keyframe (its weakest
moment, its closest brush with another object): that is the confidence a track reports.
"""


from __future__ import annotations

import math

import numpy as np

FEATURES = ("log_fb", "good", "ncc_key", "ncc_recent", "peak_gap", "motion", "log_area", "log_dist", "lk_failed")



def in_order(weights: dict[str, float], names: tuple[str, ...]) -> np.ndarray:
    """Named weights as the array the features' layout wants (``names``' order): a weight
    without its feature, or a feature without a weight, is refused at import."""
    if set(weights) != set(names):
        raise ValueError(f"weights {sorted(weights)} do not name exactly the features {sorted(names)}")
    return np.array([weights[n] for n in names], np.float32)


# logit = SINGLE_BIAS + SINGLE_WEIGHTS . features
SINGLE_BIAS = -1.5
SINGLE_WEIGHTS = in_order({"log_fb": -2.0, "good": 1.0, "ncc_key": 3.0, "ncc_recent": 2.0, "peak_gap": -3.0,
                           "motion": -2.0, "log_area": -1.0, "log_dist": -0.3, "lk_failed": -2.0}, FEATURES)

# fused logit = FUSED[0] + FUSED[1] * logit(single) + FUSED[2] * agreement + FUSED[3] * both
FUSED = np.array([0.0, 1.0, 2.5, -1.25], np.float32)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def _logit(p):
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def single_pass_confidence(features: np.ndarray) -> float | np.ndarray:
    """``(len(FEATURES),)`` or ``(n, len(FEATURES))`` -> confidence in [0, 1]."""
    features = np.asarray(features, np.float32)
    if features.ndim == 1:  # one step of one object: plain floats (4 µs instead of NumPy's 15)
        z = SINGLE_BIAS + float(features @ SINGLE_WEIGHTS)
        return 1.0 / (1.0 + math.exp(-min(max(z, -30.0), 30.0)))
    return _sigmoid(SINGLE_BIAS + features @ SINGLE_WEIGHTS)


def fused_confidence(single: np.ndarray, agreement: np.ndarray, both: np.ndarray) -> np.ndarray:
    """Final confidence from the single-pass confidence ``(n,)``, the forward/backward box IoU
    ``(n,)`` (0 where only one pass exists) and ``both`` ``(n,)`` (1 where two passes exist)."""
    z = FUSED[0] + FUSED[1] * _logit(np.asarray(single, np.float64)) + FUSED[2] * agreement + FUSED[3] * both
    return _sigmoid(z).astype(np.float32)


# The learned tracker (src.vision.nanotrack) has its own signals: NanoTrack's penalized object
# score in place of LK's, the same appearance and motion signals.
LEARNED_FEATURES = ("nano_score", "ncc_key", "ncc_recent", "motion", "log_area", "log_dist")
# logit = LEARNED_BIAS + LEARNED_WEIGHTS . features, fitted by `python -m bench.fit_learned`
# on the shared sequences (first 300 frames, up to 10 objects; the two MOT15 ones were not
# read then: their ground truth loader kept no row, fixed since; L2 logistic regression,
# label IoU >= 0.5, each sequence weighted equally). Left out one at a time, the fitted weights
# were better calibrated than the hand-set ones (-3.0; 5.0, 2.0, 1.5, -2.0, -1.0, -0.2): mean
# Brier 0.097 against 0.130 over the 13 sequences with steps, and ranked errors about as well
# (mean AUROC 0.85 against 0.88 over the 9 with errors; worse on uav123_person12_1 0.80 -> 0.54).
# Similarity to the recent crop and distance from the keyframe carry most of it.
LEARNED_BIAS = 2.19
LEARNED_WEIGHTS = in_order({"nano_score": 0.64, "ncc_key": -0.23, "ncc_recent": 5.13, "motion": -1.61,
                            "log_area": 0.12, "log_dist": -1.00}, LEARNED_FEATURES)


def learned_confidence(features: np.ndarray) -> float:
    """``(len(LEARNED_FEATURES),)`` -> confidence in [0, 1]."""
    z = LEARNED_BIAS + float(np.asarray(features, np.float32) @ LEARNED_WEIGHTS)
    return 1.0 / (1.0 + math.exp(-min(max(z, -30.0), 30.0)))
