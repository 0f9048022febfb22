from __future__ import annotations

import uuid
from datetime import datetime

from fastapi_users import schemas
from pydantic import BaseModel, Field

from src.auth.models import Role


class UserRead(schemas.BaseUser[uuid.UUID]):
    role: Role
    created_at: datetime
    last_login_at: datetime | None = None


MAX_PASSWORD_LENGTH = 128  # argon2 over a huge password is a denial of service


class UserCreate(schemas.BaseUserCreate):
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class UserUpdate(schemas.BaseUserUpdate):
    password: str | None = Field(default=None, max_length=MAX_PASSWORD_LENGTH)


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(max_length=MAX_PASSWORD_LENGTH)
