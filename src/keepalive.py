"""Spread keep-alive connections over the web processes.

`forge web` runs WEB_WORKERS uvicorn processes that accept connections from one shared socket.
A connection stays with the process that accepted it for as long as its client keeps it open,
and a client that never pauses (a busy reverse proxy, a script, a load test) never lets it go.
Under bench/load.py, 50 clients requesting back to back ended up 37 on one process and 13 on
the other: the 13 got their answers in 95 ms, the 37 waited 210 ms at the median and 1.4 s at
p99, while the machine had the CPU to serve all of them in about 150 ms.

So, like nginx's `keepalive_time`, the first answer on a connection after it has been open
WEB_KEEPALIVE_SECONDS says `Connection: close` (uvicorn then closes it after the answer). The
client connects again, a TCP handshake (well under a millisecond on a LAN), and the process
with the most time to spare is the one that accepts it first, so the connections even out
within seconds. A count of answers instead (nginx's `keepalive_requests`) moves the fast
clients, which sit on the idle process already, and leaves the slow ones where they are.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_TRACKED = 10_000  # connections remembered at once; past this the oldest are forgotten


class KeepAliveLimit:
    """Pure ASGI middleware: a connection answers for ``seconds`` (0: no limit), then closes.
    A connection is known by its peer address and port (uvicorn's ``scope["client"]``)."""

    def __init__(self, app: ASGIApp, seconds: float):
        self.app = app
        self.seconds = seconds
        self.opened: dict[tuple, float] = {}  # connection -> when it was first seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] != "http" or self.seconds <= 0 or not client:
            await self.app(scope, receive, send)
            return
        key, now = tuple(client), time.monotonic()
        opened = self.opened.setdefault(key, now)
        if now - opened < self.seconds:
            if len(self.opened) > MAX_TRACKED:  # closed connections are never told apart from open ones
                self.opened = {k: t for k, t in self.opened.items() if now - t < self.seconds}
                if len(self.opened) > MAX_TRACKED // 2:  # that many young ones: start again (they live on)
                    self.opened = {key: opened}
            await self.app(scope, receive, send)
            return
        del self.opened[key]

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing)
