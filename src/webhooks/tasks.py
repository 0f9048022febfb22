"""arq job: one try of a webhook delivery; a failed try enqueues the next, deferred."""

from __future__ import annotations

import uuid

from src.jobs import job_session
from src.webhooks import service


async def deliver_webhook(ctx: dict, delivery_id: str) -> str:
    did = uuid.UUID(delivery_id)
    async with job_session(ctx) as session:
        delay = await service.attempt(session, delivery_id=did)
        if delay is None:
            return "done"
        from src.webhooks.models import WebhookDelivery

        tries = (await session.get(WebhookDelivery, did)).attempts
    await ctx["redis"].enqueue_job("deliver_webhook", delivery_id, _job_id=service.job_id(did, tries + 1),
                                   _defer_by=delay)
    return f"retry in {delay:g} s"
