"""Account endpoints: /auth/* (fastapi-users) and /api/v1/users/me.

Login is our own thin route over fastapi-users' backend.login so that every attempt is
counted (rate limit) before the password is checked; logout ends every session and token of
the account (the token version in them is bumped).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from fastapi_users.authentication import AuthenticationBackend, Strategy

import uuid

from src.auth import service, tokens
from src.auth.dependencies import CurrentUser
from src.auth.schemas import ApiTokenCreate, ApiTokenCreated, ApiTokenRead, UserCreate, UserRead
from src.auth.users import UserManager, bearer_backend, cookie_backend, fastapi_users, user_manager_in_unit_of_work
from src.database import SessionDep
from src.security import client_ip

UserManagerDep = Annotated[UserManager, Depends(user_manager_in_unit_of_work, scope="function")]
PasswordForm = Annotated[OAuth2PasswordRequestForm, Depends()]


def _login_route(backend: AuthenticationBackend):
    async def login(
        request: Request,
        form: PasswordForm,
        user_manager: UserManagerDep,
        strategy: Strategy = Depends(backend.get_strategy),
    ) -> Response:
        user = await service.authenticate(
            user_manager,
            service.login_limiter(request.app.state.redis),
            email=form.username,
            password=form.password,
            ip=client_ip(request),
        )
        return await backend.login(strategy, user)

    return login


def _logout_route(backend: AuthenticationBackend):
    current = fastapi_users.authenticator.current_user_token(active=True)

    async def logout(
        session: SessionDep, user_token=Depends(current), strategy: Strategy = Depends(backend.get_strategy)
    ) -> Response:
        user, token = user_token
        service.end_sessions(user)  # this token and every other one of the account stop working
        return await backend.logout(strategy, user, token)

    return logout


auth_router = APIRouter(prefix="/auth", tags=["auth"])
LOGIN_ERRORS = {400: {"description": "wrong e-mail or password, or a deactivated account"},
                429: {"description": "too many failed logins: retry after `Retry-After` seconds"}}
auth_router.add_api_route("/login", _login_route(cookie_backend), methods=["POST"], status_code=204,
                          responses={**LOGIN_ERRORS, 403: {"description": "no CSRF token (login CSRF)"}},
                          summary="Log in with a form (username = e-mail); sets the session cookie")
auth_router.add_api_route("/logout", _logout_route(cookie_backend), methods=["POST"], status_code=204,
                          summary="Log out: clears the session cookie")
auth_router.add_api_route("/jwt/login", _login_route(bearer_backend), methods=["POST"], responses=LOGIN_ERRORS,
                          summary="Log in with a form; returns a bearer token for scripts")
auth_router.add_api_route("/jwt/logout", _logout_route(bearer_backend), methods=["POST"], status_code=204,
                          summary="Log out: ends every session and token of the account")
auth_router.include_router(fastapi_users.get_register_router(UserRead, UserCreate))
auth_router.include_router(fastapi_users.get_reset_password_router())
auth_router.include_router(fastapi_users.get_verify_router(UserRead))

users_router = APIRouter(prefix="/api/v1/users", tags=["users"])


@users_router.get("/me", response_model=UserRead)
async def read_me(user: CurrentUser):
    return user


LoginOnly = [Depends(tokens.refuse_personal_token)]


@users_router.get("/me/tokens", response_model=list[ApiTokenRead], dependencies=LoginOnly)
async def list_tokens(session: SessionDep, user: CurrentUser):
    """My personal API tokens (never the tokens themselves: only their first characters)."""
    return await tokens.list_for_user(session, user=user)


@users_router.post("/me/tokens", status_code=201, response_model=ApiTokenCreated, dependencies=LoginOnly)
async def create_token(body: ApiTokenCreate, session: SessionDep, user: CurrentUser):
    """A personal API token for `Authorization: Bearer <token>`; `token` is in this answer only.
    Managed with a login (cookie or JWT), not with another API token."""
    made = await tokens.create(session, user=user, name=body.name, scope=body.scope,
                               expires_in_days=body.expires_in_days)
    return ApiTokenCreated(**ApiTokenRead.model_validate(made.row).model_dump(), token=made.token)


@users_router.delete("/me/tokens/{token_id}", status_code=204, dependencies=LoginOnly)
async def revoke_token(token_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    """Revoke a token: it stops working at once."""
    await tokens.revoke(session, user=user, token_id=token_id)
