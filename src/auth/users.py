"""fastapi-users wiring: the user manager and the two auth backends.

- cookie backend (pages): HttpOnly, SameSite=Lax cookie carrying an RS256 JWT;
- bearer backend (scripts, API): the same RS256 JWT in `Authorization: Bearer`, or a
  personal API token (`df_<scope>_...`, src/auth/tokens.py; bearer only, never in the cookie).
Both verify JWTs with the public key in certs/, so an HS256 or tampered token is refused.

A new account is also the business of domains above auth (billing grants its starting
balance). auth does not import them: the user manager runs the `AfterRegister` steps it is
given, and whoever builds it names them (`app.state.after_register`, set by
src.main.create_app; src.cli.create_admin passes the same).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import jwt
from fastapi import Depends, Request
from fastapi_users import exceptions as fu_exceptions
from fastapi_users.jwt import decode_jwt, generate_jwt
from fastapi_users import BaseUserManager, FastAPIUsers, InvalidPasswordException, UUIDIDMixin
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, CookieTransport, JWTStrategy
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase

from src.auth.keys import KeyPair, ensure_keys
from src.auth.models import User
from src.auth.schemas import MAX_PASSWORD_LENGTH
from src.config import get_settings
from src.database import SessionDep, open_session
from sqlalchemy.ext.asyncio import AsyncSession
from src.mail import send_mail

SESSION_COOKIE = "forge_session"
MIN_PASSWORD_LENGTH = 8
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


@lru_cache
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords (lower case; see the file's header)."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def password_problem(password: str, email: str | None) -> str | None:
    """Why a new password is refused, or None (the rules shared by every form, API and the CLI)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Password must be at most {MAX_PASSWORD_LENGTH} characters."
    if "\x00" in password:
        return "Password must not contain NUL characters."
    if email and email.split("@")[0].lower() in password.lower():
        return "Password must not contain your e-mail address."
    if password.lower() in common_passwords():
        return "This password is one of the most common ones; choose one that is harder to guess."
    return None


class AfterRegister(Protocol):
    """A step another domain takes for every new account, in the session that created it
    (billing.service.grant_starting_balance). It only flushes; the user manager commits."""

    async def __call__(self, session: AsyncSession, *, user_id: uuid.UUID) -> None: ...


@lru_cache
def jwt_keys() -> KeyPair:
    return ensure_keys(get_settings().certs_dir)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    def __init__(self, user_db: SQLAlchemyUserDatabase, *, after_register: Sequence[AfterRegister]) -> None:
        super().__init__(user_db)
        self.after_register = tuple(after_register)

    @property
    def reset_password_token_secret(self) -> str:  # type: ignore[override]
        return get_settings().secret_key.get_secret_value()

    verification_token_secret = reset_password_token_secret

    async def validate_password(self, password: str, user) -> None:
        problem = password_problem(password, user.email)
        if problem:
            raise InvalidPasswordException(problem)

    async def _update(self, user: User, update_dict: dict) -> User:
        # A new password ends every session and API token of the account (reset, change).
        if update_dict.get("password") is not None:
            update_dict = {**update_dict, "token_version": (user.token_version or 0) + 1}
        return await super()._update(user, update_dict)

    async def on_after_register(self, user: User, request: Request | None = None) -> None:
        # The other domains' steps (the starting balance, a `top_up` ledger row); the user row is already committed.
        for step in self.after_register:
            await step(self.user_db.session, user_id=user.id)
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


async def get_user_manager(request: Request, user_db=Depends(get_user_db)) -> AsyncIterator[UserManager]:
    yield UserManager(user_db, after_register=request.app.state.after_register)


async def user_manager_in_unit_of_work(session: SessionDep, manager=Depends(get_user_manager)) -> UserManager:
    """The user manager over the request's unit of work (committed when the endpoint returns)."""
    return manager


class RevocableJWTStrategy(JWTStrategy):
    """fastapi-users' JWT strategy, with the user's token version in the token (`ver`): a token
    whose version is not the account's current one is refused, so bumping it ends every session."""

    async def read_token(self, token: str | None, user_manager) -> User | None:
        if token is None:
            return None
        try:
            data = decode_jwt(token, self.decode_key, self.token_audience, algorithms=[self.algorithm])
        except jwt.PyJWTError:
            return None
        user_id, version = data.get("sub"), data.get("ver")
        if user_id is None or not isinstance(version, int) or isinstance(version, bool):
            return None
        try:
            user = await user_manager.get(user_manager.parse_id(user_id))
        except (fu_exceptions.UserNotExists, fu_exceptions.InvalidID):
            return None
        return user if user.token_version == version else None

    async def write_token(self, user: User) -> str:
        data = {"sub": str(user.id), "aud": self.token_audience, "ver": user.token_version or 0}
        return generate_jwt(data, self.encode_key, self.lifetime_seconds, algorithm=self.algorithm)


class JWTOrApiTokenStrategy(RevocableJWTStrategy):
    """The bearer backend's strategy: a personal API token (looked up by its sha256), else a JWT."""

    async def read_token(self, token: str | None, user_manager) -> User | None:
        from src.auth import tokens

        if tokens.is_api_token(token):
            return await tokens.user_for_token(user_manager.user_db.session, token)
        return await super().read_token(token, user_manager)


@lru_cache(maxsize=8)
def _strategy_for(strategy_class: type[RevocableJWTStrategy], certs_dir: Path, lifetime_seconds: int) -> JWTStrategy:
    """One strategy per key pair and lifetime, with the keys loaded once: PyJWT takes key
    objects as well as PEM text, and parsing the PEM (and reading certs/) on every request was
    a good part of what a page cost (bench/load.py). Rotating the keys takes a restart, as it
    did: every process must sign and check with the same pair."""
    from cryptography.hazmat.primitives import serialization

    keys = ensure_keys(certs_dir)
    return strategy_class(
        secret=serialization.load_pem_private_key(keys.private_pem.encode(), password=None),  # type: ignore[arg-type]
        public_key=serialization.load_pem_public_key(keys.public_pem.encode()),  # type: ignore[arg-type]
        algorithm="RS256",
        lifetime_seconds=lifetime_seconds,
    )


def _strategy(strategy_class: type[RevocableJWTStrategy]) -> JWTStrategy:
    settings = get_settings()
    return _strategy_for(strategy_class, settings.certs_dir, settings.jwt_lifetime_seconds)


# async: a plain function dependency would run in a worker thread on every request
async def get_jwt_strategy() -> JWTStrategy:
    return _strategy(RevocableJWTStrategy)


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
async def get_bearer_strategy() -> JWTStrategy:
    return _strategy(JWTOrApiTokenStrategy)


def _bearer_transport() -> BearerTransport:
    from src.auth.tokens import ScopedBearer

    transport = BearerTransport(tokenUrl="auth/jwt/login")
    transport.scheme = ScopedBearer("auth/jwt/login", auto_error=False)  # read tokens cannot write
    return transport


bearer_backend = AuthenticationBackend(name="bearer", transport=_bearer_transport(), get_strategy=get_bearer_strategy)

fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [cookie_backend, bearer_backend])
