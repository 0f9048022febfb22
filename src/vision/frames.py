"""Disk-backed store of small grey working-resolution frames, filled by one decode thread.

Each frame is kept as a 3-level pyramid (full working size, 1/2, 1/4; each level a box-filter
halving of the one above), so a tracker can cut a crop of any size with one bilinear warp
from the level whose pixels are at most 2x finer than the crop's, without aliasing and
without resizing large regions per object.

Tracking threads or processes read frames while the decoder is still writing later ones:
``FrameReader.get(i)`` waits until frame ``i`` is decoded. Frames live in ``np.memmap``
files in a temp dir, and another process reads them by path (``FrameStore.spec``).

The files are a ring of ``slots`` frames (frame ``i`` in slot ``i % slots``), so neither
memory nor disk grows with the video length. Each reader holds a mark in a shared array: the
lowest frame it may still read (``FrameReader.hold``). The decoder writes frame ``i`` only
once every mark has passed ``i - slots``, i.e. it waits for the slowest reader instead of
overwriting a frame someone still needs. With ``slots`` = the number of frames (the default)
nothing waits and no marks are needed.

A store may start at a later frame (``first``: a segment re-propagated after a keyframe
changed, see src.vision.segments): the decoder seeks there and frames keep their numbers in
the video. ``FrameStore.cancel()`` stops the decoder and makes every reader's ``get`` and
``cancelled()`` say so, so passes in other processes stop within a frame.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from src.vision.video import VideoProbeError, iter_frames, open_capture, seek_to

LEVELS = 3
Pyramid = tuple[np.ndarray, ...]  # one grey frame: (h, w), (h // 2, w // 2), (h // 4, w // 4) uint8


class Frame(tuple):
    """A grey ``Pyramid`` that may also carry its colour: ``chroma`` is None or the Cr, Cb
    planes (YCrCb) as ``((h // 2, w // 2, 2), (h // 4, w // 4, 2))`` uint8, the 4:2:0 layout of
    the video itself. Only the learned tracker reads colour (it was trained on colour crops:
    on otb_bolt NanoTrack alone keeps the runner in colour, mean IoU 0.66, and jumps to the
    neighbour on the same frames in grey, 0.09); everything else sees a plain pyramid."""

    chroma: Pyramid | None = None

    @classmethod
    def of(cls, levels, chroma=None) -> Frame:
        f = cls(levels)
        f.chroma = None if chroma is None else tuple(chroma)
        return f


def chroma_levels(bgr: np.ndarray, shapes: tuple[tuple[int, int], ...]) -> Pyramid:
    """The Cr, Cb planes of a working-size BGR frame at pyramid levels 1 .. (``shapes``: the
    grey levels' shapes), each an exact 2x box filter of the one above."""
    ycc = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)
    out, img = [], ycc[:, :, 1:]
    for h, w in shapes[1:]:
        img = cv2.resize(np.ascontiguousarray(img[: 2 * h, : 2 * w]), (w, h), interpolation=cv2.INTER_AREA)
        out.append(img)
    return tuple(out)
_POLL_S = 0.001

# state file: [frames decoded (the next frame's number), 1 when decoding failed, 1 when cancelled]
_DECODED, _FAILED, _CANCELLED = 0, 1, 2
_STATE_LEN = 3
# Camera motion: LK of a MOTION_GRID lattice of points on the coarsest pyramid level from each
# frame to the next, then a RANSAC similarity (rotation, scale, shift): objects move on their
# own and are outvoted by the background. Stored per frame (2x3, level-0 px).
MOTION_GRID = (16, 9)
_MOTION_LK = dict(winSize=(9, 9), maxLevel=2, criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 15, 0.05))


def camera_motion(prev: np.ndarray, cur: np.ndarray, scale: float) -> np.ndarray:
    """``(2, 3)`` similarity mapping points of ``prev`` to ``cur`` (two grey images of one
    pyramid level, ``scale`` level px per level-0 px), in level-0 px; identity when fewer
    than a third of the points agree (a cut, a blank frame)."""
    h, w = prev.shape
    gx, gy = MOTION_GRID
    xs = (np.arange(gx) + 0.5) * w / gx
    ys = (np.arange(gy) + 0.5) * h / gy
    p0 = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 1, 2).astype(np.float32)
    p1, st, _ = cv2.calcOpticalFlowPyrLK(prev, cur, p0, None, **_MOTION_LK)
    ok = st.ravel() == 1
    eye = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    if ok.sum() < len(p0) // 3:
        return eye
    m, inl = cv2.estimateAffinePartial2D(p0[ok], p1[ok], method=cv2.RANSAC, ransacReprojThreshold=1.0)
    if m is None or inl is None or inl.sum() < len(p0) // 3:
        return eye
    m = m.astype(np.float64)
    m[:, 2] /= scale
    return m


