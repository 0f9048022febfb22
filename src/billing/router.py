"""The user's own billing: balance, ledger history, prices and quota usage."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from src.auth.dependencies import CurrentUser
from src.billing import service
from src.billing.schemas import BalanceRead, LedgerPage, PriceListRead
from src.database import SessionDep
from src.pagination import MAX_PAGE
from src.quotas import service as quota_service

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])


@router.get("/balance", response_model=BalanceRead)
async def balance(session: SessionDep, user: CurrentUser):
    price_list = await service.current_price_list(session)
    return {"balance_cents": await service.balance_cents(session, user_id=user.id), "currency": price_list.currency}


@router.get("/ledger", response_model=LedgerPage)
async def ledger(
    session: SessionDep, user: CurrentUser, page: int = Query(1, ge=1, le=MAX_PAGE), per_page: int = Query(50, ge=1, le=500)
):
    items = await service.ledger(session, user_id=user.id, limit=per_page, offset=(page - 1) * per_page)
    balance_cents = await service.balance_cents(session, user_id=user.id)
    return {"items": items, "balance_cents": balance_cents, "page": page, "per_page": per_page}


@router.get("/prices", response_model=PriceListRead)
async def prices(session: SessionDep, user: CurrentUser):
    return await service.current_price_list(session)


@router.get("/usage")
async def usage(request: Request, session: SessionDep, user: CurrentUser):
    """The user's quotas and what they use now (summed above billing: `app.state.usage`)."""
    quota = await quota_service.effective_quota(session, user_id=user.id)
    return {"quota": vars(quota), "usage": vars(await request.app.state.usage(session, user_id=user.id))}
