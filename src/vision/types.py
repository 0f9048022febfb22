"""Small typed containers that flow through every stage of the engine.

Conventions: a box is ``(4,)`` float32 ``[x1, y1, x2, y2]`` in full-resolution pixels
(x right, y down, corners, x2 > x1). Frame indices are 0-based decode order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from src.vision.segments import Reusable, Span

SOURCE_ABSENT = 0
SOURCE_KEYFRAME = 1
SOURCE_PROPAGATED = 2
SOURCE_DETECTOR = 3  # a detector's box filled a frame where the tracker had lost or doubted the object


@dataclass(frozen=True)
class VideoInfo:
    """What `video.probe` learned by really decoding the file."""

    frames: int
    fps: float
    width: int  # after rotation metadata was applied
    height: int
    codec: str
    container: str
    duration_s: float


@dataclass
class SeedObject:
    """One object on one keyframe. ``box`` is ``(4,)`` float32 xyxy, None when ``gone``."""

    track_id: int
    class_name: str
    box: np.ndarray | None
    gone: bool = False


@dataclass
class Track:
    """One object through the whole video.

    boxes: ``(n_frames, 4)`` float32 xyxy full-res pixels, NaN rows where absent.
    confidence: ``(n_frames,)`` float32 in [0, 1], 0 where absent.
    source: ``(n_frames,)`` uint8, one of SOURCE_ABSENT / SOURCE_KEYFRAME / SOURCE_PROPAGATED /
    SOURCE_DETECTOR.
    lost: ``(n_frames,)`` bool, absent because tracking lost the object (it may still be in
    the picture: a frame worth reviewing), as opposed to gone or out of the frame.
    left: ``(n_frames,)`` bool, absent because the tracker judged that the object left the
    picture. A drifting box that reaches the frame edge looks the same (a false exit), so
    these frames still carry expected error for the hard-frame pick.
    """

    track_id: int
    class_name: str
    boxes: np.ndarray
    confidence: np.ndarray
    source: np.ndarray
    lost: np.ndarray | None = None
    left: np.ndarray | None = None

    def __post_init__(self):
        if self.lost is None:
            self.lost = np.zeros(len(self.source), bool)
        if self.left is None:
            self.left = np.zeros(len(self.source), bool)

    @classmethod
    def empty(cls, track_id: int, class_name: str, n_frames: int) -> "Track":
        return cls(
            track_id,
            class_name,
            np.full((n_frames, 4), np.nan, np.float32),
            np.zeros(n_frames, np.float32),
            np.zeros(n_frames, np.uint8),
        )

    @property
    def present(self) -> np.ndarray:
        """``(n_frames,)`` bool: the object is reported on that frame."""
        return self.source != SOURCE_ABSENT


@dataclass
class PropagationResult:
    video: VideoInfo
    tracks: list[Track]
    hard_frames: list[int] = field(default_factory=list)
    seconds: float = 0.0
    engine: str = "lk-ncc"  # which tracker made the tracks (src.vision.propagate.Engine)
    engine_note: str = ""  # why the built-in tracker ran when a learned one was asked for
    reusable: Reusable | None = None  # for a later re-propagation (propagate(keep=True))
    spans: list[Span] | None = None  # what a re-propagation ran again (None: the whole video)

    def frame_confidence(self) -> np.ndarray:
        """``(n_frames,)`` float32: the lowest confidence of any object present on the frame
        (1.0 on frames with no object)."""
        conf = np.ones(self.video.frames, np.float32)
        for t in self.tracks:
            p = t.present
            conf[p] = np.minimum(conf[p], t.confidence[p])
        return conf

    def to_json(self) -> dict:
        """The OUT.json document of `forge propagate` (see src/vision/cli.py)."""
        n = self.video.frames
        frames = [{"frame": i, "objects": []} for i in range(n)]
        for t in sorted(self.tracks, key=lambda t: t.track_id):
            for i in np.flatnonzero(t.present):
                frames[i]["objects"].append(
                    {
                        "track_id": int(t.track_id),
                        "class": t.class_name,
                        "box": [round(float(v), 2) for v in t.boxes[i]],
                        "confidence": round(float(t.confidence[i]), 4),
                    }
                )
        return {
            "video": {
                "frames": n,
                "fps": round(float(self.video.fps), 4),
                "width": self.video.width,
                "height": self.video.height,
            },
            "frames": frames,
            "hard_frames": [int(i) for i in self.hard_frames],
            "engine": self.engine,
            "timing": {
                "seconds": round(self.seconds, 3),
                "fps": round(n / self.seconds, 2) if self.seconds > 0 else 0.0,
            },
        }
