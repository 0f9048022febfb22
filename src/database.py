"""SQLAlchemy 2 async: the declarative Base, the engine and the unit-of-work session.

A request or a job opens one session and commits once at the end; services only flush.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from src.config import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


def utcnow() -> datetime:
    return datetime.now(UTC)


class CreatedAtMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def asyncpg_url(url: str) -> str:
    """`postgresql://...` (what PostgreSQL tools print) -> the asyncpg dialect URL."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got {url!r}")


def create_engine(url: str) -> AsyncEngine:
    settings = get_settings()
    # The pool is sized for the requests one web process serves at once: with SQLAlchemy's
    # default (5 kept), 50 back-to-back users opened and closed a PostgreSQL connection on most
    # requests (bench/load.py: p99 1.5 s idle, 4.4 s at worst for /health).
    engine = create_async_engine(asyncpg_url(url), pool_size=settings.database_pool_size,
                                 max_overflow=settings.database_max_overflow)
    event.listen(engine.sync_engine, "checkout", _closed_is_gone)
    return engine


def _closed_is_gone(dbapi_connection, connection_record, connection_proxy) -> None:
    """The pool's check of a connection it hands out: one asyncpg already saw closed (a
    PostgreSQL restart or a killed backend closes the socket, and asyncpg notices at once) is
    replaced by a fresh one, so the first request after a quiet restart succeeds. It costs no
    round trip; SQLAlchemy's pre-ping (a ``SELECT 1`` on every checkout) was about 7% of the web
    process's samples in a py-spy profile under bench/load.py. A connection dead without a close (a network cut) fails its
    first query instead, which invalidates the pool (a 503, then fresh connections)."""
    raw = getattr(dbapi_connection, "driver_connection", None)
    if raw is not None and raw.is_closed():
        raise exc.DisconnectionError("the PostgreSQL connection was closed")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def on_commit(session: AsyncSession, action: Callable[[], Awaitable[Any]]) -> None:
    """Run `action` once this session's unit of work has committed (e.g. enqueue a job that
    must see the rows just written). Dropped if the unit of work rolls back."""
    session.info.setdefault("on_commit", []).append(action)


@asynccontextmanager
async def committing(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Commit once when the block ends without an error, roll back otherwise; then run the
    `on_commit` actions."""
    try:
        yield session
        await session.commit()
    except BaseException:
        session.info.pop("on_commit", None)
        await session.rollback()
        raise
    for action in session.info.pop("on_commit", []):
        await action()


@asynccontextmanager
async def unit_of_work(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A job's or a script's one session and its single commit."""
    async with sessionmaker() as session, committing(session):
        yield session


async def open_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session (shared, through FastAPI's dependency cache, with fastapi-users)."""
    async with request.app.state.sessionmaker() as session:
        yield session  # closing rolls back whatever was not committed


async def get_session(session: AsyncSession = Depends(open_session)) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: commit once when the endpoint returns, roll back if it raised."""
    async with committing(session):
        yield session


# scope="function": the commit runs before the response is sent, so a failed commit is never a 200.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
