"""Which frames to deliver: all, every Nth, or near-duplicate removal, restarting at cuts.

Both the SSIM and the cut detector work on a small grey copy (``SMALL_W`` px wide).
A scene cut is a frame whose grey-histogram distance to the previous frame is large both in
absolute terms and relative to the recent typical distance; sampling always keeps the first
frame of a shot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from src.vision.video import iter_frames, probe, resize

SMALL_W = 160
CUT_MIN_DIST = 0.35  # Bhattacharyya distance of 32-bin grey histograms ...
CUT_RATIO = 4.0  # ... and this many times the median of the last frames


def _small_grey(path: str | Path):
    scale = small_scale(probe(path).width)
    for frame in iter_frames(path):
        yield small_grey_of(frame, scale)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two grey uint8 images of the same shape (Gaussian window, sigma 1.5)."""
    a = a.astype(np.float32)
    b = b.astype(np.float32)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (7, 7), 1.5)  # noqa: E731
    ma, mb = blur(a), blur(b)
    va = blur(a * a) - ma * ma
    vb = blur(b * b) - mb * mb
    cov = blur(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(s.mean())


def _hist(g: np.ndarray) -> np.ndarray:
    h = cv2.calcHist([g], [0], None, [32], [0, 256])
    return cv2.normalize(h, h).astype(np.float32)


def _is_cut(dist: float, recent: list[float]) -> bool:
    typical = float(np.median(recent)) if recent else 0.0
    return dist > CUT_MIN_DIST and dist > CUT_RATIO * max(typical, 0.02)


def detect_scene_cuts(video_path: str | Path) -> list[int]:
    """Frame indices that start a new shot (frame 0 not included)."""
    cuts, recent, prev = [], [], None
    for i, g in enumerate(_small_grey(video_path)):
        h = _hist(g)
        if prev is not None:
            d = cv2.compareHist(prev, h, cv2.HISTCMP_BHATTACHARYYA)
            if _is_cut(d, recent):
                cuts.append(i)
                recent = []
            else:
                recent = (recent + [d])[-30:]
        prev = h
    return cuts


class Sampler:
    """The sampling decision frame by frame, for a decode that also serves other readers
    (``sample_frames`` over its own decode; src.vision.delivery inside the engine's).

    ``feed(i, small_grey)`` with every frame in order, as ``small_grey_of`` makes it;
    ``kept``: the frames delivered so far (frame ``i``'s fate is known once it is fed)."""

    def __init__(self, mode: Literal["all", "every_n", "dedup"] = "all", every_n: int = 1,
                 ssim_threshold: float = 0.95):
        if mode not in ("all", "every_n", "dedup"):
            raise ValueError(f"unknown sampling mode {mode!r}")
        if every_n < 1:
            raise ValueError("every_n must be >= 1")
        self.mode, self.every_n, self.ssim_threshold = mode, every_n, ssim_threshold
        self.kept: list[int] = []
        self._recent: list[float] = []
        self._prev_h = self._last_kept = None
        self._shot_start = 0

    @property
    def needs_pixels(self) -> bool:
        """False for ``all``: every frame is kept, nothing needs looking at."""
        return self.mode != "all"

    def feed(self, i: int, g: np.ndarray | None) -> bool:
        """Whether frame ``i`` is delivered; ``g``: its small grey copy (None for ``all``)."""
        if self.mode == "all":
            self.kept.append(i)
            return True
        h = _hist(g)
        cut = False
        if self._prev_h is not None:
            d = cv2.compareHist(self._prev_h, h, cv2.HISTCMP_BHATTACHARYYA)
            cut = _is_cut(d, self._recent)
            self._recent = [] if cut else (self._recent + [d])[-30:]
        self._prev_h = h
        keep = i == 0 or cut
        if keep:
            self._shot_start, self._last_kept = i, g
        elif self.mode == "every_n":
            keep = (i - self._shot_start) % self.every_n == 0
        elif ssim(g, self._last_kept) < self.ssim_threshold:
            keep, self._last_kept = True, g
        if keep:
            self.kept.append(i)
        return keep


def small_scale(width: int) -> float:
    """The scale of the small copy sampling and cut detection look at."""
    return min(1.0, SMALL_W / width)


def small_grey_of(bgr: np.ndarray, scale: float) -> np.ndarray:
    """A decoded BGR frame as the sampler sees it (``sample_frames`` over its own decode, the
    delivery tap over the engine's)."""
    return cv2.cvtColor(resize(bgr, None, scale), cv2.COLOR_BGR2GRAY)


def sample_frames(
    video_path: str | Path,
    *,
    mode: Literal["all", "every_n", "dedup"] = "all",
    every_n: int = 1,
    ssim_threshold: float = 0.95,
) -> list[int]:
    """Frame indices to deliver, sorted.

    - ``all``: every frame.
    - ``every_n``: frames 0, N, 2N, ... counted from the start of each shot.
    - ``dedup``: a frame is kept when its SSIM to the last kept frame is below
      ``ssim_threshold`` (and the first frame of each shot is always kept).
    """
    sampler = Sampler(mode, every_n, ssim_threshold)
    if mode == "all":
        return list(range(probe(video_path).frames))
    for i, g in enumerate(_small_grey(video_path)):
        sampler.feed(i, g)
    return sampler.kept
