"""The schema comes only from Alembic: upgrade an empty database to head and back to base."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from sqlalchemy.engine import make_url

from src.cli import migrate
from src.models import Base
from tests.conftest import _plain_dsn, _with_database


async def _tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row["tablename"] for row in rows}
    finally:
        await conn.close()


async def test_upgrade_empty_database_then_downgrade(services):
    database_url, _ = services
    name = f"forge_migrations_{uuid.uuid4().hex[:8]}"
    admin_dsn = _plain_dsn(_with_database(database_url, make_url(database_url).database))
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = _with_database(database_url, name)
        await asyncio.to_thread(migrate, database_url=url)
        tables = await _tables(_plain_dsn(url))
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
        await asyncio.to_thread(migrate, "base", down=True, database_url=url)
        assert await _tables(_plain_dsn(url)) == {"alembic_version"}
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
