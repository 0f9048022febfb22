"""Processes that end with the process that started them (a worker's CPU pool, the engine's
pass processes): `die_with_parent` as a pool's initializer, so that a worker killed in the
middle of a job leaves nothing running."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int | None = None, interval_s: float = 1.0) -> None:
    """End this process when its parent ends (call it first thing in the child, e.g. as a
    ProcessPoolExecutor initializer). The kernel sends SIGKILL when the parent exits; a daemon
    thread checks the parent id every `interval_s` as well (other systems, and the kernel's
    signal fires when the parent's *thread* that started us exits, not only the process)."""
    parent = parent_pid or os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
