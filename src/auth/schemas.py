from __future__ import annotations

import uuid
from datetime import datetime

from fastapi_users import schemas
from pydantic import BaseModel, ConfigDict, Field

from src.auth.models import Role, TokenScope


class UserRead(schemas.BaseUser[uuid.UUID]):
    role: Role
    created_at: datetime
    last_login_at: datetime | None = None


MAX_PASSWORD_LENGTH = 128  # argon2 over a huge password is a denial of service
MIN_PASSWORD_LENGTH = 8


class UserCreate(schemas.BaseUserCreate):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    # minLength documents the rule that validate_password enforces (a 400 saying why)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH, json_schema_extra={"minLength": MIN_PASSWORD_LENGTH})


class UserUpdate(schemas.BaseUserUpdate):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    password: str | None = Field(default=None, max_length=MAX_PASSWORD_LENGTH)


class ApiTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="what the token is for, e.g. the script's name")
    scope: TokenScope = Field(TokenScope.read, description="read: GET/HEAD only; write: everything the account may do")
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="unset: the token does not expire")


class ApiTokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    scope: TokenScope
    prefix: str = Field(description="the token's first characters, to tell tokens apart")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class ApiTokenCreated(ApiTokenRead):
    token: str = Field(description="the token itself: shown this once, only its hash is stored")


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    current_password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(max_length=MAX_PASSWORD_LENGTH)
