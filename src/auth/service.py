"""Account logic shared by the JSON API, the pages and the CLI."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from fastapi.security import OAuth2PasswordRequestForm
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from src.auth.exceptions import AuthError, BadCredentials, InactiveUser, LoginRateLimited
from src.auth.models import Role, User
from src.auth.schemas import MAX_PASSWORD_LENGTH, UserCreate, UserUpdate
from src.auth.users import UserManager, password_problem
from src.config import get_settings
from src.database import utcnow


KNOWN_ADDRESS_DAYS = 30  # how long a successful login makes an address "known" for its account


@dataclass(frozen=True)
class LoginLimiter:
    """Fixed-window counts of login attempts in Redis, shared by every web process.

    Two separate limits: per account (`max_failures`) and per client address, all accounts
    together (`ip_max_failures`). An attempt takes a slot in both counters (an atomic INCR in
    one MULTI) *before* the password is checked, so parallel attempts cannot all get through a
    check that reads the counters first; a successful login gives its slots back (its account
    counter is reset, its address slot returned), so only failures stay counted. The address
    limit does not apply to an account that logged in successfully from that address in the
    last 30 days: other accounts' failures there never lock its right password out (its own
    limit still does). A key expires `window` seconds after its first attempt.
    """

    redis: Redis
    max_failures: int
    window: int
    ip_max_failures: int

    @staticmethod
    def _account(email: str) -> str:
        return email.strip().lower()

    def _keys(self, ip: str, email: str) -> tuple[str, str]:
        return f"login-fail:account:{self._account(email)}", f"login-fail:ip:{ip}"

    def _known_key(self, ip: str) -> str:
        return f"login-known:ip:{ip}"

    async def acquire(self, ip: str, email: str) -> tuple[bool, bool]:
        """Take an attempt; LoginRateLimited if over a limit. Returns (counted on the address,
        known address), for `release`."""
        account_key, ip_key = self._keys(ip, email)
        known = bool(await self.redis.sismember(self._known_key(ip), self._account(email)))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(account_key, 0, ex=self.window, nx=True)  # the window starts at the first attempt
            pipe.incr(account_key)
            if not known:
                pipe.set(ip_key, 0, ex=self.window, nx=True)
                pipe.incr(ip_key)
            counts = await pipe.execute()
        if counts[1] > self.max_failures:
            raise LoginRateLimited(await self._ttl(account_key))
        if not known and counts[3] > self.ip_max_failures:
            await self.redis.decr(account_key)  # refused before any password check: not this account's failure
            raise LoginRateLimited(await self._ttl(ip_key))
        return not known, known

    async def _ttl(self, key: str) -> int:
        return max(int(await self.redis.ttl(key)), 1)

    async def succeeded(self, ip: str, email: str, *, counted_on_ip: bool) -> None:
        account_key, ip_key = self._keys(ip, email)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(account_key)
            if counted_on_ip:
                pipe.decr(ip_key)
            pipe.sadd(self._known_key(ip), self._account(email))
            pipe.expire(self._known_key(ip), KNOWN_ADDRESS_DAYS * 86400)
            await pipe.execute()

    async def count_failure(self, email: str) -> None:
        """A wrong password outside login (e.g. the current password of a password change)."""
        account_key, _ = self._keys("", email)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(account_key, 0, ex=self.window, nx=True)
            pipe.incr(account_key)
            counts = await pipe.execute()
        if counts[1] > self.max_failures:
            raise LoginRateLimited(await self._ttl(account_key))

    async def check_account(self, email: str) -> None:
        account_key, _ = self._keys("", email)
        count = await self.redis.get(account_key)
        if count is not None and int(count) >= self.max_failures:
            raise LoginRateLimited(await self._ttl(account_key))


def login_limiter(redis: Redis) -> LoginLimiter:
    settings = get_settings()
    ip_limit = settings.login_ip_max_failures or 5 * settings.login_max_failures
    return LoginLimiter(redis, settings.login_max_failures, settings.login_window_seconds, ip_limit)


async def authenticate(
    user_manager: UserManager, limiter: LoginLimiter, *, email: str, password: str, ip: str
) -> User:
    """Check the password, counting the attempt first; raise an AuthError with a user-facing message."""
    counted_on_ip, _ = await limiter.acquire(ip, email)
    user = None
    if len(password) <= MAX_PASSWORD_LENGTH and "\x00" not in email:  # no argon2 over a huge input
        form = OAuth2PasswordRequestForm(username=email, password=password)
        user = await user_manager.authenticate(form)
    if user is None:
        raise BadCredentials()
    if not user.is_active:
        raise InactiveUser()
    await limiter.succeeded(ip, email, counted_on_ip=counted_on_ip)
    user.last_login_at = utcnow()
    await user_manager.user_db.session.flush()
    return user


def end_sessions(user: User) -> None:
    """Every session cookie and API token of the user stops working at its next request
    (the token version in them no longer matches). The caller's unit of work commits."""
    user.token_version = (user.token_version or 0) + 1


async def change_password(
    user_manager: UserManager, limiter: LoginLimiter, *, user: User, current: str, new: str
) -> User:
    """Change the password after checking the current one (wrong ones count as failed logins);
    ends every other session (the caller issues the current one a fresh token)."""
    from fastapi_users import exceptions as fu_exceptions

    await limiter.check_account(user.email)
    ok = False
    if len(current) <= MAX_PASSWORD_LENGTH:
        ok, _ = user_manager.password_helper.verify_and_update(current, user.hashed_password)
    if not ok:
        await limiter.count_failure(user.email)
        raise AuthError("The current password is wrong.")
    if new == current:
        raise AuthError("The new password is the same as the current one.")
    problem = password_problem(new, user.email)
    if problem:
        raise AuthError(problem)
    try:
        return await user_manager.update(UserUpdate(password=new), user, safe=True)
    except fu_exceptions.InvalidPasswordException as error:
        raise AuthError(str(error.reason)) from error


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
    if user.role != Role.admin or not user.is_active:
        end_sessions(user)  # promoted or reactivated: sessions from before the change end
    user.role, user.is_active, user.is_verified = Role.admin, True, True
    await user_manager.user_db.session.flush()
    return user, generated
