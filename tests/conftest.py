"""Real services for the whole suite.

PostgreSQL and Redis come from DATABASE_URL / REDIS_URL when set, otherwise embedded
ones are started once per test session (src/embedded.py). The schema is made by the
Alembic migrations in a fresh database; after each test every table is truncated and
Redis flushed, so tests see an empty platform and may commit freely (as the app does).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="forge-test-"))
# Before any src import: settings are read from the environment.
os.environ.update({
    "ENVIRONMENT": "test",
    "VAR_DIR": str(_TMP / "var"),
    "CERTS_DIR": str(_TMP / "certs"),
    "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
    "LOGIN_WINDOW_SECONDS": "6",
    "LOGIN_MAX_FAILURES": "3",  # few failures, so the window cannot lapse while they are made
    "WORKER_PROCESSES": "1",
})
_EXTERNAL_DB = os.environ.get("DATABASE_URL")
_EXTERNAL_REDIS = os.environ.get("REDIS_URL")

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from src.config import get_settings  # noqa: E402

SHARED_DATA = Path(os.environ.get("FORGE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _with_database(url: str, name: str) -> str:
    """Swap the database name in a PostgreSQL URL (keeping ?host=... for unix sockets)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _run_outside_loop(coro):
    """asyncio.run in a thread: safe even while pytest-asyncio's session loop is running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _redis_of_this_process(url: str) -> str:
    """An external Redis shared by test processes (pytest-xdist): each takes a database of its
    own (gw0 -> 1, gw1 -> 2, ...), since tests flush theirs and arq queues live per database."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{int(worker[2:]) + 1}"))


@pytest.fixture(scope="session")
def services():
    """(database_url, redis_url) of a fresh test database and a Redis database."""
    from src.embedded import EmbeddedPostgres, EmbeddedRedis

    started = []
    base_db = _EXTERNAL_DB
    if not base_db:
        postgres = EmbeddedPostgres(_TMP / "postgres")
        base_db = postgres.start()
        started.append(postgres)
    redis_url = _EXTERNAL_REDIS and _redis_of_this_process(_EXTERNAL_REDIS)
    if not redis_url:
        redis = EmbeddedRedis(_TMP / "redis")
        redis_url = redis.start()
        started.append(redis)

    name = f"forge_test_{uuid.uuid4().hex[:8]}"

    async def create_db():
        conn = await asyncpg.connect(_plain_dsn(base_db))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop_db():
        conn = await asyncpg.connect(_plain_dsn(base_db))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    _run_outside_loop(create_db())
    database_url = _with_database(base_db, name)
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url
    get_settings.cache_clear()

    from src.cli import migrate

    migrate(database_url=database_url)
    yield database_url, redis_url
    _run_outside_loop(drop_db())
    for service in reversed(started):
        service.stop()


@pytest.fixture(scope="session")
async def app(services):
    from src.main import create_app

    application = create_app()
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(autouse=True)
async def _clean_state(request):
    """Empty every table and Redis after each test that used the services."""
    yield
    if "services" not in request.fixturenames:
        return
    database_url, redis_url = request.getfixturevalue("services")
    from redis.asyncio import Redis

    from src.models import Base

    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    conn = await asyncpg.connect(_plain_dsn(database_url))
    try:
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    await redis.aclose()
    storage = get_settings().storage_path
    if storage.exists():
        for child in storage.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def make_client(app):
    """Factory for extra clients (a second user, an admin) within one test."""
    clients = []

    def make() -> httpx.AsyncClient:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.aclose()


async def csrf_token(client: httpx.AsyncClient) -> str:
    """The CSRF token the browser would hold (a GET of any page sets the cookie)."""
    if "forge_csrf" not in client.cookies:
        await client.get("/login")
    return client.cookies["forge_csrf"]


async def register(client: httpx.AsyncClient, email: str, password: str = "correct-horse-9") -> dict:
    response = await client.post("/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    return response.json()


async def login_cookie(client: httpx.AsyncClient, email: str, password: str = "correct-horse-9") -> None:
    # Logging a browser in needs the CSRF token too (login CSRF), as the login page's form sends it.
    token = await csrf_token(client)
    response = await client.post("/auth/login", data={"username": email, "password": password},
                                 headers={"X-CSRF-Token": token})
    assert response.status_code == 204, response.text
    client.headers["X-CSRF-Token"] = token


async def bearer(client: httpx.AsyncClient, email: str, password: str = "correct-horse-9") -> dict[str, str]:
    response = await client.post("/auth/jwt/login", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def set_role(app, email: str, role: str) -> None:
    from sqlalchemy import text

    async with app.state.engine.begin() as conn:
        await conn.execute(text('UPDATE "user" SET role = :role WHERE email = :email'), {"role": role, "email": email})


@pytest.fixture
async def user_client(app, make_client):
    """A logged-in ordinary user (cookie + CSRF header), email user@example.com."""
    c = make_client()
    await register(c, "user@example.com")
    await login_cookie(c, "user@example.com")
    return c


@pytest.fixture
async def admin_client(app, make_client):
    c = make_client()
    await register(c, "admin@example.com")
    await set_role(app, "admin@example.com", "admin")
    await login_cookie(c, "admin@example.com")
    return c
