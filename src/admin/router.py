"""Admin JSON API, /api/v1/admin/*. The router itself requires the admin role, so no
endpoint added here can forget it (tests/admin/test_access.py walks every route)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from src.admin import audit, jobs, service
from src.admin.schemas import (
    AdminUserRow, AuditPage, BalanceChange, BalanceRead, DefaultsRead, DefaultsUpdate, PricesUpdate, UserDetail,
    UserPage, UserPatch,
)
from src.auth.dependencies import AdminUser, require_role
from src.auth.models import Role
from src.auth.router import UserManagerDep
from src.billing import service as billing_service
from src.billing.schemas import PriceListRead
from src.database import SessionDep
from src.pagination import MAX_PAGE
from src.review import service as review_service
from src.review.schemas import ReviewOverviewRow

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require_role(Role.admin))])
JobId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a review job's id")]  # as in src.review.router


@router.get("/users", response_model=UserPage)
async def list_users(
    session: SessionDep,
    q: str = Query("", max_length=200),
    role: Role | None = None,
    page: int = Query(1, ge=1, le=MAX_PAGE),
    per_page: int = Query(25, ge=1, le=200),
):
    items, total = await service.list_users(session, q=q, role=role, page=page, per_page=per_page)
    return {"items": items, "total": total, "page": page, "per_page": per_page}


@router.get("/users/{user_id}", response_model=UserDetail)
async def get_user(session: SessionDep, user_id: uuid.UUID):
    return await service.user_detail(session, user_id=user_id)


@router.patch("/users/{user_id}", response_model=AdminUserRow)
async def update_user(session: SessionDep, admin: AdminUser, user_id: uuid.UUID, body: UserPatch):
    changes = body.model_dump(exclude_unset=True)
    if body.quotas is not None:
        changes["quotas"] = body.quotas.model_dump(exclude_unset=True)
    await service.update_user(session, actor_id=admin.id, user_id=user_id, changes=changes)
    return await service.user_detail(session, user_id=user_id)


@router.post("/users/{user_id}/balance", response_model=BalanceRead)
async def change_balance(session: SessionDep, admin: AdminUser, user_id: uuid.UUID, body: BalanceChange):
    return await service.change_balance(
        session, actor_id=admin.id, user_id=user_id, amount_cents=body.amount_cents, reason=body.reason
    )


@router.get("/users/{user_id}/ledger")
async def user_ledger(session: SessionDep, user_id: uuid.UUID, page: int = Query(1, ge=1, le=MAX_PAGE),
                      per_page: int = Query(50, ge=1, le=500)):
    await service.get_user_or_raise(session, user_id=user_id)
    items = await billing_service.ledger(session, user_id=user_id, limit=per_page, offset=(page - 1) * per_page)
    return {"items": items, "page": page, "per_page": per_page}


@router.post("/users/{user_id}/reset-password", status_code=202)
async def reset_password(
    request: Request, session: SessionDep, admin: AdminUser, user_manager: UserManagerDep, user_id: uuid.UUID
):
    await service.send_password_reset(session, user_manager, actor_id=admin.id, user_id=user_id, request=request)
    return {"detail": "A password reset link was sent to the user."}


@router.get("/stats")
async def stats(request: Request, session: SessionDep):
    return await jobs.stats(session, request.app.state.redis)


@router.get("/jobs")
async def list_jobs(session: SessionDep):
    return {"items": await jobs.queue(session)}


@router.post("/jobs/{dataset_id}/retry")
async def retry_job(request: Request, session: SessionDep, admin: AdminUser, dataset_id: uuid.UUID):
    dataset = await jobs.retry(session, request.app.state.redis, actor_id=admin.id, dataset_id=dataset_id)
    return {"dataset_id": dataset.id, "state": dataset.state}


@router.post("/jobs/{dataset_id}/cancel")
async def cancel_job(request: Request, session: SessionDep, admin: AdminUser, dataset_id: uuid.UUID):
    dataset = await jobs.cancel(session, request.app.state.redis, actor_id=admin.id, dataset_id=dataset_id)
    return {"dataset_id": dataset.id, "state": dataset.state}


@router.post("/review/qc-jobs/{job_id}/accept", response_model=list[ReviewOverviewRow])
async def accept_both(job_id: JobId, request: Request, session: SessionDep, admin: AdminUser):
    """Accept a QC job and the primary job it checks, whatever their agreement (audited)."""
    accepted = await service.accept_qc_pair(session, request.app.state.redis, admin=admin, qc_job_id=job_id)
    return [row for row in await review_service.review_overview(session) if row["dataset_id"] == accepted.dataset_id]


@router.get("/prices", response_model=PriceListRead)
async def get_prices(session: SessionDep):
    return await billing_service.current_price_list(session)


@router.put("/prices", response_model=PriceListRead)
async def put_prices(session: SessionDep, admin: AdminUser, body: PricesUpdate):
    return await service.update_prices(session, actor_id=admin.id, changes=body.model_dump(exclude_unset=True))


@router.get("/quota-defaults", response_model=DefaultsRead)
async def get_defaults(session: SessionDep):
    return await service.defaults(session)


@router.put("/quota-defaults", response_model=DefaultsRead)
async def put_defaults(session: SessionDep, admin: AdminUser, body: DefaultsUpdate):
    return await service.update_defaults(session, actor_id=admin.id, changes=body.model_dump(exclude_unset=True))


@router.get("/audit", response_model=AuditPage)
async def list_audit(
    session: SessionDep,
    admin_id: uuid.UUID | None = None,
    action: str | None = Query(None, max_length=100),
    target_user_id: uuid.UUID | None = None,
    page: int = Query(1, ge=1, le=MAX_PAGE),
    per_page: int = Query(50, ge=1, le=500),
):
    items = await audit.entries(
        session, admin_id=admin_id, action=action, target_user_id=target_user_id, page=page, per_page=per_page
    )
    return {"items": items, "page": page, "per_page": per_page}
