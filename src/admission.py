"""Let a web process work on a few requests at a time, the others waiting their turn.

A uvicorn process interleaves every request it has accepted: each one's database round trips,
template rendering and Redis calls take turns on one event loop. With 25 requests in a process
at once, a page that awaits six times queues behind the other 24 six times, so the answers
spread widely (under bench/load.py with 50 back-to-back clients on two cores: median 210 ms,
p99 770 ms). A gate of WEB_ACTIVE_REQUESTS (4) lets that many run and the rest wait at the
door, first come first served: each request then queues once instead of at every await, and
runs with less switching (p99 about 390 ms, and more requests per second; docs/benchmarks.md).

A request gives its place back when its answer starts (the body of a download or a video
stream then goes out without holding it) or after ADMISSION_HOLD_S at the latest: an upload, a
"Suggest boxes" waiting for a worker, a call to CVAT would otherwise hold a place for seconds
or minutes while using no CPU. So the gate never holds anyone back for long behind them.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMISSION_HOLD_S = 0.5  # the longest a request keeps its place (it goes on running after)


class AdmissionGate:
    """Pure ASGI middleware: at most ``size`` HTTP requests of this process hold a place at
    once (0: no gate)."""

    def __init__(self, app: ASGIApp, size: int):
        self.app = app
        self.size = size
        self._places: asyncio.Semaphore | None = None  # made on the serving loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.size <= 0:
            await self.app(scope, receive, send)
            return
        if self._places is None:
            self._places = asyncio.Semaphore(self.size)
        places = self._places
        await places.acquire()
        held = True

        def give_back() -> None:
            nonlocal held
            if held:
                held = False
                places.release()

        timer = asyncio.get_running_loop().call_later(ADMISSION_HOLD_S, give_back)

        async def answering(message: Message) -> None:
            if message["type"] == "http.response.start":
                give_back()
            await send(message)

        try:
            await self.app(scope, receive, answering)
        finally:
            timer.cancel()
            give_back()
