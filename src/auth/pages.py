"""Account pages. Forms post back to the same URL; errors come back inline (an HTMX
fragment of the form block, or the whole page for a plain post)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi_users import exceptions as fu_exceptions
from fastapi_users.authentication import Strategy
from pydantic import ValidationError

import uuid

from src.auth import service, tokens
from src.auth.dependencies import OptionalUser, PageUser
from src.database import SessionDep
from src.auth.exceptions import AuthError
from src.auth.router import UserManagerDep
from src.auth.schemas import MAX_PASSWORD_LENGTH, ApiTokenCreate, UserCreate
from src.auth.users import cookie_backend
from src.pages import attempt, form_model
from src.security import client_ip, safe_next
from src.templating import path_for, redirect, redirect_to, render

router = APIRouter(include_in_schema=False)
StrategyDep = Annotated[Strategy, Depends(cookie_backend.get_strategy)]
TOKEN_WORDS = {"labels": {"name": "", "scope": "", "expires_in_days": "Expiry"}, "messages": {
    "name": "Give the token a name (what it is for).", "scope": "Choose the read or the write scope.",
    "expires_in_days": "a number of days from 1 to 3650, or empty for a token that does not expire"}}


def _safe_next(next_url: str | None) -> str:
    # Only paths on this site, on the plain and the HTMX (HX-Redirect) path alike.
    return safe_next(next_url)


async def _logged_in_redirect(request: Request, strategy: Strategy, user, url: str):
    login_response = await cookie_backend.login(strategy, user)
    response = redirect(request, url)
    response.headers.append("set-cookie", login_response.headers["set-cookie"])
    return response


@router.get("/", name="home")
async def home(request: Request, user: OptionalUser):
    if user is None:
        return redirect_to(request, "login_page")
    return redirect_to(request, "videos_page")


@router.get("/login", name="login_page")
async def login_page(request: Request, next: str | None = None):
    return render(request, "auth/login.html", {"next": _safe_next(next)})


@router.post("/login", name="login_submit")
async def login_submit(
    request: Request,
    user_manager: UserManagerDep,
    strategy: StrategyDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
):
    try:
        user = await service.authenticate(
            user_manager, service.login_limiter(request.app.state.redis),
            email=email, password=password, ip=client_ip(request),
        )
    except AuthError as error:
        context = {"error": error.message, "email": email, "next": _safe_next(next)}
        return render(request, "auth/login.html", context, block="form", status_code=error.status_code)
    return await _logged_in_redirect(request, strategy, user, _safe_next(next))


@router.get("/register", name="register_page")
async def register_page(request: Request):
    return render(request, "auth/register.html", {"errors": {}})


@router.post("/register", name="register_submit")
async def register_submit(
    request: Request,
    user_manager: UserManagerDep,
    strategy: StrategyDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
):
    errors: dict[str, str] = {}
    try:
        user = await user_manager.create(UserCreate(email=email, password=password), safe=True, request=request)
    except ValidationError as error:
        fields = {str(e["loc"][0]) for e in error.errors() if e.get("loc")}
        if "password" in fields:
            errors["password"] = f"Password must be at most {MAX_PASSWORD_LENGTH} characters."
        if "email" in fields or not fields:
            errors["email"] = "Enter a valid e-mail address."
    except fu_exceptions.UserAlreadyExists:
        errors["email"] = "An account with this e-mail already exists. Log in or reset your password."
    except fu_exceptions.InvalidPasswordException as error:
        errors["password"] = str(error.reason)
    if errors:
        return render(request, "auth/register.html", {"errors": errors, "email": email}, block="form", status_code=422)
    await service.login_limiter(request.app.state.redis).succeeded(client_ip(request), user.email, counted_on_ip=False)
    return await _logged_in_redirect(request, strategy, user, path_for(request, "profile_page"))


@router.post("/logout", name="logout_submit")
async def logout(request: Request, session: SessionDep, user: OptionalUser):
    if user is not None:
        service.end_sessions(user)  # this cookie, and every other session and token of the account
    response = redirect_to(request, "login_page")
    response.delete_cookie(cookie_backend.transport.cookie_name, path="/")
    return response


@router.get("/forgot-password", name="forgot_password_page")
async def forgot_password_page(request: Request):
    return render(request, "auth/forgot_password.html")


@router.post("/forgot-password", name="forgot_password_submit")
async def forgot_password_submit(request: Request, user_manager: UserManagerDep, email: Annotated[str, Form()] = ""):
    try:
        user = await user_manager.get_by_email(email.strip())
        await user_manager.forgot_password(user, request)
    except (fu_exceptions.UserNotExists, fu_exceptions.UserInactive):
        pass  # same answer either way: do not reveal which e-mails have accounts
    return render(request, "auth/forgot_password.html", {"sent": True}, block="form")


@router.get("/reset-password", name="reset_password_page")
async def reset_password_page(request: Request, token: str = ""):
    return render(request, "auth/reset_password.html", {"token": token})


@router.post("/reset-password", name="reset_password_submit")
async def reset_password_submit(
    request: Request,
    user_manager: UserManagerDep,
    token: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
):
    error = None
    try:
        await user_manager.reset_password(token, password, request)
    except (fu_exceptions.InvalidResetPasswordToken, fu_exceptions.UserInactive, fu_exceptions.UserNotExists):
        error = "This reset link is invalid or has expired. Ask for a new one."
    except fu_exceptions.InvalidPasswordException as exc:
        error = str(exc.reason)
    context = {"token": token, "error": error, "done": error is None}
    return render(request, "auth/reset_password.html", context, block="form", status_code=400 if error else 200)


@router.get("/verify", name="verify_page")
async def verify_page(request: Request, user_manager: UserManagerDep, token: str = ""):
    try:
        await user_manager.verify(token, request)
        message = "Your e-mail address is confirmed."
    except fu_exceptions.UserAlreadyVerified:
        message = "Your e-mail address was already confirmed."
    except (fu_exceptions.InvalidVerifyToken, fu_exceptions.UserNotExists):
        message = "This confirmation link is invalid or has expired."
    return render(request, "auth/message.html", {"title": "E-mail confirmation", "message": message})


@router.get("/profile", name="profile_page")
async def profile_page(request: Request, user: PageUser, session: SessionDep):
    return render(request, "auth/profile.html", {"profile": user, "tokens": await tokens.list_for_user(session, user=user)})


async def _tokens_block(request: Request, session, user, status_code: int = 200, **context):
    context = {"profile": user, "tokens": await tokens.list_for_user(session, user=user), **context}
    return render(request, "auth/profile.html", context, block="tokens", status_code=status_code)


@router.post("/profile/tokens", name="create_token_page")
async def create_token_page(
    request: Request, user: PageUser, session: SessionDep,
    name: Annotated[str, Form(max_length=100)] = "", scope: Annotated[str, Form()] = "read",
    expires_in_days: Annotated[str, Form()] = "",
):
    """A personal API token, shown once in the answer."""
    tokens.refuse_personal_token(request)

    async def create():  # the form is checked by the API's schema (ApiTokenCreate), in the page's words
        fields = {"name": name.strip(), "scope": scope, "expires_in_days": expires_in_days.strip() or None}
        body = form_model(ApiTokenCreate, fields, **TOKEN_WORDS)
        return await tokens.create(session, user=user, name=body.name, scope=body.scope,
                                   expires_in_days=body.expires_in_days)

    outcome = await attempt(session, create())
    if error := outcome.error:
        return await _tokens_block(request, session, user, error.status_code, token_error=error.message, token_name=name)
    made = outcome.value
    return await _tokens_block(request, session, user, new_token=made.token, new_token_name=made.row.name)


@router.post("/profile/tokens/{token_id}/revoke", name="revoke_token_page")
async def revoke_token_page(request: Request, token_id: uuid.UUID, user: PageUser, session: SessionDep):
    tokens.refuse_personal_token(request)
    await tokens.revoke(session, user=user, token_id=token_id)
    return await _tokens_block(request, session, user, token_revoked=True)


@router.post("/profile/password", name="change_password")
async def change_password(
    request: Request,
    user: PageUser,
    user_manager: UserManagerDep,
    strategy: StrategyDep,
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    confirm_password: Annotated[str, Form()] = "",
):
    """Current password + new one (twice); every other session and token of the account ends,
    this browser gets a fresh session cookie."""
    try:
        if new_password != confirm_password:
            raise AuthError("The two new passwords differ.")
        user = await service.change_password(
            user_manager, service.login_limiter(request.app.state.redis), user=user,
            current=current_password, new=new_password,
        )
    except AuthError as error:
        context = {"profile": user, "password_error": error.message}
        return render(request, "auth/profile.html", context, block="password", status_code=error.status_code)
    response = render(request, "auth/profile.html", {"profile": user, "password_changed": True}, block="password")
    login_response = await cookie_backend.login(strategy, user)
    response.headers.append("set-cookie", login_response.headers["set-cookie"])
    return response


@router.post("/profile/request-verify", name="request_verify")
async def request_verify(request: Request, user: PageUser, user_manager: UserManagerDep):
    if not user.is_verified:
        await user_manager.request_verify(user, request)
    return render(request, "auth/profile.html", {"profile": user, "verify_sent": True}, block="verify")
