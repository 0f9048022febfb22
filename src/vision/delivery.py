"""What a dataset takes from the frames the engine decodes, besides the tracks: the frames to
deliver (sampling) and, when wanted, their images for the exports.

The engine hands every frame to a ``FrameTap`` (src.vision.frames; ``propagate(tap=)``: from
its own decode when its store reads BGR, else from a second decode alongside the passes);
``Delivery`` is that tap for a dataset job, so sampling and the export images need no decode
of their own, and the build none at all.
Sampling decides each frame as it arrives (src.vision.sampling.Sampler), so the image of a
delivered frame is written right away, by a writer thread (JPEG encoding would otherwise
slow the decoder every pass waits for).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from src.vision.formats.build import JPEG_QUALITY, image_name
from src.vision.sampling import Sampler, small_grey_of, small_scale

MAX_PENDING = 8  # images queued for the writer before the decoder waits (bounded memory)


class Delivery:
    """A frame tap: ``delivery(i, bgr)`` for frames 0, 1, ... n-1 in order; then ``close()``
    gives the delivered frames. ``images``: a folder to write each delivered frame into (as
    ``formats.build.write_images`` would), or None."""

    def __init__(self, sampling: dict[str, Any], width: int, images: Path | None = None):
        self.sampler = Sampler(sampling.get("mode", "all"), int(sampling.get("every_n", 1) or 1),
                               float(sampling.get("ssim_threshold", 0.95)))
        self.scale = small_scale(width)
        self.images = images
        self.fed = 0  # frames seen: the store's decode or the fallback feeds them all
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="forge-images") if images is not None else None
        self._pending: list[Future] = []
        self._room = threading.Semaphore(MAX_PENDING)
        if images is not None:
            images.mkdir(parents=True, exist_ok=True)

    @property
    def needs_frames(self) -> bool:
        """False when there is nothing to look at: every frame delivered, no images wanted."""
        return self.sampler.needs_pixels or self.images is not None

    def __call__(self, i: int, bgr: np.ndarray) -> None:
        if i != self.fed:
            raise ValueError(f"frame {i} fed to the delivery after {self.fed - 1}: frames must come in order")
        self.fed += 1
        g = small_grey_of(bgr, self.scale) if self.sampler.needs_pixels else None
        if self.sampler.feed(i, g) and self._writer is not None:
            self._room.acquire()
            self._pending.append(self._writer.submit(self._write, i, bgr))

    def _write(self, i: int, bgr: np.ndarray) -> None:
        try:
            if not cv2.imwrite(str(self.images / image_name(i)), bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
                raise OSError(f"could not write the image of frame {i} into {self.images}")
        finally:
            self._room.release()

    def close(self) -> list[int]:
        """Wait for the images; the delivered frames, sorted. Raises what a write raised."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            for future in self._pending:
                future.result()
            self._pending.clear()
        return list(self.sampler.kept)
