"""`forge up` keeps its processes running: a child that dies is named, with its exit code or
signal, and started again after a backoff; only Ctrl-C (SIGINT) or SIGTERM stops them all.

A supervised process is anything with `start()`, `poll()` (None while it runs, else its exit
status, negative for a signal, as `subprocess.Popen.poll`), `stop()` and `pid`: `Command` (a
command line, e.g. the web server or the worker), `EmbeddedRedis` and `EmbeddedPostgres`
(src/embedded.py; Redis comes back on the same port, PostgreSQL on the same data directory).

Backoff: the first restart waits `backoff_initial` seconds, each further one twice as long,
up to `backoff_max`; a process that has run `stable_s` seconds before dying starts again
from `backoff_initial`.

The worker's CPU pool processes, and the engine's pass processes under them, end with the
process that started them, however it ends (src/vision/lifetime.py `die_with_parent`), so no
pool process is left running after a crashed, killed or stopped worker. See docs/operations.md.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# ---------------------------------------------------------------- supervised processes

class Process(Protocol):
    pid: int | None

    def start(self) -> Any: ...
    def poll(self) -> int | None: ...
    def stop(self) -> None: ...


@dataclass
class Command:
    """A command line run as a child; stop() sends SIGINT (as Ctrl-C would), then SIGKILL."""

    argv: Sequence[str]
    env: dict[str, str] | None = None
    stop_timeout_s: float = 15.0
    _popen: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def start(self) -> None:
        self._popen = subprocess.Popen(list(self.argv), env=self.env)

    def poll(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def interrupt(self) -> None:
        if self._popen is not None and self._popen.poll() is None:
            self._popen.send_signal(signal.SIGINT)

    def stop(self) -> None:
        if self._popen is None:
            return
        self.interrupt()
        try:
            self._popen.wait(timeout=self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()


def describe_exit(status: int) -> str:
    """`exited with code 3` / `killed by signal SIGKILL`."""
    if status < 0:
        try:
            return f"killed by signal {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exited with code {status}"


@dataclass
class _Child:
    name: str
    process: Process
    restart: bool
    backoff: float
    started_at: float = 0.0
    restart_at: float | None = None  # set while dead and waiting for its restart
    restarts: int = 0
    pid: int | None = None


class Supervisor:
    """Starts the processes in order, restarts the ones that die, stops all in reverse order."""

    def __init__(
        self, processes: Sequence[tuple[str, Process]] = (), *, backoff_initial: float = 1.0,
        backoff_max: float = 30.0, stable_s: float = 60.0, interval_s: float = 0.5,
        say: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic,
    ):
        self.backoff_initial, self.backoff_max, self.stable_s = backoff_initial, backoff_max, stable_s
        self.interval_s = interval_s
        self.say = say or (lambda text: print(f"  {text}", file=sys.stderr, flush=True))
        self.clock = clock
        self.children: list[_Child] = []
        self._stopping = threading.Event()
        for name, process in processes:
            self.add(name, process)

    def add(self, name: str, process: Process, *, restart: bool = True, started: bool = False) -> None:
        """Supervise `process`; `started=True` when it is already running (a service started
        before the supervisor, such as the embedded PostgreSQL that migrations need)."""
        child = _Child(name, process, restart, self.backoff_initial)
        if started:
            child.started_at, child.pid = self.clock(), process.pid
        self.children.append(child)

    def start(self) -> None:
        for child in self.children:
            if child.started_at == 0.0:
                self._start(child)

    def _start(self, child: _Child) -> None:
        child.process.start()
        child.started_at, child.restart_at, child.pid = self.clock(), None, child.process.pid

    def check(self) -> None:
        """One pass: note the processes that died, start the ones whose backoff is over."""
        now = self.clock()
        for child in self.children:
            if self._stopping.is_set():
                return
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._restart(child)
                continue
            status = child.process.poll()
            if status is None:
                continue
            how = getattr(child.process, "describe_exit", describe_exit)(status)
            if not child.restart:
                self.say(f"{child.name} (pid {child.pid}) {how}; not restarted")
                child.restart_at = float("inf")
                continue
            if now - child.started_at >= self.stable_s:
                child.backoff = self.backoff_initial  # it had been running fine: start over
            delay = child.backoff
            child.backoff = min(child.backoff * 2, self.backoff_max)
            child.restart_at = now + delay
            self.say(f"{child.name} (pid {child.pid}) {how}; restarting it in {delay:g} s")

    def _restart(self, child: _Child) -> None:
        try:
            self._start(child)
        except Exception as error:  # noqa: BLE001 - report and try again later
            delay = child.backoff
            child.backoff = min(child.backoff * 2, self.backoff_max)
            child.restart_at = self.clock() + delay
            self.say(f"{child.name} could not be started again ({error}); next try in {delay:g} s")
            return
        child.restarts += 1
        self.say(f"{child.name} restarted (pid {child.pid}, restart {child.restarts})")

    def run(self, until: threading.Event | None = None) -> None:
        """Start everything not yet started, then watch until `until` is set (or, by default,
        until KeyboardInterrupt: Ctrl-C or the SIGTERM handler of `forge up`)."""
        self.start()
        until = until or threading.Event()
        while not until.is_set():
            self.check()
            until.wait(self.interval_s)

    def stop(self) -> None:
        """Stop everything, the last started first; commands get SIGINT at once (so they shut
        down together), then each is waited for."""
        self._stopping.set()
        for child in reversed(self.children):
            if isinstance(child.process, Command):
                child.process.interrupt()
        for child in reversed(self.children):
            try:
                child.process.stop()
            except Exception as error:  # noqa: BLE001 - stop the others anyway
                self.say(f"{child.name} did not stop cleanly: {error}")
