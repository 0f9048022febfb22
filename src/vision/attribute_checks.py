"""Attribute checks: the AVA timestamps where a person should look at the attribute values
rather than the boxes. Pure functions.

AVA delivers values at whole seconds (`src/vision/formats/ava.py`: the frame nearest each
second, every `seconds_step(ava_rate)` seconds). Boxes come from the tracker, so the hard-frame
pick (`src/vision/hard_frames.py`) ranks them by the tracker's doubt; values come from the
keyframes only (`src/vision/attributes.py`), so their doubt is of another kind. A mutable value
is at risk on an AVA frame when

- **it changes nearby**: a keyframe set it to a new value close to that frame, and the real
  moment of the change is only known to the keyframe's precision (`near`: 1 on the change,
  1/e at `change_seconds` from it);
- **it is stale**: the keyframe that set the value in force was seen long ago, and the person
  may have done something else since (`stale`: 0 on that keyframe, 1 - 1/e at `stale_seconds`).

A track's risk on a frame is `max(near, stale)` per mutable attribute of its class, summed over
the attributes and over the tracks present on the frame. Fixed (immutable) attributes have one
value for the whole track and carry no risk of this kind; a class without mutable attributes
gives none either, so a dataset without them gets no attribute checks.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from src.vision.attributes import AttributeSpec
from src.vision.formats.ava import seconds_step
from src.vision.types import Track


@dataclass(frozen=True)
class AttributeRiskParams:
    change_seconds: float = 1.0  # a value changed on a keyframe: how far either side the real change may lie
    stale_seconds: float = 5.0  # how long a value seen on a keyframe is trusted before it may have changed
    spread: float = 0.5  # a pick discounts its neighbours within this share of the even spacing of the picks


def attribute_check_count(review_frames: int, share: float) -> int:
    """How many of `review_frames` go to attribute checks at `share` (0..1), at most: the
    frames the attribute pick cannot fill go back to the box checks."""
    return min(review_frames, math.floor(share * review_frames + 0.5))


def ava_frames(fps: float, n_frames: int, ava_rate: float = 1.0) -> list[int]:
    """The video frames the AVA export writes rows from: `floor(t * fps + 0.5)` for every
    sampled second `t` (every `seconds_step(ava_rate)` seconds) while that frame exists."""
    if fps <= 0:
        return []
    step, frames, second = seconds_step(ava_rate), [], 0
    while (frame := int(second * fps + 0.5)) < n_frames:
        frames.append(frame)
        second += step
    return frames


def attribute_risk(
    specs: Iterable[AttributeSpec], tracks: Sequence[Track], keyframes: Mapping[int, Mapping[int, Mapping[str, Any]]],
    frames: Sequence[int], *, fps: float, params: AttributeRiskParams = AttributeRiskParams(),
) -> np.ndarray:
    """`(len(frames),)` float64: the attribute risk of each of `frames` (module docstring).

    `keyframes`: `{frame: {track_id: {name: value}}}` (`attributes.keyframe_values`), the
    values each keyframe box sets (a box that sets nothing: `{}`)."""
    mutable = [s for s in specs if s.mutable]
    risk = np.zeros(len(frames), np.float64)
    if not mutable or fps <= 0:
        return risk
    change_scale, stale_scale = max(1.0, params.change_seconds * fps), max(1.0, params.stale_seconds * fps)
    for track in tracks:
        own = [s for s in mutable if s.class_name == track.class_name]
        if not own:
            continue
        present = track.present
        seen = sorted(f for f, boxes in keyframes.items() if int(track.track_id) in boxes)
        for spec in own:
            sets = [(f, keyframes[f][int(track.track_id)][spec.name]) for f in seen
                    if spec.name in keyframes[f][int(track.track_id)]]
            # never set: the default holds from the keyframes where the box was drawn
            sets = sets or [(f, spec.default_value()) for f in seen]
            set_frames = [f for f, _ in sets]
            changes = [sets[i][0] for i in range(1, len(sets)) if sets[i][1] != sets[i - 1][1]]
            for i, frame in enumerate(frames):
                if not present[frame]:
                    continue
                risk[i] += max(_near(frame, changes, change_scale), _stale(frame, set_frames, stale_scale))
    return risk


def _near(frame: int, changes: Sequence[int], scale: float) -> float:
    return max((math.exp(-abs(frame - c) / scale) for c in changes), default=0.0)


def _stale(frame: int, set_frames: Sequence[int], scale: float) -> float:
    """1 - e^(-d / scale), d: frames since the keyframe whose value holds on `frame` (before
    the first one: frames to it, as values are carried backwards); 1 without any keyframe."""
    if not set_frames:
        return 1.0
    index = bisect.bisect_right(set_frames, frame) - 1
    distance = frame - set_frames[index] if index >= 0 else set_frames[0] - frame
    return 1.0 - math.exp(-distance / scale)


def select_attribute_frames(
    specs: Iterable[AttributeSpec], tracks: Sequence[Track], keyframes: Mapping[int, Mapping[int, Mapping[str, Any]]],
    *, fps: float, n_frames: int, count: int, ava_rate: float = 1.0, allowed: Iterable[int] | None = None,
    params: AttributeRiskParams = AttributeRiskParams(),
) -> list[int]:
    """Up to `count` AVA frames (`ava_frames`) by attribute risk, spread in time: after each
    pick the risk of the frames around it is discounted by a Gaussian bump (as the hard-frame
    pick does), so one uncertain change gets one check. Only frames in `allowed` (e.g. the
    delivered frames less the keyframes) with a risk above zero are picked. Sorted."""
    candidates = ava_frames(fps, n_frames, ava_rate)
    if allowed is not None:
        allowed = set(allowed)
        candidates = [f for f in candidates if f in allowed]
    if count <= 0 or not candidates:
        return []
    risk = attribute_risk(specs, tracks, keyframes, candidates, fps=fps, params=params)
    at = np.asarray(candidates, np.float64)
    radius = max(1.0, params.spread * n_frames / (count + 1))
    picked: list[int] = []
    for _ in range(count):
        best = int(np.argmax(risk))
        if risk[best] <= 1e-9:
            break
        picked.append(candidates[best])
        risk *= 1.0 - np.exp(-0.5 * ((at - candidates[best]) / radius) ** 2)  # 0 on the pick itself
    return sorted(picked)
