"""The one shape every writer reads: delivered frames with their labeled objects.

Boxes are xyxy floats in full-resolution pixels; class ids are 0-based indexes into
`ExportSpec.classes`. Every object says where its box came from (`LabeledObject.source`, one
of `SOURCES`) and how sure the engine is of it (`confidence`, in [0, 1]).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from src.vision.attributes import AttributeSpec, TrackValues, resolve_tracks
from src.vision.types import SOURCE_DETECTOR, SOURCE_KEYFRAME, PropagationResult

SPLITS = ("train", "valid", "test")
# Where a box came from: a keyframe the user drew (seed), the tracker carrying it between
# keyframes (propagated), a frame a person checked in review (reviewed, re-propagated as a
# keyframe), or a detector's box filling a frame where the tracker had lost the object.
SOURCES = ("seed", "propagated", "reviewed", "detector")


def image_name(frame: int) -> str:
    """The image file of a frame in every export: ``frame_NNNNNN.jpg``."""
    return f"frame_{frame:06d}.jpg"


@dataclass(frozen=True)
class LabeledObject:
    track_id: int
    class_id: int
    box: tuple[float, float, float, float]
    confidence: float
    source: str = "propagated"  # one of SOURCES
    # {name: value} of the class's attributes on this frame (src/vision/attributes.py); None:
    # the class has none
    attributes: dict[str, Any] | None = field(default=None, hash=False, compare=False)


@dataclass(frozen=True)
class LabeledFrame:
    frame: int
    split: str  # train | valid | test
    source: str  # keyframe | reviewed | propagated
    confidence: float
    objects: tuple[LabeledObject, ...]

    @property
    def file_name(self) -> str:
        return image_name(self.frame)


@dataclass
class ExportSpec:
    dataset_id: str
    dataset_name: str
    video_id: str
    video_name: str
    width: int
    height: int
    fps: float
    n_frames: int
    classes: list[str]
    colors: list[str] = field(default_factory=list)
    formats: tuple[str, ...] = ("yolo", "coco", "cvat", "ava")
    ava_rate: float = 1.0
    sampling: dict = field(default_factory=dict)
    split: dict = field(default_factory=dict)
    reviewed_frames: frozenset[int] = frozenset()
    # attribute schemas of the classes, and the values the keyframes (and review corrections)
    # set: {frame: {track_id: {name: value}}} (src.vision.attributes.keyframe_values)
    attributes: tuple[AttributeSpec, ...] = ()
    keyframe_attributes: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    # the attribute whose values are AVA's actions (None: the first multi / select attribute of
    # the class "person", else of any class; see action_attribute)
    ava_action: str | None = None

    def action_attribute(self) -> AttributeSpec | None:
        """The attribute the AVA export writes as actions, or None (AVA writes the class).
        `ava_action` names it (the dataset option `ava_action_attribute`; the class person's when
        several classes have an attribute of that name)."""
        candidates = [a for a in self.attributes if a.kind in ("multi", "select")]
        if self.ava_action is not None:
            candidates = [a for a in candidates if a.name == self.ava_action]
            if not candidates:
                return None
        return next((a for a in candidates if a.class_name == "person"), candidates[0] if candidates else None)

    def track_values(self, result: PropagationResult) -> dict[int, TrackValues]:
        """`{track_id: TrackValues}` of the tracks whose class has attributes."""
        if not self.attributes:
            return {}
        classes = {int(t.track_id): t.class_name for t in result.tracks}
        return resolve_tracks(self.attributes, classes, self.keyframe_attributes)


def with_attributes(frames: list[LabeledFrame], values: dict[int, TrackValues]) -> list[LabeledFrame]:
    """`frames` whose objects carry their track's attribute values on that frame (no change
    when no track has attributes)."""
    if not values:
        return frames
    return [
        replace(f, objects=tuple(replace(o, attributes=values[o.track_id].at(f.frame)) if o.track_id in values else o
                                 for o in f.objects))
        for f in frames
    ]


def split_by_blocks(frames: list[int], ratios: dict[str, float], seed: int, n_blocks: int = 20) -> dict[int, str]:
    """Assign delivered frames to splits by contiguous time blocks (no neighbour leakage).

    The frames (in time order) are cut into about `n_blocks` runs of consecutive delivered
    frames; whole runs are dealt to valid / test first (seeded shuffle) until their share
    is met, the rest is train. Ratios are normalised; a split with ratio > 0 gets at least
    one block when there are at least as many blocks as non-empty splits.
    """
    if not frames:
        return {}
    total = sum(max(0.0, ratios.get(s, 0.0)) for s in SPLITS) or 1.0
    share = {s: max(0.0, ratios.get(s, 0.0)) / total for s in SPLITS}
    size = max(1, round(len(frames) / n_blocks))
    blocks = [frames[i : i + size] for i in range(0, len(frames), size)]
    order = list(range(len(blocks)))
    random.Random(seed).shuffle(order)
    assigned: dict[int, str] = {}
    taken = {s: 0 for s in SPLITS}
    for split in ("valid", "test"):
        want = share[split] * len(frames)
        while order and share[split] > 0 and (taken[split] == 0 or taken[split] + len(blocks[order[0]]) / 2 <= want):
            if len(order) == 1 and share["train"] > 0:
                break  # keep at least one block for training
            block = blocks[order.pop(0)]
            taken[split] += len(block)
            assigned.update({f: split for f in block})
    for index in order:
        assigned.update({f: "train" for f in blocks[index]})
    return assigned


def labeled_frames(
    result: PropagationResult, frames: list[int], split: dict[int, str], class_ids: dict[str, int],
    *, reviewed: frozenset[int] = frozenset(), keep_empty: bool = True,
) -> list[LabeledFrame]:
    """Delivered frames (in order) with the objects the engine reports on them."""
    out = []
    frame_conf = result.frame_confidence()
    for f in frames:
        objects = []
        keyframe = False
        for t in result.tracks:
            if not t.present[f]:
                continue
            keyframe |= bool(t.source[f] == SOURCE_KEYFRAME)
            box = tuple(float(v) for v in t.boxes[f])
            objects.append(LabeledObject(int(t.track_id), class_ids[t.class_name], box, float(t.confidence[f]),
                                         box_source(int(t.source[f]), reviewed=f in reviewed)))
        if not objects and not keep_empty:
            continue
        source = "reviewed" if f in reviewed else "keyframe" if keyframe else "propagated"
        out.append(LabeledFrame(f, split.get(f, "train"), source, float(frame_conf[f]), tuple(objects)))
    return out


def box_source(engine_source: int, *, reviewed: bool) -> str:
    """One of SOURCES for a box the engine reports with `engine_source` (a SOURCE_* code)."""
    if reviewed:
        return "reviewed"
    if engine_source == SOURCE_KEYFRAME:
        return "seed"
    if engine_source == SOURCE_DETECTOR:
        return "detector"
    return "propagated"


def frame_step(frames: list[int]) -> int | None:
    """The common difference of `frames` (sorted video frame indices) when they are evenly
    spaced (every frame: 1, every 5th: 5; one frame: 1), else None (near-duplicate removal,
    or every Nth restarted at a scene cut)."""
    if len(frames) < 2:
        return 1
    step = frames[1] - frames[0]
    return step if step > 0 and all(b - a == step for a, b in zip(frames, frames[1:])) else None


def box_at(result: PropagationResult, frame: int) -> list[tuple[int, str, np.ndarray]]:
    """(track_id, class_name, box) of every object present on `frame`."""
    return [(t.track_id, t.class_name, t.boxes[frame]) for t in result.tracks if t.present[frame]]
