"""Choose the frames whose human review would fix the most error, spread in time.

A reviewed frame becomes a keyframe and re-propagation fixes its neighbours too, so a frame
is scored by the not-yet-covered expected error in its neighbourhood (a Gaussian bump of
width ``radius``), and after a frame is picked the expected error of the frames around it
is discounted by the same bump before the next pick: one bad moment gets one review, not
five, and a long bad run gets a review in its middle before an isolated dip.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from src.vision.types import Track

LOST_ERROR = 0.8  # a lost object is probably still there, unlabeled
# An object the tracker judged to have left the picture: a drifting box that reaches the edge
# looks the same (a false exit: the object still in view, unlabeled), so the frames after an
# exit carry LEFT_ERROR, fading by half every LEFT_HALF_LIFE frames (a review near the exit
# settles it either way: a box re-propagates, "gone" ends the object; a real exit early in a
# long video must not hold the budget for the rest of it).
LEFT_ERROR = 0.6
LEFT_HALF_LIFE = 30.0


def budget_to_count(budget: float, n_frames: int) -> int:
    """A share of frames when ``budget`` < 1, a frame count when >= 1."""
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    k = int(round(budget * n_frames)) if budget < 1 else int(budget)
    return min(k, n_frames)


def frame_error(tracks: Sequence[Track], n_frames: int) -> np.ndarray:
    """``(n_frames,)`` expected number of wrong boxes per frame: the sum over present
    objects of ``1 - confidence`` (a coasted box carries its low confidence), plus
    ``LOST_ERROR`` per object that tracking lost there, plus the fading ``LEFT_ERROR`` of an
    object judged to have left the picture."""
    err = np.zeros(n_frames, np.float64)
    for t in tracks:
        p = t.present
        err[p] += 1.0 - t.confidence[p].astype(np.float64)
        err[t.lost & ~p] += LOST_ERROR
        left = getattr(t, "left", None)
        if left is not None and left.any():
            err += LEFT_ERROR * _fading(left & ~p & ~t.lost)
    return err


def _fading(run: np.ndarray) -> np.ndarray:
    """``(n,)`` bool -> ``(n,)`` float: 1 on the first frame of each run of True, halving
    every LEFT_HALF_LIFE frames along the run, 0 outside runs."""
    out = np.zeros(len(run), np.float64)
    k = 0
    for i, v in enumerate(run):
        k = k + 1 if v else 0
        if v:
            out[i] = 0.5 ** ((k - 1) / LEFT_HALF_LIFE)
    return out


def select_hard_frames(
    tracks: Sequence[Track],
    n_frames: int,
    budget: float,
    *,
    exclude: Iterable[int] = (),
    radius: float | None = None,
) -> list[int]:
    """Greedy pick of ``budget`` frames (share < 1 or count >= 1) maximising discounted
    expected error. ``exclude`` (e.g. the keyframes) is never picked and already counts as
    reviewed. ``radius`` (frames) defaults to half the even spacing of the budget.
    Returns sorted frame indices; frames with no expected error are not picked."""
    k = budget_to_count(budget, n_frames)
    if k == 0 or n_frames == 0:
        return []
    err = frame_error(tracks, n_frames)
    if radius is None:
        radius = max(1.0, 0.5 * n_frames / (k + 1))
    idx = np.arange(n_frames)
    keep = np.ones(n_frames)

    def discount(f: int) -> None:
        keep[:] *= 1.0 - np.exp(-0.5 * ((idx - f) / radius) ** 2)

    excluded = sorted({int(f) for f in exclude if 0 <= int(f) < n_frames})
    for f in excluded:
        discount(f)
    # A review fixes its neighbourhood, so a frame is worth the error it would remove around
    # it (error not yet covered, weighted by the same bump), not just its own error: the
    # middle of a long bad run beats an isolated dip, and a run counts by its length.
    w = int(np.ceil(3 * radius))
    kernel = np.exp(-0.5 * (np.arange(-w, w + 1) / radius) ** 2)
    picked: list[int] = []
    for _ in range(k):
        left = err * keep
        score = np.convolve(left, kernel)[w : w + n_frames]
        score[left <= 1e-9] = -1  # only frames with error of their own
        score[excluded] = -1
        score[picked] = -1
        f = int(np.argmax(score))
        if score[f] <= 1e-9:
            break
        picked.append(f)
        discount(f)
    return sorted(picked)
