"""fastapi-users wiring: the user manager and the two auth backends.

- cookie backend (pages): HttpOnly, SameSite=Lax cookie carrying an RS256 JWT;
- bearer backend (scripts, API): the same RS256 JWT in `Authorization: Bearer`.
Both verify with the public key in certs/, so an HS256 or tampered token is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from functools import lru_cache

from fastapi import Depends, Request
from fastapi_users import BaseUserManager, FastAPIUsers, InvalidPasswordException, UUIDIDMixin
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, CookieTransport, JWTStrategy
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase

from src.auth.keys import KeyPair, ensure_keys
from src.auth.models import User
from src.config import get_settings
from src.database import SessionDep, open_session
from sqlalchemy.ext.asyncio import AsyncSession
from src.mail import send_mail

SESSION_COOKIE = "forge_session"
MIN_PASSWORD_LENGTH = 8


@lru_cache
def jwt_keys() -> KeyPair:
    return ensure_keys(get_settings().certs_dir)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    @property
    def reset_password_token_secret(self) -> str:  # type: ignore[override]
        return get_settings().secret_key.get_secret_value()

    verification_token_secret = reset_password_token_secret

    async def validate_password(self, password: str, user) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidPasswordException(f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")
        if user.email and user.email.split("@")[0].lower() in password.lower():
            raise InvalidPasswordException("Password must not contain your e-mail address.")

    async def on_after_register(self, user: User, request: Request | None = None) -> None:
        from src.billing import service as billing_service  # billing imports auth: import late

        # The starting balance (an admin setting) as a `top_up` ledger row; the user row is already committed.
        await billing_service.grant_starting_balance(self.user_db.session, user_id=user.id)
        await self.user_db.session.commit()
        await self.request_verify(user, request)

    async def on_after_request_verify(self, user: User, token: str, request: Request | None = None) -> None:
        link = f"{get_settings().base_url}/verify?token={token}"
        await send_mail(to=user.email, subject="Confirm your Data Forge e-mail", body=f"Open {link}")

    async def on_after_forgot_password(self, user: User, token: str, request: Request | None = None) -> None:
        link = f"{get_settings().base_url}/reset-password?token={token}"
        await send_mail(to=user.email, subject="Reset your Data Forge password", body=f"Open {link}")


async def get_user_db(session: AsyncSession = Depends(open_session)) -> AsyncIterator[SQLAlchemyUserDatabase]:
    yield SQLAlchemyUserDatabase(session, User)


async def get_user_manager(user_db=Depends(get_user_db)) -> AsyncIterator[UserManager]:
    yield UserManager(user_db)


async def user_manager_in_unit_of_work(session: SessionDep, manager=Depends(get_user_manager)) -> UserManager:
    """The user manager over the request's unit of work (committed when the endpoint returns)."""
    return manager


def get_jwt_strategy() -> JWTStrategy:
    keys = jwt_keys()
    return JWTStrategy(
        secret=keys.private_pem,
        public_key=keys.public_pem,
        algorithm="RS256",
        lifetime_seconds=get_settings().jwt_lifetime_seconds,
    )


cookie_backend = AuthenticationBackend(
    name="cookie",
    transport=CookieTransport(
        cookie_name=SESSION_COOKIE,
        cookie_max_age=None,  # a browser session cookie; the JWT inside still expires
        cookie_secure=get_settings().cookie_secure,
        cookie_httponly=True,
        cookie_samesite="lax",
    ),
    get_strategy=get_jwt_strategy,
)
bearer_backend = AuthenticationBackend(
    name="bearer",
    transport=BearerTransport(tokenUrl="auth/jwt/login"),
    get_strategy=get_jwt_strategy,
)

fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [cookie_backend, bearer_backend])
