"""PostgreSQL or Redis down: 503 with a message and Retry-After (pages and API), and the site
comes back by itself when the service does. Against real servers of our own (a Redis and a
PostgreSQL started for these tests, stopped and started again), so the session's services
that other tests use are never touched."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from arq import create_pool

from src.auth.users import jwt_keys
from src.cli import migrate
from src.database import create_engine, create_sessionmaker
from src.embedded import EmbeddedPostgres, EmbeddedRedis
from src.jobs import redis_settings
from tests.conftest import csrf_token, login_cookie, register, set_role

UNAVAILABLE = "temporarily unavailable"
HTML = {"Accept": "text/html"}


async def _own_app(database_url: str, redis_url: str) -> AsyncIterator:
    """The real app, its engine and Redis pool pointed at the given servers."""
    from src.main import create_app

    jwt_keys()
    app = create_app()
    app.state.engine = create_engine(database_url)
    app.state.sessionmaker = create_sessionmaker(app.state.engine)
    app.state.redis = await create_pool(redis_settings(redis_url))
    try:
        yield app
    finally:
        await app.state.redis.aclose()
        await app.state.engine.dispose()


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def _assert_unavailable_page(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert UNAVAILABLE in response.text and "try again" in response.text
    assert int(response.headers["retry-after"]) > 0
    assert response.headers.get("x-content-type-options") == "nosniff"  # the security headers too


def _assert_unavailable_json(response: httpx.Response, service: str) -> None:
    assert response.status_code == 503, response.text[:500]
    detail = response.json()["detail"]
    assert UNAVAILABLE in detail and service in detail, detail
    assert int(response.headers["retry-after"]) > 0


@pytest.fixture
async def redis_server():
    with tempfile.TemporaryDirectory(prefix="forge-outage-redis-") as tmp:
        server = EmbeddedRedis(Path(tmp))
        url = server.start()
        try:
            yield server, url
        finally:
            server.stop()


@pytest.fixture
async def redis_app(services, redis_server):
    async for app in _own_app(services[0], redis_server[1]):
        yield app


async def test_redis_down_then_back(redis_app, redis_server):
    server, _ = redis_server
    async with _client(redis_app) as browser, _client(redis_app) as api, _client(redis_app) as admin:
        await register(api, "outage@example.com")
        await register(admin, "boss@example.com")
        await set_role(redis_app, "boss@example.com", "admin")
        await login_cookie(admin, "boss@example.com")
        token = await csrf_token(browser)
        assert (await admin.get("/admin/jobs", headers=HTML)).status_code == 200

        server.stop()

        # login counts attempts in Redis: the page form and the API both say why they cannot
        form = {"email": "outage@example.com", "password": "correct-horse-9", "csrf_token": token}
        _assert_unavailable_page(await browser.post("/login", data=form, headers=HTML))
        htmx = await browser.post("/login", data=form, headers={"HX-Request": "true"})  # the login form's own way
        assert htmx.status_code == 503 and int(htmx.headers["retry-after"]) > 0
        assert htmx.text.startswith('<p class="error" role="alert">') and UNAVAILABLE in htmx.text
        _assert_unavailable_json(await api.post("/auth/jwt/login", data={"username": "outage@example.com",
                                                                          "password": "correct-horse-9"}), "Redis")
        _assert_unavailable_page(await admin.get("/admin/jobs", headers=HTML))
        _assert_unavailable_json(await admin.get("/api/v1/admin/stats"), "Redis")
        # what does not need Redis keeps working
        assert (await admin.get("/admin/users", headers=HTML)).status_code == 200
        health = await api.get("/health")
        assert health.status_code == 503 and health.json()["redis"] != "ok" and health.json()["database"] == "ok"

        server.start()  # same port: the app's pool reconnects by itself, no restart

        response = await browser.post("/login", data=form, headers=HTML)
        assert response.status_code == 303, response.text[:300]
        response = await api.post("/auth/jwt/login", data={"username": "outage@example.com", "password": "correct-horse-9"})
        assert response.status_code == 200 and response.json()["access_token"]
        assert (await admin.get("/admin/jobs", headers=HTML)).status_code == 200
        assert (await admin.get("/api/v1/admin/stats")).status_code == 200
        assert (await api.get("/health")).status_code == 200


async def test_import_asked_while_redis_is_down_starts_once_it_is_back(redis_app, redis_server, monkeypatch):
    """The request saves the import, then cannot enqueue it: 503 saying so, and the video is
    not stuck: the stale-import sweep enqueues it when Redis is back."""
    from arq.jobs import Job, JobStatus

    from src.config import get_settings
    from src.videos import service
    from src.videos.tasks import requeue_stale_imports

    monkeypatch.setattr(get_settings(), "url_import_allowed_hosts", "127.0.0.1")
    monkeypatch.setattr(get_settings(), "job_stale_seconds", 1)
    server, _ = redis_server
    async with _client(redis_app) as browser:
        await register(browser, "queue-down@example.com")
        await login_cookie(browser, "queue-down@example.com")
        server.stop()
        response = await browser.post("/api/v1/videos/import", json={"url": "http://127.0.0.1:9/clip.mp4"})
        _assert_unavailable_json(response, "Redis")
        [video] = (await browser.get("/api/v1/videos")).json()  # reading needs only the database
        assert video["status"] == "importing"

        server.start()
        await asyncio.sleep(1.2)
        ctx = {"sessionmaker": redis_app.state.sessionmaker, "redis": redis_app.state.redis}
        assert await requeue_stale_imports(ctx) == 1
        job = Job(service.import_job_id(video["id"], 1), redis_app.state.redis)
        assert await job.status() == JobStatus.queued


@pytest.fixture
async def postgres_server(services):
    """A PostgreSQL of its own (own data directory, own socket), migrated like production."""
    with tempfile.TemporaryDirectory(prefix="forge-outage-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pg")
        url = server.start()
        try:
            await asyncio.to_thread(migrate, database_url=url)
            yield server, url
        finally:
            server.stop()


@pytest.fixture
async def postgres_app(services, postgres_server):
    async for app in _own_app(postgres_server[1], services[1]):
        yield app


async def test_postgres_down_then_back(postgres_app, postgres_server):
    server, _ = postgres_server
    async with _client(postgres_app) as browser, _client(postgres_app) as api:
        await register(browser, "pg-outage@example.com")
        await login_cookie(browser, "pg-outage@example.com")
        assert (await browser.get("/videos", headers=HTML)).status_code == 200
        assert (await browser.get("/api/v1/videos")).status_code == 200

        await asyncio.to_thread(server.stop)

        # a logged-in page (the session is checked against the user row) and the API
        _assert_unavailable_page(await browser.get("/videos", headers=HTML))
        _assert_unavailable_json(await browser.get("/api/v1/videos"), "database")
        token = await csrf_token(api)
        _assert_unavailable_json(await api.post("/auth/login", headers={"X-CSRF-Token": token},
                                                data={"username": "pg-outage@example.com",
                                                      "password": "correct-horse-9"}), "database")
        _assert_unavailable_page(await browser.post("/login", headers=HTML, data={
            "email": "pg-outage@example.com", "password": "correct-horse-9",
            "csrf_token": browser.cookies["forge_csrf"]}))
        health = await api.get("/health")
        assert health.status_code == 503 and health.json()["database"] != "ok"

        await asyncio.to_thread(server.start)  # same data directory and socket

        assert (await browser.get("/videos", headers=HTML)).status_code == 200
        assert (await browser.get("/api/v1/videos")).json() is not None
        response = await api.post("/auth/login", headers={"X-CSRF-Token": token},
                                  data={"username": "pg-outage@example.com", "password": "correct-horse-9"})
        assert response.status_code == 204, response.text
        assert (await api.get("/health")).status_code == 200


async def test_the_first_request_after_a_quiet_postgres_restart_succeeds(postgres_app, postgres_server):
    """PostgreSQL restarts while nobody asks anything: the pool's connections are dead, and
    the next page must not be the one that finds out (src.database._closed_is_gone)."""
    server, _ = postgres_server
    async with _client(postgres_app) as browser:
        await register(browser, "pg-restart@example.com")
        await login_cookie(browser, "pg-restart@example.com")
        assert (await browser.get("/videos", headers=HTML)).status_code == 200
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)
        assert (await browser.get("/videos", headers=HTML)).status_code == 200
        assert (await browser.get("/api/v1/videos")).status_code == 200


def test_outage_of_tells_services_from_bugs():
    """The classification the handlers use: an OSError from storage stays a bug (500)."""
    import redis.exceptions
    import sqlalchemy.exc

    from src.outages import outage_of

    assert outage_of(redis.exceptions.ConnectionError("Connection refused")) == "redis"
    assert outage_of(redis.exceptions.BusyLoadingError("loading")) == "redis"
    invalidated = sqlalchemy.exc.DBAPIError("SELECT 1", None, Exception("closed"), connection_invalidated=True)
    assert outage_of(invalidated) == "database"
    assert outage_of(sqlalchemy.exc.ProgrammingError("SELECT x", None, Exception("no column x"))) is None
    try:
        Path("/nonexistent/forge/file").read_bytes()
    except OSError as error:
        assert outage_of(error) is None
    assert outage_of(ValueError("bad input")) is None


async def test_import_survives_postgres_dropping_during_it(postgres_app, postgres_server, services, monkeypatch):
    """PostgreSQL goes away in the middle of a URL import: the import is not failed as a bad
    link and does not stay `importing` for ever; once the database is back the stale-import
    sweep starts it again and it finishes."""
    import http.server
    import threading
    import uuid
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    from redis.asyncio import Redis
    from sqlalchemy import text

    from src.config import get_settings
    from src.outages import outage_of
    from src.videos.tasks import import_video, requeue_stale_imports
    from tests.conftest import SHARED_DATA
    from tests.videos.test_stale_imports import SlowHandler

    server, _ = postgres_server
    monkeypatch.setattr(get_settings(), "url_import_allowed_hosts", "127.0.0.1")
    monkeypatch.setattr(get_settings(), "job_stale_seconds", 1)
    handler = type("Handler", (SlowHandler,), {"delay": 0.1})
    http_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(SHARED_DATA / "sequences")))
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    pool = ProcessPoolExecutor(1)
    try:
        async with _client(postgres_app) as browser:
            await register(browser, "importer@example.com")
            await login_cookie(browser, "importer@example.com")
            url = f"http://127.0.0.1:{http_server.server_address[1]}/otb_crossing/video.mp4"
            response = await browser.post("/api/v1/videos/import", json={"url": url})
            assert response.status_code == 202, response.text
            video_id = response.json()["id"]
            redis = Redis.from_url(services[1])
            await redis.flushdb()  # the job was taken off the queue: we run it here, as the worker would
            await redis.aclose()
            ctx = {"sessionmaker": postgres_app.state.sessionmaker, "redis": postgres_app.state.redis, "pool": pool,
                   "usage": postgres_app.state.usage}

            running = asyncio.create_task(import_video(ctx, video_id, 0))
            await asyncio.sleep(0.8)
            await asyncio.to_thread(server.stop)  # mid-download
            with pytest.raises(Exception) as stopped:
                await running
            assert outage_of(stopped.value) == "database", repr(stopped.value)

            await asyncio.to_thread(server.start)
            async with postgres_app.state.engine.connect() as conn:
                row = (await conn.execute(text("SELECT status, error FROM video WHERE id = :id"),
                                          {"id": uuid.UUID(video_id)})).one()
            assert (row.status, row.error) == ("importing", None)  # not "the download failed"

            handler.delay = 0.0
            await asyncio.sleep(1.2)
            assert await requeue_stale_imports(ctx) == 1
            assert await import_video(ctx, video_id, 1) == "ready"
            done = (await browser.get(f"/api/v1/videos/{video_id}")).json()
            assert done["status"] == "ready" and done["frame_count"] > 0, done
    finally:
        http_server.shutdown()
        pool.shutdown()


async def test_other_errors_of_the_same_classes_stay_500():
    """A storage OSError passes through the outage handler to the 500 handler, as before."""
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    from src import outages

    app = FastAPI()
    outages.install(app, page=lambda request, status, text: PlainTextResponse(text, status), api_prefixes=("/api/",))

    @app.get("/api/disk")
    async def disk():
        Path("/nonexistent/forge/stored-file").read_bytes()

    @app.get("/api/queue")
    async def queue():
        import redis.exceptions

        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        assert (await c.get("/api/disk")).status_code == 500
        _assert_unavailable_json(await c.get("/api/queue"), "Redis")
