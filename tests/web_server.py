"""The real web process for tests that need one: uvicorn serving the app in a subprocess,
against the test's PostgreSQL and Redis (DATABASE_URL, REDIS_URL and VAR_DIR come from
tests/conftest.py through the environment)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from src.embedded import free_port


@contextmanager
def web_server(env: dict[str, str] | None = None, timeout: float = 90) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL, process) of a started server, stopped on exit. ``timeout``: how long it may
    take to answer /health (a loaded 2-core CI machine can take a while to import the app)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "src.main:app", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "PORT": str(port), "BASE_URL": url, **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("web server did not start: " + server.stderr.read().decode()[-2000:])
    try:
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=10)
