"""create_app(): routers, middleware, error handling and the lifespan (engine, Redis pool)."""

from __future__ import annotations

import logging
import math
from contextlib import asynccontextmanager
from urllib.parse import quote

from arq import create_pool
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from src import api_docs
from src.admission import AdmissionGate
from src.admin import pages as admin_pages
from src.admin.router import router as admin_router
from src.auth import pages as auth_pages
from src.datasets.draft import pages as draft_pages
from src.datasets.draft.router import router as draft_router
from src.auth.dependencies import LoginRequired
from src.auth.router import auth_router, users_router
from src.auth.users import SESSION_COOKIE, jwt_keys
from src.billing import pages as billing_pages
from src.billing import service as billing_service
from src.billing.router import router as billing_router
from src.config import ROOT, get_settings
from src.database import create_engine, create_sessionmaker
from src.keepalive import KeepAliveLimit
from src.datasets import pages as dataset_pages
from src.datasets import service as dataset_service
from src.datasets.ports import DatasetPagePorts
from src.datasets.router import router as datasets_router
from src.detectors import pages as detector_pages
from src.detectors import service as detector_service
from src.detectors.router import router as detectors_router
from src.exceptions import DomainError
from src.gpu import routing
from src import api_errors, outages
from src.review import desk as review_desk
from src.review import pages as review_pages
from src.review.router import admin_router as review_admin_router
from src.review.router import router as review_router
from src.review.webhooks import router as review_webhook_router
from src.security import BodyGuardMiddleware, BodyLimits, SecurityMiddleware, add_security_headers
from src.templating import path_for, redirect, render
from src.videos import pages as video_pages
from src.videos.ports import VideoPorts
from src.videos.router import router as videos_router
from src.webhooks.router import router as webhooks_router
from src.jobs import redis_settings

log = logging.getLogger("forge")

ERROR_TITLES = {
    400: "Bad request", 401: "Please log in", 403: "Not allowed", 404: "Not found",
    405: "Not allowed", 413: "Too large", 422: "Check your input", 429: "Slow down",
    500: "Something went wrong", 503: "Temporarily unavailable",
}
API_PREFIXES = ("/api/", "/auth/", "/health", "/docs", "/openapi.json")


# Routes that put a session cookie in the browser: the CSRF token is needed there even without a
# session (login CSRF: another site must not log the browser into an account of its choosing).
LOGIN_PATHS = frozenset({"/login", "/register", "/auth/login"})
WEBHOOK_MAX_BYTES = 256 * 1024


def body_limits(settings) -> BodyLimits:
    """Request body caps by route: uploads up to MAX_UPLOAD_BYTES (each user's quota is checked
    by the upload itself, below that), models up to the model limit, webhooks small, everything
    else (JSON, forms) MAX_BODY_BYTES."""
    from src.detectors.service import MAX_MODEL_BYTES

    model = MAX_MODEL_BYTES + (1 << 20)  # multipart overhead and the small fields
    return BodyLimits(
        default=settings.max_body_bytes,
        routes={
            ("POST", "/api/v1/videos"): settings.max_upload_bytes, ("POST", "/videos/upload"): settings.max_upload_bytes,
            ("POST", "/api/v1/models"): model, ("POST", "/models/upload"): model,
            ("POST", "/api/v1/review/cvat/webhook"): WEBHOOK_MAX_BYTES,
        },
    )


