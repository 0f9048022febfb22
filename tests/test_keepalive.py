"""Keep-alive connections are closed after WEB_KEEPALIVE_SECONDS (src/keepalive.py),
by a real uvicorn server, so a client that never pauses reconnects and can land on another web
process."""

from __future__ import annotations

import asyncio
import socket
import threading

import uvicorn

from src.keepalive import KeepAliveLimit


async def _hello(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _serve(app) -> tuple[uvicorn.Server, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        threading.Event().wait(0.02)
    return server, port


async def _answers_on_one_connection(port: int, tries: int, pause: float = 0.0) -> list[str]:
    """The Connection header of each answer on one connection (``pause`` seconds apart), until
    the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    seen = []
    try:
        for _ in range(tries):
            await asyncio.sleep(pause)
            writer.write(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            try:
                head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
            except (asyncio.IncompleteReadError, ConnectionError):
                break  # closed by the server
            await reader.readexactly(2)
            seen.append("close" if "connection: close" in head else "keep-alive")
            if seen[-1] == "close":
                assert await reader.read() == b""  # and it does close
    finally:
        writer.close()
    return seen


async def test_a_connection_is_closed_once_it_is_old_enough():
    server, port = _serve(KeepAliveLimit(_hello, seconds=0.5))
    try:
        seen = await _answers_on_one_connection(port, 20, pause=0.1)
        assert seen[-1] == "close" and seen[:-1] == ["keep-alive"] * (len(seen) - 1)
        assert 4 <= len(seen) <= 8, seen  # the first answer after half a second
        assert len(await _answers_on_one_connection(port, 3)) == 3  # a new connection starts again
    finally:
        server.should_exit = True


async def test_no_limit_keeps_the_connection():
    server, port = _serve(KeepAliveLimit(_hello, seconds=0))
    try:
        assert await _answers_on_one_connection(port, 12) == ["keep-alive"] * 12
    finally:
        server.should_exit = True


async def test_the_connections_remembered_stay_bounded():
    from src.keepalive import MAX_TRACKED

    limit = KeepAliveLimit(_hello, seconds=60)

    async def send(message):
        return None

    async def receive():
        return {"type": "http.request", "body": b""}

    for port in range(MAX_TRACKED * 3):
        await limit({"type": "http", "client": ("10.0.0.1", port)}, receive, send)
    assert len(limit.opened) <= MAX_TRACKED + 1
