"""Account logic shared by the JSON API, the pages and the CLI."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from fastapi.security import OAuth2PasswordRequestForm
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from src.auth.exceptions import BadCredentials, InactiveUser, LoginRateLimited
from src.auth.models import Role, User
from src.auth.schemas import UserCreate
from src.auth.users import UserManager
from src.config import get_settings
from src.database import utcnow


@dataclass(frozen=True)
class LoginLimiter:
    """Fixed-window count of failed logins per client IP and per account, in Redis.

    Shared by every web process; a key expires `window` seconds after its first failure.
    """

    redis: Redis
    max_failures: int
    window: int

    def _keys(self, ip: str, email: str) -> list[str]:
        return [f"login-fail:ip:{ip}", f"login-fail:account:{email.strip().lower()}"]

    async def check(self, ip: str, email: str) -> None:
        for key in self._keys(ip, email):
            count = await self.redis.get(key)
            if count is not None and int(count) >= self.max_failures:
                ttl = await self.redis.ttl(key)
                raise LoginRateLimited(max(int(ttl), 1))

    async def record_failure(self, ip: str, email: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in self._keys(ip, email):
                pipe.set(key, 0, ex=self.window, nx=True)  # the window starts at the first failure
                pipe.incr(key)
            await pipe.execute()

    async def reset_account(self, email: str) -> None:
        await self.redis.delete(self._keys("", email)[1])


def login_limiter(redis: Redis) -> LoginLimiter:
    settings = get_settings()
    return LoginLimiter(redis, settings.login_max_failures, settings.login_window_seconds)


async def authenticate(
    user_manager: UserManager, limiter: LoginLimiter, *, email: str, password: str, ip: str
) -> User:
    """Check the password, counting failures; raise an AuthError with a user-facing message."""
    await limiter.check(ip, email)
    form = OAuth2PasswordRequestForm(username=email, password=password)
    user = await user_manager.authenticate(form)
    if user is None:
        await limiter.record_failure(ip, email)
        raise BadCredentials()
    if not user.is_active:
        raise InactiveUser()
    await limiter.reset_account(email)
    user.last_login_at = utcnow()
    await user_manager.user_db.session.flush()
    return user


async def count_admins(session: AsyncSession) -> int:
    query = select(func.count()).select_from(User).where(User.role == Role.admin, User.is_active)
    return (await session.execute(query)).scalar_one()


async def create_admin(user_manager: UserManager, *, email: str, password: str | None) -> tuple[User, str | None]:
    """Create the admin account, or promote an existing one. Returns the generated password, if any."""
    generated = None
    user = await user_manager.user_db.get_by_email(email)
    if user is None:
        if password is None:
            password = generated = secrets.token_urlsafe(12)
        user = await user_manager.create(UserCreate(email=email, password=password))
    user.role, user.is_active, user.is_verified = Role.admin, True, True
    await user_manager.user_db.session.flush()
    return user, generated