def _finite(value):
    """A validation error's details made JSON-safe (NaN / Infinity inputs become strings)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def wants_json(request: Request) -> bool:
    if request.url.path.startswith(API_PREFIXES):
        return True
    return "text/html" not in request.headers.get("accept", "")


def error_page(request: Request, status_code: int, message: str):
    context = {"status_code": status_code, "title": ERROR_TITLES.get(status_code, "Error"), "message": message}
    return render(request, "errors/error.html", context, status_code=status_code)


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = get_settings()
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("DATABASE_URL and REDIS_URL must be set for the web server (`forge up` sets both).")
    jwt_keys()  # generate or load certs/ before the first request
    app.state.engine = create_engine(settings.database_url)
    app.state.sessionmaker = create_sessionmaker(app.state.engine)
    # jobs that want a GPU go to the GPU workers while there are any (src/gpu.py)
    app.state.redis = routing(await create_pool(redis_settings(settings.redis_url)))
    try:
        yield
    finally:
        await app.state.redis.aclose()
        await app.state.engine.dispose()


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(title="Data Forge", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(SecurityMiddleware, session_cookie=SESSION_COOKIE, secure_cookies=settings.cookie_secure,
                       login_paths=LOGIN_PATHS)
    app.add_middleware(BodyGuardMiddleware, limits=body_limits(settings))  # before anything reads
    app.add_middleware(AdmissionGate, size=settings.web_active_requests)  # src/admission.py
    app.add_middleware(KeepAliveLimit, seconds=settings.web_keepalive_seconds)  # src/keepalive.py
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    # What the domains below datasets need from it: the quota usage (videos, datasets) the
    # checks count (src/quotas/service.py, UsageOf), a video's datasets (src/videos/ports.py).
    app.state.usage = dataset_service.usage
    app.state.video_ports = VideoPorts(datasets_of=dataset_service.list_for_video,
                                       before_delete=dataset_service.before_video_delete)
    # What the dataset pages need from the domains above datasets (src/datasets/ports.py).
    app.state.dataset_ports = DatasetPagePorts(review_summary=review_desk.review_summary,
                                               model_choices=detector_service.model_choices)
    # What the domains above auth do for every new account (src/auth/users.py, AfterRegister;
    # src.cli.create_admin passes the same).
    app.state.after_register = (billing_service.grant_starting_balance,)
    api_docs.install(app)  # /docs and /redoc with local assets

    app.include_router(auth_router)
    app.include_router(users_router)
    app.include_router(auth_pages.router)
    app.include_router(admin_router)
    app.include_router(admin_pages.router)
    app.include_router(billing_router)
    app.include_router(billing_pages.router)
    app.include_router(datasets_router)
    app.include_router(dataset_pages.router)
    app.include_router(draft_router)
    app.include_router(draft_pages.router)
    app.include_router(review_router)
    app.include_router(review_webhook_router)
    app.include_router(review_admin_router)
    app.include_router(review_pages.router)
    app.include_router(videos_router)
    app.include_router(detectors_router)
    app.include_router(webhooks_router)
    app.include_router(detector_pages.router)
    app.include_router(video_pages.router)

    @app.get("/health", tags=["health"])
    async def health(request: Request):
        checks = {}
        try:
            async with request.app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as error:  # noqa: BLE001 - health reports any failure
            checks["database"] = f"error: {error.__class__.__name__}"
        try:
            await request.app.state.redis.ping()
            checks["redis"] = "ok"
        except Exception as error:  # noqa: BLE001
            checks["redis"] = f"error: {error.__class__.__name__}"
        ok = all(value == "ok" for value in checks.values())
        return JSONResponse({"status": "ok" if ok else "error", **checks}, status_code=200 if ok else 503)

    install_error_handlers(app)
    api_errors.install(app)  # every operation's error answers in the OpenAPI schema
    return app


def install_error_handlers(app: FastAPI) -> None:
    # PostgreSQL or Redis unreachable: 503 with Retry-After, not a 500 (src/outages.py)
    outages.install(app, page=error_page, api_prefixes=API_PREFIXES)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError):
        if wants_json(request):
            headers = {"Retry-After": str(error.retry_after)} if hasattr(error, "retry_after") else None
            return JSONResponse({"detail": error.message}, status_code=error.status_code, headers=headers)
        return error_page(request, error.status_code, error.message)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, error: LoginRequired):
        return redirect(request, f"{path_for(request, 'login_page')}?next={quote(error.next_url, safe='/')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        if wants_json(request):
            return await http_exception_handler(request, error)
        message = error.detail if isinstance(error.detail, str) else ERROR_TITLES.get(error.status_code, "Error")
        if error.status_code == 404:
            message = "There is nothing here, or it belongs to someone else."
        return error_page(request, error.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        if wants_json(request):
            # FastAPI's own handler cannot serialise a NaN input back (a 500): make the details JSON-safe.
            return JSONResponse({"detail": jsonable_encoder(_finite(error.errors()))},
                                status_code=422)
        return error_page(request, 422, "Some of the values sent are not valid.")

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
        if wants_json(request):
            response = JSONResponse({"detail": "Internal server error. It has been logged."}, status_code=500)
        else:
            response = error_page(request, 500, "An unexpected error happened. It has been logged; please try again.")
        # Sent by Starlette's outermost middleware, past ours: the security headers are added here.
        add_security_headers(response.headers, request.url.path)
        return response


app = create_app()
