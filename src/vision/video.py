"""Video decoding with OpenCV (FFmpeg backend, threaded decode).

Conventions:
- The frame index (0-based, decode order) is the unit everywhere. Variable frame rate
  video is treated as a plain sequence of frames; ``fps`` is the container's average and
  only serves display and timing.
- Rotated phone videos: OpenCV applies the rotation metadata (CAP_PROP_ORIENTATION_AUTO),
  so frames, ``width`` and ``height`` are the upright picture.
- Frames are BGR ``(h, w, 3)`` uint8.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg quiet: errors are ours to report

import cv2
import numpy as np

from src.vision.types import VideoInfo

MAX_SIDE = 8192
MIN_SIDE = 16
MAX_FPS = 1000.0

# OpenCV's own log lines would break the one-line error contract of the CLI.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


class VideoProbeError(ValueError):
    """The file is not a video this platform can use; ``str(err)`` is a human message."""


def open_capture(path: str | Path) -> cv2.VideoCapture:
    """A VideoCapture on the FFmpeg backend with threaded decoding and auto-rotation."""
    params = [cv2.CAP_PROP_N_THREADS, max(1, os.cpu_count() or 1)]
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    if cap.isOpened():
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


IMAGE_MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG": "PNG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def _image_kind(path: Path) -> str | None:
    head = path.open("rb").read(16)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in IMAGE_MAGIC.items() if head.startswith(magic)), None)


def _container(path: Path) -> str:
    """Guess the container from the file's magic bytes (not from its name)."""
    head = path.open("rb").read(64)
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "mov" if brand == b"qt  " else "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in head else "mkv"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"FLV":
        return "flv"
    if head[:1] == b"\x47":
        return "mpegts"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg"
    return "unknown"


def _fourcc(cap: cv2.VideoCapture) -> str:
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    s = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ")
    return s.lower() if s.isprintable() and s else "unknown"


def _count_frames(path: Path) -> int:
    cap = open_capture(path)
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def _count_by_timestamps(path: Path) -> int | None:
    """Frames counted from the container's packets (``frame_timestamps``, no decoding), when
    the last of them really decodes; None otherwise (then every frame is decoded and counted).
    WebM/MKV and other containers without a frame count would otherwise be decoded whole."""
    index = frame_timestamps(path)
    if index is None:
        return None
    try:
        return len(index) if _read_at_timestamp(path, int(index[-1])) is not None else None
    except Exception:  # noqa: BLE001 - any PyAV trouble: count by decoding
        return None


def _expected_frames(path: Path, announced: int, counted: int) -> int:
    """How many frames the file should have: the count its container declares. Containers
    without one (Matroska, WebM) get from OpenCV only duration x average fps, wrong for variable
    frame rate; there the declared duration against the span of the packets' timestamps tells
    whether frames are missing."""
    facts = _stream_index(path)
    if facts is None:
        return announced  # no PyAV, or it cannot read the file: OpenCV's figure
    if facts.declared > 0:
        return facts.declared
    pts = facts.pts
    if facts.duration is None or pts is None or len(pts) < 2:
        return counted  # nothing to compare with
    step = (pts[-1] - pts[0]) / (len(pts) - 1)
    covered = float((pts[-1] - pts[0] + step) * facts.time_base)
    return counted if covered >= 0.9 * facts.duration else round(counted * facts.duration / covered)


