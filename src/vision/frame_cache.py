"""Decoded videos kept on this machine's disk between propagations of the same video.

The editor's preview propagates one draft's video again after every keyframe edit, and a fix
in place re-runs only a segment; decoding that segment was most of its time (300 frames of
720p H.264: ~2 s of 2.4). So the first preview of a video keeps its whole decoded frame store
(grey pyramids, chroma for the learned tracker, camera motion: what ``FrameStore`` fills) in a
cache entry, and the next propagation at the same working scale reads the frames from there
instead of decoding. Frames are the decoder's output either way, so tracks are identical.

An entry is a folder named by the video file (path, size, modification time), its frame count
and size, the working scale and colour; it appears whole or not at all (built under a
temporary name, then renamed). Entries beyond ``max_bytes`` go, least recently used first, but
not one looked up in the last IN_USE_S (its pass processes may still be opening it). Any process
on the machine may read an entry: readers map its files read-only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

MAX_BYTES = 2 << 30  # default size of the cache (a 1,000-frame 720p video in colour: ~0.45 GB)
IN_USE_S = 120  # an entry looked up this recently is not evicted (its readers may still be opening it)


class FrameCache:
    def __init__(self, root: str | Path | None = None, max_bytes: int = MAX_BYTES):
        self.root = Path(root) if root else Path(tempfile.gettempdir()) / "forge-frame-cache"
        self.max_bytes = max_bytes

    def entry(self, video_path: str | Path, n_frames: int, width: int, height: int, scale: float, colour: bool) -> Path:
        """The folder of this video's frames at this scale (it may not exist)."""
        st = os.stat(video_path)
        ident = json.dumps([os.path.realpath(video_path), st.st_size, st.st_mtime_ns, n_frames, width, height,
                            repr(float(scale)), bool(colour)])
        return self.root / hashlib.sha256(ident.encode()).hexdigest()[:24]

    def lookup(self, entry: Path) -> int | None:
        """The frame count of a complete entry (and it becomes the most recently used), or None."""
        meta = entry / "meta.json"
        try:
            frames = int(json.loads(meta.read_text())["frames"])
            os.utime(meta)
            return frames
        except (OSError, ValueError, KeyError):
            return None

    def fits(self, n_bytes: int) -> bool:
        return n_bytes <= self.max_bytes

    def put(self, entry: Path, store) -> bool:
        """Keep ``store``'s frames (a FrameStore holding the whole video) as ``entry``; True
        when kept. Then drops the least recently used entries beyond ``max_bytes``."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.clear_stale()
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            shutil.rmtree(staging)
            if not store.keep_frames(staging):
                return False
            (staging / "meta.json").write_text(json.dumps({"frames": store.n_frames, "video": store.path}))
            try:
                os.rename(staging, entry)
            except OSError:  # another process kept the same video first
                return False
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._evict(keep=entry)
        return True

    def _evict(self, keep: Path) -> None:
        entries = []
        for d in self.root.iterdir():
            meta = d / "meta.json"
            if d == keep or not meta.is_file():
                continue
            size = sum(f.stat().st_size for f in d.iterdir())
            entries.append((meta.stat().st_mtime, size, d))
        total = sum(f.stat().st_size for f in keep.iterdir()) + sum(size for _, size, _ in entries)
        for used, size, d in sorted(entries):  # oldest use first
            if total <= self.max_bytes:
                break
            if time.time() - used < IN_USE_S:  # a propagation may be opening it right now
                continue
            shutil.rmtree(d, ignore_errors=True)
            total -= size

    def clear_stale(self, older_than_s: float = 3600) -> None:
        """Remove staging folders left by a process that died while keeping an entry."""
        if not self.root.is_dir():
            return
        for d in self.root.glob(".staging-*"):
            if time.time() - d.stat().st_mtime > older_than_s:
                shutil.rmtree(d, ignore_errors=True)
