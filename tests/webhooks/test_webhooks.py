"""Outgoing webhooks against a real HTTP server on loopback (allowed by WEBHOOK_ALLOWED_HOSTS in
this test only): registered URLs are SSRF-guarded, deliveries are HMAC-SHA256 signed and
verified by the receiver, retried with backoff by the real arq worker, given up after the
last try; dataset.ready / dataset.needs_review / dataset.failed come from real dataset jobs."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from src.config import get_settings
from tests.datasets.conftest import OPTIONS, make_draft, run_worker, top_up


class Receiver:
    """Records every POST; answers the statuses queued for its path (then 200)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.plan: dict[str, list[int]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                queued = receiver.plan.get(self.path) or []
                status = queued.pop(0) if queued else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def at(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def verified(request: dict, secret: str) -> dict:
    """What a receiver does: recompute the signature over timestamp + body, compare in constant time."""
    headers = {k.lower(): v for k, v in request["headers"].items()}
    signed = headers["x-forge-timestamp"].encode() + b"." + request["body"]
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, headers["x-forge-signature"]), "bad signature"
    event = json.loads(request["body"])
    assert headers["x-forge-event"] == event["event"] and headers["x-forge-delivery"] == event["id"]
    return event


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def webhook_settings(monkeypatch):
    def apply(**values):
        for key, value in values.items():
            monkeypatch.setenv(key, str(value))
        get_settings.cache_clear()

    apply(WEBHOOK_RETRY_BASE_S="0.05", WEBHOOK_MAX_ATTEMPTS="3", WEBHOOK_TIMEOUT_S="5")
    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()


async def test_urls_are_guarded_like_url_import(user_client, receiver, webhook_settings):
    for url in [f"{receiver.url}/hook", "http://localhost/hook", "http://10.0.0.8/x", "http://169.254.169.254/latest",
                "ftp://example.com/x", "http:///nohost", "http://[::1]:8080/x"]:
        refused = await user_client.post("/api/v1/webhooks", json={"url": url})
        assert refused.status_code == 422, (url, refused.text)
    assert "private or local network" in (await user_client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1/hook"})).json()["detail"]
    unknown = await user_client.post("/api/v1/webhooks", json={"url": "https://example.com/h", "events": ["dataset.done"]})
    assert unknown.status_code == 422
    extra = await user_client.post("/api/v1/webhooks", json={"url": "https://example.com/h", "secret": "mine"})
    assert extra.status_code == 422 and extra.json()["detail"][0]["loc"] == ["body", "secret"]
    assert receiver.requests == []


async def test_ping_is_signed_retried_with_backoff_then_delivered(app, services, user_client, receiver, webhook_settings):
    _, redis_url = services
    webhook_settings(WEBHOOK_ALLOWED_HOSTS="127.0.0.1")
    made = await user_client.post("/api/v1/webhooks", json={"url": f"{receiver.url}/hook", "description": "ci"})
    assert made.status_code == 201, made.text
    hook = made.json()
    assert len(hook["secret"]) == 64 and "secret" not in (await user_client.get("/api/v1/webhooks")).json()[0]

    receiver.plan["/hook"] = [500, 503]  # two failures, then 200
    ping = await user_client.post(f"/api/v1/webhooks/{hook['id']}/ping")
    assert ping.status_code == 202 and ping.json()["state"] == "pending"
    await run_worker(redis_url)
    tries = receiver.at("/hook")
    assert len(tries) == 3
    events = [verified(t, hook["secret"]) for t in tries]
    assert {e["id"] for e in events} == {ping.json()["id"]} and events[0]["event"] == "ping"
    assert len({t["body"] for t in tries}) == 1  # the same body each time, signed afresh
    [delivery] = (await user_client.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()
    assert delivery["state"] == "delivered" and delivery["attempts"] == 3 and delivery["last_status"] == 200

    # a forged signature would not verify
    with pytest.raises(AssertionError, match="bad signature"):
        verified({**tries[0], "body": tries[0]["body"].replace(b"ping", b"pong")}, hook["secret"])


async def test_delivery_gives_up_after_the_last_try_and_rechecks_the_url(services, user_client, receiver,
                                                                           webhook_settings):
    _, redis_url = services
    webhook_settings(WEBHOOK_ALLOWED_HOSTS="127.0.0.1")
    down = (await user_client.post("/api/v1/webhooks", json={"url": f"{receiver.url}/down"})).json()
    receiver.plan["/down"] = [500] * 10
    await user_client.post(f"/api/v1/webhooks/{down['id']}/ping")
    await run_worker(redis_url)
    assert len(receiver.at("/down")) == 3  # WEBHOOK_MAX_ATTEMPTS
    [delivery] = (await user_client.get(f"/api/v1/webhooks/{down['id']}/deliveries")).json()
    assert delivery["state"] == "failed" and delivery["last_status"] == 500 and "answered 500" in delivery["last_error"]

    moved = (await user_client.post("/api/v1/webhooks", json={"url": f"{receiver.url}/moved"})).json()
    await user_client.post(f"/api/v1/webhooks/{moved['id']}/ping")
    webhook_settings(WEBHOOK_ALLOWED_HOSTS="")  # loopback no longer allowed when the job runs
    await run_worker(redis_url)
    assert receiver.at("/moved") == []
    [delivery] = (await user_client.get(f"/api/v1/webhooks/{moved['id']}/deliveries")).json()
    assert delivery["state"] == "failed" and "private or local network" in delivery["last_error"]

    assert (await user_client.delete(f"/api/v1/webhooks/{moved['id']}")).status_code == 204
    assert (await user_client.get(f"/api/v1/webhooks/{moved['id']}/deliveries")).status_code == 404


async def test_dataset_events_from_real_jobs(app, services, user_client, make_client, receiver, webhook_settings):
    from src.database import unit_of_work
    from src.datasets import service as dataset_service

    _, redis_url = services
    webhook_settings(WEBHOOK_ALLOWED_HOSTS="127.0.0.1")
    hook = (await user_client.post("/api/v1/webhooks", json={"url": f"{receiver.url}/all"})).json()
    only_ready = (await user_client.post("/api/v1/webhooks", json={"url": f"{receiver.url}/ready",
                                                                   "events": ["dataset.ready"]})).json()
    await top_up(app, "user@example.com", 1_000_000)
    ready = await make_draft(user_client, name="to be ready")
    reviewed = await make_draft(user_client, name="to be reviewed")
    fast = {**OPTIONS, "sampling": {"mode": "every_n", "every_n": 10}, "formats": ["yolo"]}
    for draft, options in ((ready, fast), (reviewed, {**OPTIONS, "review_budget": 0.05, "review_by": "me"})):
        confirmed = await user_client.post(f"/api/v1/datasets/{draft['id']}/confirm", json={"options": options})
        assert confirmed.status_code == 202, confirmed.text
    await run_worker(redis_url)

    events = {(e["event"], e["data"]["dataset_id"]): e for e in (verified(r, hook["secret"]) for r in receiver.at("/all"))}
    assert set(events) == {("dataset.ready", ready["id"]), ("dataset.needs_review", reviewed["id"])}
    done = events[("dataset.ready", ready["id"])]["data"]
    assert done["state"] == "ready" and done["name"] == "to be ready" and set(done["downloads"]) == {"yolo"}
    assert done["delivered_frames"] > 0
    assert [verified(r, only_ready["secret"])["event"] for r in receiver.at("/ready")] == ["dataset.ready"]

    async with unit_of_work(app.state.sessionmaker) as session:
        await dataset_service.fail(session, dataset_id=reviewed["id"], message="The review was abandoned.",
                                   redis=app.state.redis)
    await run_worker(redis_url)
    failed = [verified(r, hook["secret"]) for r in receiver.at("/all")][-1]
    assert failed["event"] == "dataset.failed" and failed["data"]["dataset_id"] == reviewed["id"]
    assert failed["data"]["error"] == "The review was abandoned." and failed["data"]["downloads"] == {}
    assert len(receiver.at("/ready")) == 1

    other = make_client()  # someone else's webhooks are not mine to see or delete
    from tests.conftest import login_cookie, register

    await register(other, "other@example.com")
    await login_cookie(other, "other@example.com")
    assert (await other.get("/api/v1/webhooks")).json() == []
    assert (await other.delete(f"/api/v1/webhooks/{hook['id']}")).status_code == 404
    assert (await other.post(f"/api/v1/webhooks/{hook['id']}/ping")).status_code == 404
