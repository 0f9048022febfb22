"""Outgoing webhooks: register a URL (SSRF-guarded like URL import), emit events in the
caller's unit of work, deliver them signed, retry with exponential backoff.

A delivery is a row written in the same transaction as the state change it announces, its
job enqueued once that transaction commits; a job sends it once and, on failure, enqueues
the next try (`webhook:<delivery>:<try>`, deferred base * 2^(try-1) s) until
WEBHOOK_MAX_ATTEMPTS. Every try sends the same body with a fresh timestamp and signature:

    X-Forge-Signature: sha256=<hex HMAC-SHA256(secret, "<X-Forge-Timestamp>." + body)>
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from src import netguard
from src.auth.models import User
from src.config import get_settings
from src.database import on_commit, utcnow
from src.webhooks.exceptions import TooManyWebhooks, WebhookNotFound, WebhookRefused
from src.webhooks.models import DeliveryState, Webhook, WebhookDelivery, WebhookEvent

MAX_WEBHOOKS_PER_USER = 20
USER_AGENT = "DataForge-Webhooks/1"
KEPT_ERROR_CHARS = 500


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Forge-Signature value of a body sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does (constant-time compare); it should also refuse old timestamps."""
    try:
        expected = sign(secret, int(timestamp), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, signature)


async def check_url(url: str) -> None:
    found = await netguard.problem(url, allowed_hosts=netguard.hosts(get_settings().webhook_allowed_hosts))
    if found is None:
        return
    raise WebhookRefused({
        "scheme": "A webhook URL must start with http:// or https://.",
        "no_host": "The webhook URL has no host name.",
        "not_found": f"The host {found.host!r} could not be found.",
        "private": f"The host {found.host!r} is on a private or local network; webhooks are only sent to public addresses.",
    }[found.kind])


async def create(session: AsyncSession, *, user: User, url: str, events: list[str], description: str = "") -> Webhook:
    await check_url(url)
    owned = (await session.scalars(select(Webhook.id).where(Webhook.owner_id == user.id))).all()
    if len(owned) >= MAX_WEBHOOKS_PER_USER:
        raise TooManyWebhooks(f"You have {MAX_WEBHOOKS_PER_USER} webhooks already; delete one first.")
    hook = Webhook(owner_id=user.id, url=url, secret=secrets.token_hex(32), events=list(dict.fromkeys(events)),
                   description=description.strip())
    session.add(hook)
    await session.flush()
    return hook


async def list_for_owner(session: AsyncSession, *, user: User) -> list[Webhook]:
    query = select(Webhook).where(Webhook.owner_id == user.id).order_by(Webhook.created_at.desc())
    return list((await session.scalars(query)).all())


async def get_for_owner(session: AsyncSession, *, webhook_id: uuid.UUID, user: User) -> Webhook:
    hook = await session.get(Webhook, webhook_id)
    if hook is None or hook.owner_id != user.id:
        raise WebhookNotFound()
    return hook


async def delete(session: AsyncSession, *, webhook: Webhook) -> None:
    await session.delete(webhook)  # its deliveries go with it (ON DELETE CASCADE)
    await session.flush()


async def deliveries(session: AsyncSession, *, webhook: Webhook, limit: int = 100) -> list[WebhookDelivery]:
    query = (select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
             .order_by(WebhookDelivery.created_at.desc()).limit(limit))
    return list((await session.scalars(query)).all())


def job_id(delivery_id: uuid.UUID, attempt: int) -> str:
    return f"webhook:{delivery_id}:{attempt}"


def _enqueue_on_commit(session: AsyncSession, redis, delivery_ids: list[uuid.UUID]) -> None:
    if redis is None or not delivery_ids:
        return

    async def enqueue() -> None:
        for delivery_id in delivery_ids:
            await redis.enqueue_job("deliver_webhook", str(delivery_id), _job_id=job_id(delivery_id, 1))

    on_commit(session, enqueue)


