"""Synthetic test videos with known boxes: textured patches moving over a textured,
slowly panning background. Used by tests and benches: MPEG-4 part 2 ('mp4v', written by
cv2.VideoWriter) or H.264 (written by PyAV, which bundles libx264; OpenCV here cannot write
H.264), the codec real uploads mostly use and the one decode speed should be measured on.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    small = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    tex = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return cv2.GaussianBlur(tex, (3, 3), 0)


def make_video(
    path: str | Path,
    *,
    width: int = 1280,
    height: int = 720,
    n_frames: int = 300,
    n_objects: int = 5,
    fps: float = 30.0,
    seed: int = 0,
    object_size: tuple[int, int] = (60, 140),
    pan: float = 0.5,
    exit_object: bool = False,
    codec: str = "mp4v",
    max_speed: float = 4.0,
) -> dict[int, np.ndarray]:
    """Write the video and return ground truth ``{track_id: (n_frames, 4) float32 xyxy}``
    (NaN rows when the object is entirely outside the frame). Objects bounce inside the frame,
    the background pans ``pan`` px/frame, objects move up to ``max_speed`` px/frame on each axis;
    with ``exit_object`` object 1 leaves on the right."""
    rng = np.random.default_rng(seed)
    bg = _texture(rng, height + 64, width + int(abs(pan) * n_frames) + 64)
    objs = []
    for k in range(n_objects):
        ow, oh = (int(v) for v in rng.integers(object_size[0], object_size[1], 2))
        x, y = rng.uniform(0, width - ow), rng.uniform(0, height - oh)
        v = rng.uniform(-max_speed, max_speed, 2)
        if exit_object and k == 0:
            x, y, v = width * 0.5, height * 0.4, np.array([width / n_frames * 1.6, 0.0])
        objs.append([_texture(rng, oh, ow), x, y, v, ow, oh])
    gt = {k + 1: np.full((n_frames, 4), np.nan, np.float32) for k in range(n_objects)}
    writer = _H264Writer(path, fps, width, height) if codec == "h264" else _cv_writer(path, fps, width, height)
    for f in range(n_frames):
        ox = int(abs(pan) * f)
        frame = bg[32 : 32 + height, 32 + ox : 32 + ox + width].copy()
        for k, o in enumerate(objs):
            tex, x, y, v, ow, oh = o
            if not (exit_object and k == 0):
                if x + v[0] < 0 or x + v[0] + ow > width:
                    v[0] = -v[0]
                if y + v[1] < 0 or y + v[1] + oh > height:
                    v[1] = -v[1]
            x, y = x + v[0], y + v[1]
            o[1], o[2] = x, y
            xi, yi = int(round(x)), int(round(y))
            x1, y1, x2, y2 = max(xi, 0), max(yi, 0), min(xi + ow, width), min(yi + oh, height)
            if x2 > x1 and y2 > y1:
                frame[y1:y2, x1:x2] = tex[y1 - yi : y2 - yi, x1 - xi : x2 - xi]
                gt[k + 1][f] = (x1, y1, x2, y2)
        writer.write(frame)
    writer.release()
    return gt


def _cv_writer(path, fps, width, height):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError("cv2.VideoWriter cannot write mp4v here")
    return writer


class _H264Writer:
    """cv2.VideoWriter's ``write`` / ``release`` over PyAV's libx264 (yuv420p, CRF 23)."""

    def __init__(self, path, fps, width, height):
        from fractions import Fraction

        import av  # a test/bench dependency (requirements/dev.txt), not a runtime one

        self._out = av.open(str(path), "w")
        self._stream = self._out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "yuv420p"
        self._stream.options = {"crf": "23", "preset": "veryfast"}
        self._av = av

    def write(self, frame: np.ndarray) -> None:
        for packet in self._stream.encode(self._av.VideoFrame.from_ndarray(frame, format="bgr24")):
            self._out.mux(packet)

    def release(self) -> None:
        for packet in self._stream.encode():
            self._out.mux(packet)
        self._out.close()
