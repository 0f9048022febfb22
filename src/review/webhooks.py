"""`POST /api/v1/review/cvat/webhook`: CVAT tells us a job or task changed.

Authenticated by the HMAC signature CVAT sends (`X-Signature-256: sha256=<hex of the raw
body>` with CVAT_WEBHOOK_SECRET), not by a cookie. It only schedules `cvat_sync_job`, which
reads the job's current state from CVAT: a replayed or stale event changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy import select

from src.config import get_settings
from src.database import SessionDep
from src.review.models import ReviewJob, ReviewTask

router = APIRouter(prefix="/api/v1/review/cvat", tags=["review"])


def signature_ok(body: bytes, header: str | None) -> bool:
    secret = get_settings().cvat_webhook_secret
    if not secret or not secret.get_secret_value() or not header:
        return False
    expected = "sha256=" + hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


@router.post("/webhook", status_code=202)
async def cvat_webhook(request: Request, session: SessionDep):
    body = await request.body()
    if not signature_ok(body, request.headers.get("X-Signature-256")):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Bad or missing signature.")
    try:
        event = json.loads(body)
        kind = str(event.get("event", ""))
    except (ValueError, AttributeError):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Not a CVAT event.") from None
    query = None
    if kind.endswith(":job") and isinstance(event.get("job"), dict):
        query = select(ReviewJob.id).where(ReviewJob.cvat_job_id == event["job"].get("id"))
    elif kind.endswith(":task") and isinstance(event.get("task"), dict):
        query = (select(ReviewJob.id).join(ReviewTask, ReviewJob.task_id == ReviewTask.id)
                 .where(ReviewTask.cvat_task_id == event["task"].get("id")))
    job_ids = list((await session.scalars(query)).all()) if query is not None else []
    for job_id in job_ids:
        await request.app.state.redis.enqueue_job("cvat_sync_job", job_id)
    return {"status": "scheduled" if job_ids else "ignored", "jobs": job_ids}
