"""Progress of a step in another process, through a small JSON file the waiting coroutine
polls: a process pool has no other cheap channel back to the event loop."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class ProgressFile:
    """`{"done": d, "total": t}` written atomically, at most every `interval` seconds."""

    def __init__(self, path: Path, interval: float = 0.3):
        self.path, self.interval, self.last = Path(path), interval, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < self.interval and done < total:
            return
        self.last = now
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"done": int(done), "total": int(total)}))
        os.replace(tmp, self.path)

    @staticmethod
    def read(path: Path) -> dict[str, int] | None:
        try:
            return json.loads(Path(path).read_text())
        except (FileNotFoundError, ValueError):
            return None
