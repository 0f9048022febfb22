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


MAX_CVAT_ID = 2**31 - 1  # the id columns are INTEGER


def _cvat_id(obj: dict, what: str) -> int:
    """The event's job / task id: a positive integer, or 422 (a string or a float would reach
    the database as a type error, a 500)."""
    value = obj.get("id")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_CVAT_ID:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{what}.id must be a positive integer.")
    return value


@router.post("/webhook", status_code=202, responses={
    400: {"description": "not a CVAT event"}, 401: {"description": "bad or missing signature"},
    422: {"description": "an id that is not a positive integer"}})
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
        query = select(ReviewJob.id).where(ReviewJob.cvat_job_id == _cvat_id(event["job"], "job"))
    elif kind.endswith(":task") and isinstance(event.get("task"), dict):
        query = (select(ReviewJob.id).join(ReviewTask, ReviewJob.task_id == ReviewTask.id)
                 .where(ReviewTask.cvat_task_id == _cvat_id(event["task"], "task")))
    job_ids = list((await session.scalars(query)).all()) if query is not None else []
    for job_id in job_ids:
        await request.app.state.redis.enqueue_job("cvat_sync_job", job_id)
    return {"status": "scheduled" if job_ids else "ignored", "jobs": job_ids}
