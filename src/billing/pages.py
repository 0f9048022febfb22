"""The user's billing page: balance, quota usage and the ledger."""

from __future__ import annotations

from fastapi import APIRouter, Request

from src.auth.dependencies import PageUser
from src.billing import service
from src.database import SessionDep
from src.quotas import service as quota_service
from src.templating import render

router = APIRouter(include_in_schema=False)
PER_PAGE = 50


@router.get("/billing", name="billing_page")
async def billing_page(request: Request, session: SessionDep, user: PageUser, page: int = 1):
    page = max(page, 1)
    prices = await service.current_price_list(session)
    context = {
        "prices": prices,
        "currency": prices.currency,
        "balance_cents": await service.balance_cents(session, user_id=user.id),
        "quota": await quota_service.effective_quota(session, user_id=user.id),
        "usage": await request.app.state.usage(session, user_id=user.id),  # summed above billing
        "ledger": await service.ledger(session, user_id=user.id, limit=PER_PAGE, offset=(page - 1) * PER_PAGE),
        "page": page,
        "per_page": PER_PAGE,
    }
    return render(request, "billing/billing.html", context, block="ledger")
