"""`forge up`'s supervision with real processes: a child killed by SIGKILL is named and started
again, a crashing one backs off, Redis comes back on its port, only stop() ends them all; and
the worker's CPU pool processes end when the worker is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from src.embedded import EmbeddedRedis
from src.supervisor import Command, Supervisor, describe_exit

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def _wait(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


class Running:
    """A supervisor watching in a thread, as `forge up` does in its main thread."""

    def __init__(self, supervisor: Supervisor):
        self.supervisor, self.done = supervisor, threading.Event()
        self.thread = threading.Thread(target=supervisor.run, args=(self.done,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.supervisor

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(10)
        self.supervisor.stop()


def test_killed_child_is_named_and_restarted_and_the_others_keep_running():
    messages: list[str] = []
    worker, web = Command(SLEEPER), Command(SLEEPER)
    supervisor = Supervisor([("worker", worker), ("web server", web)], backoff_initial=0.2, interval_s=0.05,
                            say=messages.append)
    with Running(supervisor):
        first, web_pid = _wait(lambda: worker.pid, what="worker start"), _wait(lambda: web.pid, what="web start")
        os.kill(first, signal.SIGKILL)
        second = _wait(lambda: worker.pid if worker.pid != first and worker.poll() is None else None,
                       what="worker restart")
        assert second != first and psutil.Process(second).is_running()
        assert web.pid == web_pid and web.poll() is None  # the web server was left alone
        died = [m for m in messages if "died" in m or "killed" in m]
        assert died == [f"worker (pid {first}) killed by signal SIGKILL; restarting it in 0.2 s"], messages
        assert any(m.startswith(f"worker restarted (pid {second}") for m in messages), messages
        assert not any("web server" in m for m in messages), messages
    # stop() ends everything, and only then
    assert worker.poll() is not None and web.poll() is not None
    assert _gone(second) and _gone(web_pid)


def test_crashing_child_backs_off_and_says_its_exit_code():
    messages: list[str] = []
    crasher = Command([sys.executable, "-c", "import sys; sys.exit(3)"])
    supervisor = Supervisor([("worker", crasher)], backoff_initial=0.1, backoff_max=0.4, interval_s=0.02,
                            say=messages.append)
    with Running(supervisor):
        _wait(lambda: sum("exited with code 3" in m for m in messages) >= 4, what="four crashes")
    delays = [float(m.rsplit("in ", 1)[1].split()[0]) for m in messages if "exited with code 3" in m][:4]
    assert delays == [0.1, 0.2, 0.4, 0.4], messages  # doubling, capped


def test_redis_killed_comes_back_on_its_port():
    import redis

    messages: list[str] = []
    with tempfile.TemporaryDirectory(prefix="forge-supervised-redis-") as tmp:
        server = EmbeddedRedis(Path(tmp))
        url = server.start()
        supervisor = Supervisor(backoff_initial=0.1, interval_s=0.05, say=messages.append)
        supervisor.add("Redis", server, started=True)
        client = redis.Redis.from_url(url)
        try:
            with Running(supervisor):
                client.set("kept", "yes")  # append-only file: survives the restart
                first = server.pid
                os.kill(first, signal.SIGKILL)
                _wait(lambda: server.pid != first and server.poll() is None, what="Redis restart")
                assert _wait(lambda: _ping(client), what="Redis answering again")
                assert client.get("kept") == b"yes"
                assert f"Redis (pid {first}) killed by signal SIGKILL; restarting it in 0.1 s" in messages
        finally:
            client.close()
            server.stop()


def _ping(client) -> bool:
    import redis

    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def test_describe_exit():
    assert describe_exit(0) == "exited with code 0"
    assert describe_exit(-signal.SIGTERM) == "killed by signal SIGTERM"


WORKER_WITH_POOL = """
import asyncio, time
from src.worker import startup
ctx = {}
asyncio.run(startup(ctx))
ctx["pool"].submit(time.sleep, 100)  # one of them busy, as in the middle of a job
print(" ".join(str(pid) for pid in ctx["pool"]._processes), flush=True)
time.sleep(120)
"""


def _children_end_with_their_parent(script: str, env: dict | None = None) -> None:
    """Run ``script`` (it prints its two children's pids, then sleeps), SIGKILL it (so nothing
    of its own runs), and wait for both children to end."""
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env,
                              cwd=Path(__file__).resolve().parents[1])
    try:
        line = parent.stdout.readline()
        children = [int(pid) for pid in line.split()]
        assert len(children) == 2, line
        for pid in children:
            assert psutil.Process(pid).ppid() == parent.pid
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)
        _wait(lambda: all(_gone(pid) for pid in children), timeout=15, what="the child processes to end")
    finally:
        if parent.poll() is None:
            parent.kill()


def test_pool_processes_end_with_the_worker(services):
    """The real worker start-up (src.worker.startup) makes the pool; a worker killed in the
    middle of a job (SIGKILL, so nothing of its own runs) leaves no pool process running."""
    _children_end_with_their_parent(WORKER_WITH_POOL, {**os.environ, "WORKER_PROCESSES": "2"})


PASS_POOL = """
import time
from src.vision import propagate
propagate.start_processes(2)
print(" ".join(str(pid) for pid in propagate._pool._processes), flush=True)
time.sleep(120)
"""


def test_pass_processes_end_with_the_process_that_started_them():
    """The engine's pass processes (started inside a worker's pool process for a large
    propagation) end when that process is killed: they were left running for ever."""
    _children_end_with_their_parent(PASS_POOL)
