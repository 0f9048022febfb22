"""The `user` table. The role column is the one source of truth for permissions."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from src.database import Base, CreatedAtMixin


class Role(StrEnum):
    user = "user"
    annotator = "annotator"
    admin = "admin"


class User(CreatedAtMixin, Base):
    __tablename__ = "user"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    hashed_password: Mapped[str] = mapped_column(String(1024))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="role", native_enum=False, length=16), default=Role.user
    )
    last_login_at: Mapped[datetime | None]
    cvat_username: Mapped[str | None] = mapped_column(String(150))
    # Embedded in every session / API token; bumping it ends them all (logout, password reset or
    # change, deactivation, role change).
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @property
    def is_superuser(self) -> bool:
        """fastapi-users' notion of an admin, derived from the role (never stored twice)."""
        return self.role == Role.admin


class TokenScope(StrEnum):
    read = "read"  # GET / HEAD / OPTIONS only
    write = "write"  # everything the account may do


class ApiToken(CreatedAtMixin, Base):
    """A personal API token: `Authorization: Bearer df_<scope>_<secret>`. Only the sha256 of the
    whole token is stored; the token itself is shown once, when it is made."""

    __tablename__ = "api_token"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[TokenScope] = mapped_column(Enum(TokenScope, name="token_scope", native_enum=False, length=16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(24))  # the first characters, to tell tokens apart in lists
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
