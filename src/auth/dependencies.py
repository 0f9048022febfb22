"""Who is calling: typed aliases over fastapi-users' current_user."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from src.auth.models import Role, User
from src.auth.users import fastapi_users

current_active_user = fastapi_users.current_user(active=True)
optional_user = fastapi_users.current_user(active=True, optional=True)

CurrentUser = Annotated[User, Depends(current_active_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]


def require_role(*roles: Role):
    async def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "You do not have permission to do this.")
        return user

    return check


AdminUser = Annotated[User, Depends(require_role(Role.admin))]
ReviewerUser = Annotated[User, Depends(require_role(Role.annotator, Role.admin))]


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to /login."""

    def __init__(self, next_url: str):
        self.next_url = next_url


@dataclass(frozen=True)
class NavUser:
    """What the page layout shows of the user: a plain snapshot that outlives the session."""

    id: uuid.UUID
    email: str
    role: Role


async def page_user(request: Request, user: OptionalUser) -> User:
    if user is None:
        raise LoginRequired(request.url.path)
    request.state.user = NavUser(user.id, user.email, user.role)
    return user


async def page_admin(user: Annotated[User, Depends(page_user)]) -> User:
    if user.role != Role.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "This page is for administrators.")
    return user


async def page_reviewer(user: Annotated[User, Depends(page_user)]) -> User:
    if user.role not in (Role.annotator, Role.admin):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "This page is for annotators.")
    return user


PageUser = Annotated[User, Depends(page_user)]
PageAdmin = Annotated[User, Depends(page_admin)]
PageReviewer = Annotated[User, Depends(page_reviewer)]