@dataclass(frozen=True)
class FrameSpec:
    """Where a FrameStore's files are and their shapes: picklable, for reader processes."""

    dir: str
    n_frames: int
    shapes: tuple[tuple[int, int], ...]  # (h, w) per pyramid level
    scale: float  # working resolution / full resolution
    slots: int  # frames the ring holds
    marks: int  # readers' marks (FrameReader.hold)
    first: int = 0  # the first frame stored (frames keep their numbers in the video)
    colour: bool = False  # chroma planes stored too (Frame.chroma)
    frames_dir: str = ""  # where the frames and camera motion are, when not in ``dir`` (a FrameCache entry)


def level_shapes(h: int, w: int) -> tuple[tuple[int, int], ...]:
    return tuple((max(1, h >> lv), max(1, w >> lv)) for lv in range(LEVELS))


def shrink(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """``img`` resized to ``(h, w)``: OpenCV's INTER_AREA is fast only for whole-number factors
    (about 10x slower otherwise), so reduce by the whole part of the factor with it and do the
    rest (less than 2x) bilinearly."""
    ih, iw = img.shape[:2]
    if (ih, iw) == (h, w):
        return img
    k = min(iw // w, ih // h)
    if k >= 2:
        img = cv2.resize(img[: ih // k * k, : iw // k * k], (iw // k, ih // k), interpolation=cv2.INTER_AREA)
    if img.shape[:2] == (h, w):
        return img
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)


def pyramid(grey: np.ndarray) -> Pyramid:
    """``grey`` and its LEVELS - 1 halvings (shapes ``level_shapes``): pixel ``j`` of level
    ``l`` averages level-0 pixels ``[j * 2**l, (j + 1) * 2**l)`` on each axis."""
    levels = [grey]
    for h, w in level_shapes(*grey.shape)[1:]:
        # an exact 2x box filter (OpenCV's fast INTER_AREA path)
        levels.append(cv2.resize(levels[-1][: 2 * h, : 2 * w], (w, h), interpolation=cv2.INTER_AREA))
    return tuple(levels)


def _error(spec: FrameSpec) -> str:
    try:
        return (Path(spec.dir) / "error.txt").read_text()
    except OSError:
        return "the frame store was closed"


class FrameReader:
    """Read side: ``get(i)`` -> tuple of pyramid levels of frame ``i`` (uint8 arrays: views
    into the ring, valid while this reader's mark stays at or below ``i``)."""

    def __init__(self, spec: FrameSpec):
        self.spec = spec
        self.scale = spec.scale
        d = Path(spec.dir)
        frames = Path(spec.frames_dir or spec.dir)
        self._levels = [
            np.asarray(np.memmap(frames / f"grey{lv}.u8", np.uint8, "r", shape=(spec.slots, *shape)))
            for lv, shape in enumerate(spec.shapes)
        ]
        self._chroma = [
            np.asarray(np.memmap(frames / f"chroma{lv}.u8", np.uint8, "r", shape=(spec.slots, *shape, 2)))
            for lv, shape in enumerate(spec.shapes)
            if spec.colour and lv > 0
        ]
        self._state = np.memmap(d / "state.i64", np.int64, "r", shape=(_STATE_LEN,))
        self._marks = np.memmap(d / "marks.i64", np.int64, "r+", shape=(max(spec.marks, 1),))
        self._motion = np.memmap(frames / "motion.f64", np.float64, "r", shape=(spec.n_frames, 2, 3))

    def camera(self, a: int, b: int) -> np.ndarray:
        """``(2, 3)`` camera motion from frame ``a`` to frame ``b`` (either direction; both
        decoded): where a background point of frame ``a`` is on frame ``b``, level-0 px."""
        m = np.eye(3)
        for i in range(min(a, b) + 1, max(a, b) + 1):
            m = np.vstack([self._motion[i], [0, 0, 1]]) @ m
        if b < a:
            m = np.linalg.inv(m)
        return m[:2]

    def cancelled(self) -> bool:
        """Whether the store was cancelled (``FrameStore.cancel``): a pass should stop."""
        return bool(self._state[_CANCELLED])

    def ready(self, i: int) -> bool:
        """Whether frame ``i`` is decoded (``get(i)`` would not wait)."""
        return bool(self._state[_DECODED] > i)

    def hold(self, mark: int, frame: int) -> None:
        """Mark ``mark`` will read no frame before ``frame`` any more (``n_frames``: none):
        the decoder may reuse their slots."""
        self._marks[mark] = frame

    def get(self, i: int) -> Frame:
        """Frame ``i`` as ``(level0, level1, level2)`` (with ``chroma`` in a colour store), waiting for the decoder if needed;
        RuntimeError when decoding failed or the store was closed before frame ``i``."""
        if not self.spec.first <= i < self.spec.n_frames:
            raise RuntimeError(f"frame {i} is outside this store (frames {self.spec.first}-{self.spec.n_frames - 1})")
        while self._state[_DECODED] <= i:
            if self._state[_FAILED]:
                raise RuntimeError(_error(self.spec))
            time.sleep(_POLL_S)
        if self._state[_DECODED] > i + self.spec.slots:
            raise RuntimeError(f"frame {i} was read after its slot was reused (a reader did not hold it)")
        k = i % self.spec.slots
        return Frame.of((lv[k] for lv in self._levels), [c[k] for c in self._chroma] if self._chroma else None)


class FrameTap(Protocol):
    """Something that sees every decoded frame: ``tap(i, bgr)`` for i = first, first + 1, ...
    (full size, BGR, upright), on the decoder thread: it must be quick or hand the work on."""

    def __call__(self, i: int, bgr: np.ndarray) -> None: ...


def feed_tap(video_path: str | Path, n_frames: int, tap: FrameTap, stop: threading.Event | None = None) -> None:
    """Decode the video's first ``n_frames`` frames into ``tap``, in order (``stop`` set: end
    early). Raises VideoProbeError when the video ends before them."""
    fed = 0
    for fed, frame in enumerate(iter_frames(video_path), 1):
        if stop is not None and stop.is_set():
            return
        tap(fed - 1, frame)
        if fed == n_frames:
            return
    raise VideoProbeError(f"the video stops decoding at frame {fed} of {n_frames}")


class FrameStore:
    """Write side: owns the files and the decode thread; ``reader()`` gives the read side."""

    def __init__(
        self,
        video_path: str | Path,
        n_frames: int,
        width: int,
        height: int,
        scale: float,
        slots: int | None = None,
        marks: list[int] | None = None,
        first: int = 0,
        colour: bool = False,
        decoded: tuple[str, int] | None = None,
        tap: FrameTap | None = None,
    ):
        """Frames ``first`` .. ``n_frames - 1`` of the video. ``slots``: frames the ring holds
        (default: all); ``marks``: the readers' first marks, the lowest frame each will read
        (required when ``slots`` < the frames stored); ``colour``: keep the chroma planes too
        (``Frame.chroma``; the decoder then converts every frame to BGR, no luma shortcut).
        ``decoded``: (folder, frames) of a whole decoded video kept by ``keep_frames`` (a
        FrameCache entry): nothing is decoded, readers read there. ``tap``: called with each
        decoded full-size BGR frame, in order, before it is shrunk (src.vision.delivery); a
        colour store's only, as a grey one reads the decoder's luma plane (propagate feeds a
        tap from a second decode then)."""
        if not 0 <= first < n_frames:
            raise ValueError(f"first frame {first} outside 0-{n_frames - 1}")
        if tap is not None and (decoded is not None or not colour):
            raise ValueError("a tap needs a colour store that decodes (a grey one reads luma, a decoded one nothing)")
        self.tap = tap
        count = n_frames - first
        self.slots = max(1, min(slots or count, count)) if decoded is None else decoded[1]
        self.decoded = decoded
        marks = list(marks or [])
        if self.slots < count and not marks and decoded is None:
            raise ValueError("a ring smaller than the video needs the readers' marks")
        self.path = str(video_path)
        self.n_frames = n_frames
        self.first = first
        self.scale = scale
        self.full_wh = (width, height)
        self.w = max(16, round(width * scale))
        self.h = max(16, round(height * scale))
        self._tmp = tempfile.TemporaryDirectory(prefix="forge-frames-")
        d = Path(self._tmp.name)
        shapes = level_shapes(self.h, self.w)
        self.colour = colour
        self.spec = FrameSpec(str(d), n_frames, shapes, scale, self.slots, len(marks), first, colour,
                              decoded[0] if decoded else "")
        # Written with pwrite, read through memory maps: writing through a mapping page-faults
        # on every new page (5x slower, on the decoder thread that every pass waits for).
        self._files = []
        for lv, (h, w) in enumerate(shapes if decoded is None else ()):
            f = open(d / f"grey{lv}.u8", "w+b")  # noqa: SIM115 - closed in close()
            f.truncate(self.slots * h * w)
            self._files.append((f.fileno(), h * w, f))
        self._chroma_files = []
        for h, w in shapes[1:] if colour and decoded is None else ():
            f = open(d / f"chroma{len(self._chroma_files) + 1}.u8", "w+b")  # noqa: SIM115 - closed in close()
            f.truncate(self.slots * h * w * 2)
            self._chroma_files.append((f.fileno(), h * w * 2, f))
        self._state = np.memmap(d / "state.i64", np.int64, "w+", shape=(_STATE_LEN,))
        self._state[_DECODED] = first if decoded is None else n_frames
        self._marks = np.memmap(d / "marks.i64", np.int64, "w+", shape=(max(len(marks), 1),))
        self._marks[:] = marks or [n_frames]
        self._motion = np.memmap(d / "motion.f64", np.float64, "w+", shape=(n_frames if decoded is None else 1, 2, 3))
        self._motion[:] = np.array([[1.0, 0, 0], [0, 1.0, 0]])
        self.waited_seconds = 0.0  # decoder time spent waiting for the slowest reader
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.decode_seconds = 0.0
        self.broken_at: int | None = None  # the frame where the file stopped decoding, if it did

    def reader(self) -> FrameReader:
        return FrameReader(self.spec)

    def start(self, progress=None) -> None:
        if self.decoded is not None:  # already decoded: say so at once
            if progress is not None:
                progress(self.n_frames - self.first)
            return
        self._thread = threading.Thread(target=self._decode, args=(progress,), daemon=True, name="forge-decode")
        self._thread.start()

    def _decode(self, progress) -> None:
        t0 = time.perf_counter()
        cap, first = self._open()
        try:
            for i in range(self.first, self.n_frames):
                if i - self.first >= self.slots:
                    self._wait_for_slot(i)
                if self._stop.is_set():
                    raise RuntimeError(f"{self.path}: propagation stopped at frame {i}")
                ok, frame = (True, first) if i == self.first and first is not None else cap.read()
                if not ok:
                    self.broken_at = i
                    raise RuntimeError(f"{self.path}: decoding stopped at frame {i} of {self.n_frames}")
                if self.tap is not None:
                    self.tap(i, frame)
                chroma = ()
                if frame.ndim == 3 and self.colour:
                    frame = shrink(frame, self.w, self.h)
                    chroma = chroma_levels(frame, self.spec.shapes)
                if frame.ndim == 3:
                    frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                levels = pyramid(shrink(frame, self.w, self.h))
                for (fd, size, _), img in zip(self._files + self._chroma_files, levels + chroma):
                    os.pwrite(fd, np.ascontiguousarray(img), (i % self.slots) * size)
                if i > self.first:
                    self._motion[i] = camera_motion(coarse, levels[-1], 1.0 / (1 << (len(levels) - 1)))
                coarse = levels[-1]
                self._state[_DECODED] = i + 1
                if progress is not None:
                    progress(i + 1 - self.first)
        except BaseException as exc:  # handed to the readers
            (Path(self.spec.dir) / "error.txt").write_text(str(exc))
            self._state[_FAILED] = 1
        finally:
            cap.release()
            self.decode_seconds = time.perf_counter() - t0

    def _wait_for_slot(self, i: int) -> None:
        """Wait until no reader needs frame ``i - slots`` (whose slot frame ``i`` takes)."""
        if self._marks.min() > i - self.slots:
            return
        t0 = time.perf_counter()
        while self._marks.min() <= i - self.slots and not self._stop.is_set():
            time.sleep(_POLL_S)
        self.waited_seconds += time.perf_counter() - t0

    def _open(self) -> tuple[cv2.VideoCapture, np.ndarray | None]:
        """The capture, at frame ``first``, and, when it can hand out the decoder's luma plane
        directly, that frame. Luma skips two colour conversions (YUV -> BGR -> grey): about
        20% of the decode time at 720p, 30% at 1080p. Anything unusual (not 8-bit, or not the
        upright size the probe reported) falls back to BGR frames, and so does a colour store."""
        if self.colour:
            cap = open_capture(self.path)
            seek_to(cap, self.path, self.first)
            return cap, None
        cap = open_capture(self.path)
        cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
        ok, frame = cap.read()
        w, h = self.full_wh
        if ok and frame.ndim == 2 and frame.dtype == np.uint8 and frame.shape == (h, w):
            if self.first == 0:
                return cap, frame
            seek_to(cap, self.path, self.first)
            ok, frame = cap.read()
            if ok and frame.ndim == 2 and frame.shape == (h, w):
                return cap, frame
        cap.release()
        cap = open_capture(self.path)
        seek_to(cap, self.path, self.first)
        return cap, None

    def keep_frames(self, folder: Path) -> bool:
        """Move the decoded frames, chroma and camera motion into the new folder ``folder``
        (``FrameStore(..., decoded=(folder, n_frames))`` reads them again), when this store
        holds the whole video, decoded without a failure; False (nothing moved) otherwise. Call
        after the readers are done, before ``close``."""
        complete = (self.decoded is None and self.first == 0 and self.slots == self.n_frames
                    and int(self._state[_DECODED]) == self.n_frames and not self._state[_FAILED])
        if not complete:
            return False
        self._motion.flush()
        folder.mkdir(parents=True)
        d = Path(self.spec.dir)
        for name in [f"grey{lv}.u8" for lv in range(len(self.spec.shapes))] + [
                f"chroma{lv}.u8" for lv in range(1, len(self.spec.shapes)) if self.colour] + ["motion.f64"]:
            shutil.move(d / name, folder / name)  # a rename on one disk
        return True

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self._state[_FAILED]:
            raise RuntimeError(_error(self.spec))

    def cancel(self) -> None:
        """Stop the decoder and tell every reader (``FrameReader.cancelled``, ``get``)."""
        self._state[_CANCELLED] = 1
        (Path(self.spec.dir) / "error.txt").write_text(f"{self.path}: propagation cancelled")
        self._state[_FAILED] = 1
        self._stop.set()

    @property
    def cancelled(self) -> bool:
        return bool(self._state[_CANCELLED])

    def stop(self) -> None:
        """Stop the decoder and wait until it has."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def close(self) -> None:
        """Stop the decoder (readers still waiting for a frame then get RuntimeError instead
        of waiting for ever) and delete the files."""
        self.stop()
        if not self._state[_FAILED] and self._state[_DECODED] < self.n_frames:
            (Path(self.spec.dir) / "error.txt").write_text(f"{self.path}: the frame store was closed")
            self._state[_FAILED] = 1
        for _, _, f in self._files + self._chroma_files:
            f.close()
        del self._state, self._marks, self._motion
        self._tmp.cleanup()
