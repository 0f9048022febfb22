"""Personal API tokens: long-lived bearer tokens for scripts, made and revoked by their owner.

A token reads `df_<scope>_<secret>` (43 url-safe characters of `secrets.token_urlsafe`).
Only the sha256 of the whole string is stored, so the token is shown once; the scope in
its text is covered by that hash (a `df_read_` token edited to `df_write_` matches no row),
which lets the bearer transport refuse a read token's writes before any lookup.

Scopes: `read` (GET, HEAD, OPTIONS) and `write` (everything the account may do). A token
acts as its owner with the owner's current role; it stops working when it expires, is
revoked, or the account is deactivated. Logout and password changes end sessions and JWTs,
not personal tokens (revoke those on the profile page).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from src.auth.models import ApiToken, TokenScope, User
from src.database import utcnow
from src.exceptions import Conflict, NotFound

PREFIX = "df_"
MAX_TOKENS_PER_USER = 50
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LAST_USED_RESOLUTION = timedelta(minutes=1)  # last_used_at is written at most this often


class TokenNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("There is no such API token (it may have been revoked).")


class TooManyTokens(Conflict):
    def __init__(self) -> None:
        super().__init__(f"You have {MAX_TOKENS_PER_USER} API tokens already; revoke one you no longer use.")


@dataclass(frozen=True)
class NewToken:
    row: ApiToken
    token: str  # the only time the plain token exists outside the caller's hands


def is_api_token(token: str | None) -> bool:
    return bool(token) and token.startswith(PREFIX)


def scope_of(token: str) -> TokenScope | None:
    """The scope a token's text names (`df_read_...` -> read), None when it names none."""
    for scope in TokenScope:
        if token.startswith(f"{PREFIX}{scope.value}_"):
            return scope
    return None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def bearer_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def refuse_read_only_writes(request: Request, token: str | None) -> None:
    if is_api_token(token) and scope_of(token) == TokenScope.read and request.method not in SAFE_METHODS:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"This API token has the read scope: it cannot {request.method}. Use a write token.")


class ScopedBearer(OAuth2PasswordBearer):
    """fastapi-users' bearer transport scheme, refusing a read token's POST / PUT / PATCH / DELETE
    on every route that authenticates (the API, the pages, logout)."""

    async def __call__(self, request: Request) -> str | None:
        token = await super().__call__(request)
        refuse_read_only_writes(request, token)
        return token


def refuse_personal_token(request: Request) -> None:
    """Tokens are managed with a login (cookie or JWT), never with a personal token: a leaked
    token must not be able to mint itself successors."""
    if is_api_token(bearer_of(request)):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "API tokens are managed with your login (the profile page, or a JWT from "
                            "/auth/jwt/login), not with an API token.")


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    """The owner of a live token (not expired, not revoked), or None. Marks it used."""
    row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    now = utcnow()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now  # committed with the request's unit of work
    return await session.get(User, row.user_id)


async def create(
    session: AsyncSession, *, user: User, name: str, scope: TokenScope, expires_in_days: int | None = None,
) -> NewToken:
    count = await session.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.user_id == user.id))
    if count >= MAX_TOKENS_PER_USER:
        raise TooManyTokens()
    token = f"{PREFIX}{scope.value}_{secrets.token_urlsafe(32)}"
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    row = ApiToken(user_id=user.id, name=name.strip() or "token", scope=scope, token_hash=hash_token(token),
                   prefix=token[: len(PREFIX) + len(scope.value) + 5], expires_at=expires_at)
    session.add(row)
    await session.flush()
    return NewToken(row=row, token=token)


async def list_for_user(session: AsyncSession, *, user: User) -> list[ApiToken]:
    query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())
    return list((await session.scalars(query)).all())


async def revoke(session: AsyncSession, *, user: User, token_id: uuid.UUID) -> None:
    row = await session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise TokenNotFound()
    await session.delete(row)
    await session.flush()


def is_expired(row: ApiToken, now: datetime | None = None) -> bool:
    return row.expires_at is not None and row.expires_at <= (now or utcnow())
