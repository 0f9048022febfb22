"""`forge up` for real (its own embedded PostgreSQL and Redis, web server, worker): the worker
killed with SIGKILL is named and restarted while the web server keeps answering, its pool
processes do not outlive it, and SIGTERM stops everything, PostgreSQL included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

from src.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _child(up: psutil.Process, word: str) -> psutil.Process | None:
    for child in up.children():
        try:
            if word in child.cmdline():
                return child
        except psutil.NoSuchProcess:
            pass
    return None


def test_forge_up_restarts_a_killed_worker_and_stops_on_sigterm():
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="forge-up-") as tmp:
        env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
        env.update(VAR_DIR=f"{tmp}/var", CERTS_DIR=f"{tmp}/certs", PORT=str(port), HOST="127.0.0.1",
                   BASE_URL=f"http://127.0.0.1:{port}", WORKER_PROCESSES="1",
                   FORGE_ADMIN_EMAIL="admin@example.com", FORGE_ADMIN_PASSWORD="sunlit-meadow-42")
        up = subprocess.Popen([sys.executable, "-m", "src.cli", "up"], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(up.stdout.readline, "")), daemon=True)
        reader.start()
        output = lambda: "".join(lines)  # noqa: E731
        try:
            health = f"http://127.0.0.1:{port}/health"

            def healthy():
                try:
                    return httpx.get(health, timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            _wait(healthy, 180, "forge up to serve /health")
            parent = psutil.Process(up.pid)
            worker = _wait(lambda: _child(parent, "worker"), 60, "the worker")
            web = _child(parent, "web")
            pool = _wait(lambda: [p.pid for p in worker.children() if "spawn_main" in " ".join(p.cmdline())], 120,
                         "the worker's pool process")

            worker.send_signal(signal.SIGKILL)
            _wait(lambda: f"worker (pid {worker.pid}) killed by signal SIGKILL" in output(), 30, "the message\n" + output())
            _wait(lambda: "worker restarted" in output(), 30, "the restart\n" + output())
            assert up.poll() is None and web.is_running()  # the rest kept running
            assert healthy()
            _wait(lambda: all(_gone(pid) for pid in pool), 15, "the dead worker's pool processes to end")
            new_worker = _wait(lambda: _child(parent, "worker"), 30, "the new worker")
            assert new_worker.pid != worker.pid
            postgres = [p for p in psutil.process_iter(["cmdline"]) if f"{tmp}/var/postgres" in " ".join(p.info["cmdline"] or [])]
            assert postgres, "PostgreSQL is running"

            up.send_signal(signal.SIGTERM)
            assert up.wait(60) == 0
            assert "stopped." in output()
            family = [new_worker.pid, web.pid, *(p.pid for p in postgres)]
            _wait(lambda: all(_gone(pid) for pid in family), 20, "every process to end")
        finally:
            if up.poll() is None:
                up.kill()
                up.wait()
