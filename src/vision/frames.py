"""Disk-backed store of small grey working-resolution frames, filled by one decode thread.

Tracking threads read frames while the decoder is still writing later ones: ``get(i)``
blocks until frame ``i`` is decoded. Frames live in an ``np.memmap`` in a temp dir, so RAM
use does not grow with the video length (the OS pages the file in and out).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np

from src.vision.video import open_capture


class FrameStore:
    """``(n_frames, h, w)`` uint8 grey frames at ``scale`` x full resolution."""

    def __init__(self, video_path: str | Path, n_frames: int, width: int, height: int, scale: float):
        self.path = str(video_path)
        self.n_frames = n_frames
        self.scale = scale
        self.w = max(16, round(width * scale))
        self.h = max(16, round(height * scale))
        self._tmp = tempfile.TemporaryDirectory(prefix="forge-frames-")
        self._mm = np.memmap(Path(self._tmp.name) / "grey.u8", np.uint8, "w+", shape=(n_frames, self.h, self.w))
        self._decoded = 0
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.decode_seconds = 0.0

    def start(self, progress=None) -> None:
        self._thread = threading.Thread(target=self._decode, args=(progress,), daemon=True, name="forge-decode")
        self._thread.start()

    def _decode(self, progress) -> None:
        import time

        t0 = time.perf_counter()
        cap = open_capture(self.path)
        try:
            for i in range(self.n_frames):
                ok, frame = cap.read()
                if not ok:
                    raise RuntimeError(f"{self.path}: decoding stopped at frame {i} of {self.n_frames}")
                grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                if grey.shape != (self.h, self.w):
                    grey = cv2.resize(grey, (self.w, self.h), interpolation=cv2.INTER_AREA)
                self._mm[i] = grey
                with self._cond:
                    self._decoded = i + 1
                    self._cond.notify_all()
                if progress is not None:
                    progress(i + 1)
        except BaseException as exc:  # handed to the readers
            with self._cond:
                self._error = exc
                self._cond.notify_all()
        finally:
            cap.release()
            self.decode_seconds = time.perf_counter() - t0

    def get(self, i: int) -> np.ndarray:
        """Grey frame ``i`` ``(h, w)`` uint8, waiting for the decoder if needed."""
        if self._decoded <= i:
            with self._cond:
                while self._decoded <= i and self._error is None:
                    self._cond.wait()
                if self._decoded <= i:
                    raise RuntimeError(str(self._error))
        return self._mm[i]

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise RuntimeError(str(self._error))

    def close(self) -> None:
        del self._mm
        self._tmp.cleanup()
