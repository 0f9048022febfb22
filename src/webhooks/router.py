"""Webhooks JSON API: register a URL for dataset events, list, delete, ping, see deliveries."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from src.auth.dependencies import CurrentUser
from src.database import SessionDep
from src.webhooks import service
from src.webhooks.models import WebhookEvent
from src.webhooks.schemas import DeliveryRead, WebhookCreate, WebhookCreated, WebhookRead

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


@router.get("", response_model=list[WebhookRead])
async def list_webhooks(session: SessionDep, user: CurrentUser):
    return await service.list_for_owner(session, user=user)


@router.post("", status_code=201, response_model=WebhookCreated)
async def create_webhook(body: WebhookCreate, session: SessionDep, user: CurrentUser):
    """Register a URL for `dataset.ready`, `dataset.failed` and/or `dataset.needs_review`. Each delivery is
    a POST of JSON signed with `secret` (in this answer only): see docs/api.md. 422 for a URL on a
    private, loopback or unknown host."""
    hook = await service.create(session, user=user, url=body.url, events=list(body.events),
                                description=body.description)
    return WebhookCreated(**WebhookRead.model_validate(hook).model_dump(), secret=hook.secret)


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    await service.delete(session, webhook=await service.get_for_owner(session, webhook_id=webhook_id, user=user))


@router.post("/{webhook_id}/ping", status_code=202, response_model=DeliveryRead)
async def ping_webhook(webhook_id: uuid.UUID, request: Request, session: SessionDep, user: CurrentUser):
    """Send a `ping` event to this webhook now (retried like any other), to check the receiver."""
    hook = await service.get_for_owner(session, webhook_id=webhook_id, user=user)
    [delivery] = await service.emit(session, request.app.state.redis, user_id=user.id, event=WebhookEvent.ping,
                                    data={"webhook_id": str(hook.id)}, only=hook)
    return delivery


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryRead])
async def list_deliveries(webhook_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    """The last 100 deliveries, newest first: state, tries, the receiver's last status or error."""
    hook = await service.get_for_owner(session, webhook_id=webhook_id, user=user)
    return await service.deliveries(session, webhook=hook)
