from __future__ import annotations

import uuid
from datetime import datetime

from fastapi_users import schemas

from src.auth.models import Role


class UserRead(schemas.BaseUser[uuid.UUID]):
    role: Role
    created_at: datetime
    last_login_at: datetime | None = None


class UserCreate(schemas.BaseUserCreate):
    pass


class UserUpdate(schemas.BaseUserUpdate):
    pass
