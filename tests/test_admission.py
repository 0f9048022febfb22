"""The web process's admission gate (src/admission.py): a few requests at a time, the others
in turn; nobody holds a place for long or while their answer streams."""

from __future__ import annotations

import asyncio
import time

from src.admission import ADMISSION_HOLD_S, AdmissionGate


def _scope() -> dict:
    return {"type": "http", "method": "GET", "path": "/", "headers": []}


async def _receive() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


class _App:
    """Works ``before`` seconds, starts its answer, then streams its body for ``after`` seconds;
    counts how many requests work at once."""

    def __init__(self, before: float = 0.02, after: float = 0.0):
        self.before, self.after = before, after
        self.working = self.most = 0

    async def __call__(self, scope, receive, send):
        self.working += 1
        self.most = max(self.most, self.working)
        await asyncio.sleep(self.before)
        self.working -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(self.after)
        await send({"type": "http.response.body", "body": b"ok"})


async def _get(app) -> float:
    """Seconds until the answer's start."""
    started = time.monotonic()
    answered = asyncio.get_running_loop().create_future()

    async def send(message):
        if message["type"] == "http.response.start" and not answered.done():
            answered.set_result(time.monotonic() - started)

    await app(_scope(), _receive, send)
    return answered.result()


async def test_at_most_size_requests_work_at_once_and_all_are_answered():
    app = _App()
    gate = AdmissionGate(app, 3)
    waits = await asyncio.gather(*(_get(gate) for _ in range(12)))
    assert app.most == 3 and len(waits) == 12
    assert max(waits) >= 4 * app.before * 0.9  # the last ones waited their turn (12 / 3 rounds)
    ungated = _App()
    await asyncio.gather(*(_get(AdmissionGate(ungated, 0)) for _ in range(12)))
    assert ungated.most == 12


async def test_a_slow_request_gives_its_place_back_after_the_hold():
    """An upload or a wait for a worker uses no CPU: it keeps its place only ADMISSION_HOLD_S."""
    slow, fast = _App(before=4 * ADMISSION_HOLD_S), _App()

    async def route(scope, receive, send):
        await (slow if scope["path"] == "/slow" else fast)(scope, receive, send)

    gate = AdmissionGate(route, 1)
    slow_call = asyncio.ensure_future(gate({**_scope(), "path": "/slow"}, _receive, _noop))
    await asyncio.sleep(0.01)
    waited = await _get(gate)
    assert ADMISSION_HOLD_S * 0.9 <= waited < 2 * ADMISSION_HOLD_S
    await slow_call


async def test_a_streaming_answer_does_not_hold_its_place():
    app = _App(before=0.0, after=4 * ADMISSION_HOLD_S)  # a download: answer at once, body for long
    gate = AdmissionGate(app, 1)
    first = asyncio.ensure_future(gate(_scope(), _receive, _noop))
    await asyncio.sleep(0.01)
    assert await _get(gate) < ADMISSION_HOLD_S / 2
    await first


async def _noop(message) -> None:
    return None