def probe(path: str | Path) -> VideoInfo:
    """Decode enough of ``path`` to be sure it is a usable video.

    The container's frame count is trusted only if frame ``count - 1`` really decodes and
    nothing decodes after it; otherwise frames are counted from the packets' timestamps when
    the last one decodes, else by decoding them all. A file that decodes to less than 90% of
    the frames its container declares (or, without a count, of its declared duration) is
    reported as truncated.
    Raises VideoProbeError with a human message.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoProbeError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoProbeError(f"{path}: empty file, not a video")
    image = _image_kind(path)
    if image:
        raise VideoProbeError(f"{path}: a {image} image, not a video")
    cap = open_capture(path)
    try:
        if not cap.isOpened():
            raise VideoProbeError(f"{path}: not a video or unreadable (no decodable video stream)")
        ok, frame = cap.read()
        if not ok or frame is None:
            raise VideoProbeError(f"{path}: no decodable video frame (no video stream, or corrupt)")
        height, width = frame.shape[:2]
        if max(width, height) > MAX_SIDE or min(width, height) < MIN_SIDE:
            raise VideoProbeError(
                f"{path}: unsupported frame size {width}x{height} (each side must be {MIN_SIDE}-{MAX_SIDE} px)"
            )
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not (0 < fps <= MAX_FPS) or not np.isfinite(fps):
            raise VideoProbeError(f"{path}: unsupported frame rate {fps:g} fps (must be in (0, {MAX_FPS:g}])")
        codec = _fourcc(cap)
        announced = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        trusted = False
        if announced > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, announced - 1)
            ok_last = cap.grab()
            trusted = ok_last and not cap.grab()
    finally:
        cap.release()
    frames = announced if trusted else _count_by_timestamps(path) or _count_frames(path)
    if frames == 0:
        raise VideoProbeError(f"{path}: the video has no frames")
    expected = announced if trusted else _expected_frames(path, announced, frames)
    if expected > 0 and frames < 0.9 * expected:
        raise VideoProbeError(
            f"{path}: truncated or corrupt video (announces {expected} frames, only {frames} decode)"
        )
    return VideoInfo(
        frames=frames,
        fps=fps,
        width=int(width),
        height=int(height),
        codec=codec,
        container=_container(path),
        duration_s=frames / fps,
    )


def resize(frame: np.ndarray, width: int | None, scale: float | None) -> np.ndarray:
    """``frame`` at ``width`` px wide (or ``scale`` of its size), aspect kept, INTER_AREA."""
    if width is None and (scale is None or scale == 1.0):
        return frame
    h, w = frame.shape[:2]
    if width is None:
        width = max(1, round(w * scale))
    height = max(1, round(h * width / w))
    if width == w:
        return frame
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class _StreamIndex:
    pts: np.ndarray | None  # presentation timestamp of every frame, in frame-index order
    time_base: Fraction
    declared: int  # the frame count the container declares, 0 when it has none
    duration: float | None  # the container's declared duration, seconds


_INDEX_CACHE: dict[tuple[str, int, int], _StreamIndex | None] = {}  # by (path, mtime_ns, size)
_INDEX_CACHE_SIZE = 64
_index_lock = threading.Lock()


def _stream_index(path: str | Path) -> _StreamIndex | None:
    """What the container says of the video stream, its packets read without decoding (a
    second or so for an hour of video); cached per file. None when PyAV is missing or cannot
    read the file."""
    path = Path(path)
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _index_lock:
        if key in _INDEX_CACHE:
            return _INDEX_CACHE[key]
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            pts = [p.pts for p in container.demux(stream) if p.size and not p.is_discard]
            index = _StreamIndex(
                pts=None if not pts or None in pts else np.sort(np.array(pts, np.int64)),
                time_base=stream.time_base,
                declared=int(stream.frames or 0),
                duration=container.duration / 1e6 if container.duration else None,  # AV_TIME_BASE units
            )
    except (av.error.FFmpegError, IndexError):
        index = None
    with _index_lock:
        if len(_INDEX_CACHE) >= _INDEX_CACHE_SIZE:
            _INDEX_CACHE.pop(next(iter(_INDEX_CACHE)))
        _INDEX_CACHE[key] = index
    return index


def frame_timestamps(path: str | Path) -> np.ndarray | None:
    """Presentation timestamp (in the stream's time base) of every frame, in frame-index order;
    None when the container gives none (or PyAV cannot read it)."""
    index = _stream_index(path)
    return None if index is None else index.pts


# PyAV's rotation (the display matrix, counter-clockwise degrees) -> the turn that makes the
# picture upright, as OpenCV's CAP_PROP_ORIENTATION_AUTO does
_ROTATE = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 270: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180}


def _read_at_timestamp(path: Path, pts: int) -> np.ndarray | None:
    """The frame whose timestamp is ``pts``, upright as OpenCV shows it; None if none has it."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        container.seek(pts, stream=stream, backward=True)  # the keyframe at or before it
        for frame in container.decode(stream):
            if frame.pts is None or frame.pts < pts:
                continue
            if frame.pts != pts:
                return None
            image = frame.to_ndarray(format="bgr24")
            rotation = round(frame.rotation) % 360
            return cv2.rotate(image, _ROTATE[rotation]) if rotation in _ROTATE else image
    return None


def read_frame(path: str | Path, n: int, width: int | None = None) -> np.ndarray:
    """Frame ``n`` (0-based, the n-th frame a sequential decode gives) as BGR, optionally
    resized to ``width`` px (aspect kept); IndexError past the end.

    Seeks by the frame's own timestamp (``frame_timestamps``): OpenCV's CAP_PROP_POS_FRAMES
    turns ``n`` into a time through the average fps, which lands frames away from frame ``n``
    on variable-frame-rate video. Without timestamps it falls back to that seek."""
    if n < 0:
        raise IndexError(f"frame {n} < 0")
    path = Path(path)
    index = frame_timestamps(path)
    if index is not None:
        if n >= len(index):
            raise IndexError(f"{path}: no frame {n}")
        try:
            frame = _read_at_timestamp(path, int(index[n]))
        except Exception:  # noqa: BLE001 - any PyAV trouble: OpenCV's seek below still answers
            frame = None
        if frame is not None:
            return resize(frame, width, None)
    cap = open_capture(path)
    try:
        if n > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, n)
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok or frame is None:
        raise IndexError(f"{path}: no frame {n}")
    return resize(frame, width, None)


def seek_to(cap: cv2.VideoCapture, path: str | Path, n: int) -> None:
    """Put ``cap`` where its next ``read()`` gives frame ``n`` (0-based decode order).

    OpenCV's CAP_PROP_POS_FRAMES seek turns ``n`` into a time through the average fps: exact
    when the container's timestamps are evenly spaced (constant frame rate), frames away
    otherwise. So it seeks only then; on variable-frame-rate video (or without timestamps)
    it decodes forward from where ``cap`` is, which is slower but never lands elsewhere."""
    at = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
    if n == at:
        return
    pts = frame_timestamps(path)
    if pts is not None and n < len(pts) and len(pts) > 2:
        steps = np.diff(pts)
        if steps.min() > 0 and steps.max() - steps.min() <= max(1, 0.02 * float(np.median(steps))):
            cap.set(cv2.CAP_PROP_POS_FRAMES, n)
            return
    if n < at:
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        at = 0
    for _ in range(n - at):
        if not cap.grab():
            return


def iter_frames(
    path: str | Path, *, scale: float = 1.0, grey: bool = False, start: int = 0
) -> Iterator[np.ndarray]:
    """Decode ``path`` sequentially from frame ``start``, yielding BGR frames (or grey
    ``(h, w)`` uint8 when ``grey``) resized by ``scale``. One frame in memory at a time."""
    cap = open_capture(path)
    try:
        if start > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            frame = resize(frame, None, scale)
            if grey:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            yield frame
    finally:
        cap.release()
