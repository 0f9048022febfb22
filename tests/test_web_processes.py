"""The web tier runs as several processes (WEB_WORKERS): `forge web` starts that many uvicorn
server processes, one dying leaves the others answering while uvicorn replaces it, and Ctrl-C
ends every one of them."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from src.config import ROOT, Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_default_is_one_process_per_core_within_bounds(monkeypatch):
    monkeypatch.delenv("WEB_WORKERS", raising=False)
    assert 2 <= Settings(_env_file=None).web_processes <= 8
    monkeypatch.setenv("WEB_WORKERS", "3")
    assert Settings(_env_file=None).web_processes == 3


def test_forge_web_serves_from_several_processes(services, tmp_path):
    database_url, redis_url = services
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "HOST": "127.0.0.1",
           "PORT": str(port), "WEB_WORKERS": "2", "PYTHONUNBUFFERED": "1", "CERTS_DIR": str(tmp_path / "certs")}
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        web = subprocess.Popen([sys.executable, "-m", "src.cli", "web"], cwd=ROOT, env=env, stdout=out,
                               stderr=subprocess.STDOUT)
    servers: list[int] = []
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            assert web.poll() is None, log.read_text()[-3000:]
            servers = [int(p) for p in re.findall(r"Started server process \[(\d+)\]", log.read_text())]
            if len(servers) == 2:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
        else:
            raise AssertionError(f"two server processes did not answer in time:\n{log.read_text()[-3000:]}")
        assert web.pid not in servers and all(_alive(pid) for pid in servers)
        # the key pair was made once, before the processes started (they would race for it)
        assert (tmp_path / "certs").is_dir() and len(list((tmp_path / "certs").iterdir())) == 2
        # one server process dies: the other goes on answering, and uvicorn starts a replacement
        os.kill(servers[0], signal.SIGKILL)
        for _ in range(20):
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            servers = [int(p) for p in re.findall(r"Started server process \[(\d+)\]", log.read_text())]
            if len(servers) == 3:
                break
            time.sleep(0.5)
        assert len(servers) == 3, log.read_text()[-3000:]
        servers = servers[1:]
        web.send_signal(signal.SIGINT)
        web.wait(timeout=60)
        deadline = time.monotonic() + 20
        while any(_alive(pid) for pid in servers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in servers), "a server process outlived Ctrl-C"
    finally:
        for pid in [web.pid, *servers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if web.poll() is None:
            web.wait(timeout=10)
