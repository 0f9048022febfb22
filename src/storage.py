"""File storage behind one small interface, addressed by keys made from database ids.

Keys look like `videos/<video_id>/source`; a user-typed name never becomes a path.
`LocalStorage` keeps files under one root (STORAGE_ROOT, default var/storage). An
S3-compatible store can implement the same methods (`local_path` then downloads to a
cache), so callers never change.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from src.config import get_settings

_KEY = re.compile(r"^[a-z0-9_-]+(/[a-zA-Z0-9_.-]+)*$")


class Storage(Protocol):
    def put_file(self, key: str, source: Path) -> int: ...
    def open(self, key: str) -> BinaryIO: ...
    def local_path(self, key: str) -> Path: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def delete_prefix(self, prefix: str) -> None: ...
    def temp_file(self, suffix: str = "") -> Path: ...


class LocalStorage:
    def __init__(self, root: Path):
        self.root = root.resolve()
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key) or ".." in key:
            raise ValueError(f"invalid storage key {key!r}")
        return self.root / key

    def put_file(self, key: str, source: Path) -> int:
        """Move `source` (a temp file on the same disk) to `key`; returns its size."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target) if source.stat().st_dev == self.root.stat().st_dev else shutil.move(source, target)
        return target.stat().st_size

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix.rstrip("/"))
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()

    def temp_file(self, suffix: str = "") -> Path:
        """A new empty file under <root>/tmp (same disk as the store, so moves are renames)."""
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"{uuid.uuid4().hex}-", suffix=suffix, dir=self.root / "tmp")
        os.close(fd)
        return Path(name)

    def iter_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        with self.open(key) as f:
            while chunk := f.read(chunk_size):
                yield chunk


_storage: LocalStorage | None = None


def get_storage() -> LocalStorage:
    global _storage
    root = get_settings().storage_path
    if _storage is None or _storage.root != root.resolve():
        _storage = LocalStorage(root)
    return _storage