async def emit(session: AsyncSession, redis, *, user_id: uuid.UUID, event: WebhookEvent, data: dict[str, Any],
               only: Webhook | None = None) -> list[WebhookDelivery]:
    """Queue `event` for each active webhook of the user that subscribes to it (or just `only`);
    sent once the caller's transaction commits."""
    if only is not None:
        hooks = [only]
    else:
        hooks = [h for h in (await session.scalars(select(Webhook).where(Webhook.owner_id == user_id,
                                                                         Webhook.active.is_(True)))).all()
                 if event.value in (h.events or [])]
    rows = []
    for hook in hooks:
        delivery_id = uuid.uuid4()
        body = json.dumps({"id": str(delivery_id), "event": event.value, "created_at": utcnow().isoformat(),
                           "data": data}, separators=(",", ":"), default=str)
        rows.append(WebhookDelivery(id=delivery_id, webhook_id=hook.id, event=event.value, body=body))
    session.add_all(rows)
    await session.flush()
    _enqueue_on_commit(session, redis, [row.id for row in rows])
    return rows


def retry_delay_s(attempt: int) -> float:
    """Seconds before try `attempt + 1`, after try `attempt` failed."""
    return get_settings().webhook_retry_base_s * 2 ** (attempt - 1)


async def attempt(session: AsyncSession, *, delivery_id: uuid.UUID) -> float | None:
    """Send a pending delivery once. Returns the delay before the next try, or None when there
    is none (delivered, given up, or not pending: a job that runs twice sends once)."""
    delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True, populate_existing=True)
    if delivery is None or delivery.state != DeliveryState.pending:
        return None
    hook = await session.get(Webhook, delivery.webhook_id)
    settings = get_settings()
    delivery.attempts += 1
    error, status = None, None
    try:
        await check_url(hook.url)  # again: the name may resolve elsewhere now
    except WebhookRefused as refused:
        delivery.state, delivery.last_error, delivery.next_attempt_at = DeliveryState.failed, refused.message, None
        await session.flush()
        return None
    body = delivery.body.encode()
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "X-Forge-Event": delivery.event,
               "X-Forge-Delivery": str(delivery.id), "X-Forge-Timestamp": str(timestamp),
               "X-Forge-Signature": sign(hook.secret, timestamp, body)}
    try:
        async with httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False) as client:
            response = await client.post(hook.url, content=body, headers=headers)
        status = response.status_code
        if not 200 <= status < 300:
            error = f"The receiver answered {status}."
    except httpx.HTTPError as failure:
        error = f"{failure.__class__.__name__}: {failure}"[:KEPT_ERROR_CHARS] or failure.__class__.__name__
    delivery.last_status, delivery.last_error = status, error
    if error is None:
        delivery.state, delivery.delivered_at, delivery.next_attempt_at = DeliveryState.delivered, utcnow(), None
        await session.flush()
        return None
    if delivery.attempts >= settings.webhook_max_attempts:
        delivery.state, delivery.next_attempt_at = DeliveryState.failed, None
        await session.flush()
        return None
    delay = retry_delay_s(delivery.attempts)
    delivery.next_attempt_at = utcnow() + timedelta(seconds=delay)
    await session.flush()
    return delay


def dataset_event_data(dataset) -> dict[str, Any]:
    """What a dataset event says about the dataset (the caller passes the row)."""
    formats = (dataset.options or {}).get("formats", []) if dataset.state.value == "ready" else []
    return {
        "dataset_id": str(dataset.id), "name": dataset.name, "state": dataset.state.value,
        "video_id": str(dataset.video_id), "error": dataset.error, "delivered_frames": dataset.delivered_frames,
        "charged_cents": dataset.charged_cents,
        "downloads": {fmt: f"{get_settings().base_url}/api/v1/datasets/{dataset.id}/download?format={fmt}"
                      for fmt in formats},
        "url": f"/api/v1/datasets/{dataset.id}",
    }


async def emit_dataset(session: AsyncSession, redis, *, dataset, event: WebhookEvent) -> None:
    await emit(session, redis, user_id=dataset.owner_id, event=event, data=dataset_event_data(dataset))
