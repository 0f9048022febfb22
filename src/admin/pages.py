"""Admin pages, /admin/*: thin over the same services as the JSON API. The router requires
the admin role. Forms post back; a plain post is answered with a redirect (or the page
with the error), an HTMX post with the swapped block."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy.ext.asyncio import AsyncSession

from src.admin import audit, jobs, service
from src.admin.schemas import DefaultsUpdate, PricesUpdate
from src.auth.dependencies import PageAdmin, page_admin
from src.auth.models import Role
from src.auth.router import UserManagerDep
from src.billing import service as billing_service
from src.database import SessionDep
from src.exceptions import Unprocessable
from src.pages import attempt, form_model
from src.quotas import service as quota_service
from src.review import service as review_service
from src.templating import is_htmx, redirect_to, render

router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[Depends(page_admin)])

# Quota form inputs in the units people think in: (field, label, unit, scale to the stored value).
QUOTA_INPUTS = (
    ("max_storage_bytes", "Storage", "GB", 1_000_000_000),
    ("max_videos", "Videos", "videos", 1),
    ("max_video_bytes", "Size per video", "GB", 1_000_000_000),
    ("max_video_duration_s", "Duration per video", "minutes", 60),
    ("frames_per_month", "Delivered frames per month", "frames", 1),
    ("concurrent_jobs", "Concurrent jobs", "jobs", 1),
)
PRICE_INPUTS = (
    ("per_frame_cents", "Per delivered frame (cents)"),
    ("per_object_frame_cents", "Per object-frame (cents)"),
    ("per_reviewed_frame_cents", "Per reviewed frame (cents)"),
    ("minimum_cents", "Minimum charge (cents)"),
)
# The price and defaults forms are checked by the API's schemas (PricesUpdate, DefaultsUpdate);
# these are only the words the page says for a field the schema refuses.
CENTS = "enter a whole number of cents, 0 or more"
PRICE_WORDS = {
    "labels": {**dict(PRICE_INPUTS), "currency": "Currency"},
    "messages": {**{field: CENTS for field, _ in PRICE_INPUTS}, "currency": "a three-letter code such as USD or EUR"},
}
DEFAULTS_WORDS = {"labels": {"starting_balance_cents": "Starting balance"},
                  "messages": {"starting_balance_cents": "a whole number of cents, 0 or more"}}


def _quota_changes(form: dict[str, str], *, blank_is_default: bool) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for field, label, _, scale in QUOTA_INPUTS:
        raw = (form.get(field) or "").strip()
        if not raw:
            if blank_is_default:
                changes[field] = None
            continue
        try:
            value = float(raw) * scale
        except ValueError:
            raise Unprocessable(f"{label}: enter a number.") from None
        if value < 0:
            raise Unprocessable(f"{label}: cannot be negative.")
        changes[field] = value if field == "max_video_duration_s" else round(value)
    return changes


# --- users -------------------------------------------------------------------------------------

@router.get("", name="admin_home")
async def admin_home(request: Request):
    return redirect_to(request, "admin_users_page")


@router.get("/users", name="admin_users_page")
async def users_page(
    request: Request, session: SessionDep, admin: PageAdmin, q: str = "", role: str = "", page: int = 1,
):
    per_page = 25
    page = max(page, 1)
    role = role if role in Role.__members__ else ""  # the form sends "" for "any role"
    users, total = await service.list_users(session, q=q, role=Role(role) if role else None, page=page, per_page=per_page)
    context = {"users": users, "total": total, "q": q, "role": role, "page": page, "pages": max(1, -(-total // per_page)),
               "currency": (await billing_service.current_price_list(session)).currency}
    return render(request, "admin/users.html", context, block="users")


async def _user_page(request: Request, session: AsyncSession, user_id: uuid.UUID, *, block=None, status_code=200, **extra):
    context = {
        "u": await service.user_detail(session, user_id=user_id),
        "ledger": await billing_service.ledger(session, user_id=user_id, limit=20),
        "defaults": await quota_service.defaults(session),
        "quota_inputs": QUOTA_INPUTS,
        "roles": list(Role),
        "currency": (await billing_service.current_price_list(session)).currency,
        **extra,
    }
    return render(request, "admin/user.html", context, block=block, status_code=status_code)


@router.get("/users/{user_id}", name="admin_user_page")
async def user_page(request: Request, session: SessionDep, admin: PageAdmin, user_id: uuid.UUID):
    return await _user_page(request, session, user_id)


async def _user_post(request, session, user_id, block: str, action) -> Any:
    error = (await attempt(session, action)).error
    if error:
        return await _user_page(request, session, user_id, block=block, status_code=error.status_code,
                                **{f"{block}_error": error.message})
    page = lambda **kw: _user_page(request, session, user_id, **kw)  # noqa: E731
    if is_htmx(request):
        return await page(block=block, **{f"{block}_message": "Saved."})
    return redirect_to(request, "admin_user_page", user_id=user_id)


@router.post("/users/{user_id}/account", name="admin_user_account_submit")
async def user_account_submit(
    request: Request, session: SessionDep, admin: PageAdmin, user_id: uuid.UUID,
    role: Annotated[Role, Form()], is_active: Annotated[bool, Form()], cvat_username: Annotated[str, Form()] = "",
):
    changes = {"role": role, "is_active": is_active, "cvat_username": cvat_username}
    action = service.update_user(session, actor_id=admin.id, user_id=user_id, changes=changes)
    return await _user_post(request, session, user_id, "account", action)


@router.post("/users/{user_id}/quotas", name="admin_user_quotas_submit")
async def user_quotas_submit(request: Request, session: SessionDep, admin: PageAdmin, user_id: uuid.UUID):
    form = {key: str(value) for key, value in (await request.form()).items()}

    async def action():
        changes = _quota_changes(form, blank_is_default=True)
        await service.update_user(session, actor_id=admin.id, user_id=user_id, changes={"quotas": changes})

    return await _user_post(request, session, user_id, "quotas", action())


@router.post("/users/{user_id}/balance", name="admin_user_balance_submit")
async def user_balance_submit(
    request: Request, session: SessionDep, admin: PageAdmin, user_id: uuid.UUID,
    amount_cents: Annotated[int, Form()], reason: Annotated[str, Form()] = "",
):
    action = service.change_balance(session, actor_id=admin.id, user_id=user_id, amount_cents=amount_cents, reason=reason)
    return await _user_post(request, session, user_id, "balance", action)


@router.post("/users/{user_id}/reset-password", name="admin_user_reset_password_submit")
async def user_reset_password_submit(
    request: Request, session: SessionDep, admin: PageAdmin, user_manager: UserManagerDep, user_id: uuid.UUID,
):
    action = service.send_password_reset(session, user_manager, actor_id=admin.id, user_id=user_id, request=request)
    error = (await attempt(session, action)).error
    extra = {"account_error": error.message} if error else {"account_message": "A reset link was sent to the user."}
    return await _user_page(request, session, user_id, block="account", status_code=error.status_code if error else 200, **extra)


# --- jobs ----------------------------------------------------------------------------------------

async def _jobs_page(request: Request, session: AsyncSession, *, status_code=200, **extra):
    context = {"jobs": await jobs.queue(session), "stats": await jobs.stats(session, request.app.state.redis), **extra}
    return render(request, "admin/jobs.html", context, block="queue", status_code=status_code)


@router.get("/jobs", name="admin_jobs_page")
async def jobs_page(request: Request, session: SessionDep, admin: PageAdmin):
    return await _jobs_page(request, session)


@router.post("/jobs/{dataset_id}/{verb}", name="admin_job_action_submit")
async def job_action_submit(request: Request, session: SessionDep, admin: PageAdmin, dataset_id: uuid.UUID, verb: str):
    act = {"retry": jobs.retry, "cancel": jobs.cancel}.get(verb)
    if act is None:
        raise Unprocessable("Jobs can be retried or cancelled.")
    error = (await attempt(session, act(session, request.app.state.redis, actor_id=admin.id, dataset_id=dataset_id))).error
    if error or is_htmx(request):
        message = {"error": error.message} if error else {"message": f"{verb.capitalize()} done."}
        return await _jobs_page(request, session, status_code=error.status_code if error else 200, **message)
    return redirect_to(request, "admin_jobs_page")


# --- review ----------------------------------------------------------------------------------------

async def _review_page(request: Request, session: AsyncSession, *, status_code=200, **extra):
    context = {"tasks": await review_service.review_overview(session), **extra}
    return render(request, "admin/review.html", context, block="review", status_code=status_code)


@router.get("/review", name="admin_review_page")
async def review_page(request: Request, session: SessionDep, admin: PageAdmin):
    return await _review_page(request, session)


@router.post("/review/qc-jobs/{job_id}/accept", name="accept_both_submit")
async def accept_both_submit(request: Request, job_id: int, session: SessionDep, admin: PageAdmin):
    accepted = await attempt(session, service.accept_qc_pair(session, request.app.state.redis, admin=admin,
                                                             qc_job_id=job_id))
    if error := accepted.error:
        return await _review_page(request, session, status_code=error.status_code, error=error.message)
    if is_htmx(request):
        return await _review_page(request, session, message=f"QC job #{job_id} and its primary job accepted.")
    return redirect_to(request, "admin_review_page")


# --- prices and defaults ---------------------------------------------------------------------------

async def _prices_page(request: Request, session: AsyncSession, *, status_code=200, **extra):
    context = {
        "current": await billing_service.current_price_list(session),
        "history": await billing_service.price_history(session),
        "price_inputs": PRICE_INPUTS,
        **extra,
    }
    return render(request, "admin/prices.html", context, block="prices", status_code=status_code)


@router.get("/prices", name="admin_prices_page")
async def prices_page(request: Request, session: SessionDep, admin: PageAdmin):
    return await _prices_page(request, session)


@router.post("/prices", name="admin_prices_submit")
async def prices_submit(request: Request, session: SessionDep, admin: PageAdmin):
    form = await request.form()

    async def action():
        # every price is required here (the form shows them all); a blank currency keeps the current one
        fields = {field: str(form.get(field, "")).strip() for field, _ in PRICE_INPUTS}
        if currency := str(form.get("currency", "")).strip().upper():
            fields["currency"] = currency
        body = form_model(PricesUpdate, fields, **PRICE_WORDS)
        await service.update_prices(session, actor_id=admin.id, changes=body.model_dump(exclude_unset=True))

    error = (await attempt(session, action())).error
    if error or is_htmx(request):
        extra = {"error": error.message} if error else {"message": "Saved as a new version."}
        return await _prices_page(request, session, status_code=error.status_code if error else 200, **extra)
    return redirect_to(request, "admin_prices_page")


async def _defaults_page(request: Request, session: AsyncSession, *, status_code=200, **extra):
    context = {"defaults": await service.defaults(session), "quota_inputs": QUOTA_INPUTS, **extra}
    return render(request, "admin/defaults.html", context, block="defaults", status_code=status_code)


@router.get("/defaults", name="admin_defaults_page")
async def defaults_page(request: Request, session: SessionDep, admin: PageAdmin):
    return await _defaults_page(request, session)


@router.post("/defaults", name="admin_defaults_submit")
async def defaults_submit(request: Request, session: SessionDep, admin: PageAdmin):
    form = {key: str(value) for key, value in (await request.form()).items()}

    async def action():
        changes = _quota_changes(form, blank_is_default=False)
        if raw := form.get("starting_balance_cents", "").strip():
            changes["starting_balance_cents"] = raw
        body = form_model(DefaultsUpdate, changes, **DEFAULTS_WORDS)
        await service.update_defaults(session, actor_id=admin.id, changes=body.model_dump(exclude_unset=True))

    error = (await attempt(session, action())).error
    if error or is_htmx(request):
        extra = {"error": error.message} if error else {"message": "Saved."}
        return await _defaults_page(request, session, status_code=error.status_code if error else 200, **extra)
    return redirect_to(request, "admin_defaults_page")


# --- audit -----------------------------------------------------------------------------------------

@router.get("/audit", name="admin_audit_page")
async def audit_page(
    request: Request, session: SessionDep, admin: PageAdmin,
    admin_id: str = "", action: str = "", target_user_id: str = "", page: int = 1,
):
    def as_uuid(value: str) -> uuid.UUID | None:
        try:
            return uuid.UUID(value) if value else None
        except ValueError:
            return None

    page = max(page, 1)
    entries = await audit.entries(
        session, admin_id=as_uuid(admin_id), action=action or None, target_user_id=as_uuid(target_user_id),
        page=page, per_page=50,
    )
    admins, _ = await service.list_users(session, role=Role.admin, per_page=200)
    currency = (await billing_service.current_price_list(session)).currency
    for entry in entries:
        entry["changes"] = audit.changes(entry["before"], entry["after"], currency=currency)
        entry["action_label"] = audit.action_label(entry["action"])
    context = {
        "entries": entries, "actions": await audit.actions(session), "action_label": audit.action_label,
        "admins": admins, "page": page,
        "filters": {"admin_id": admin_id, "action": action, "target_user_id": target_user_id},
    }
    return render(request, "admin/audit.html", context, block="entries")
