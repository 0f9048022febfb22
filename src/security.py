"""Request-level safety: CSRF double-submit tokens, security headers, client IP.

CSRF: every response makes sure the browser holds a random token in the `forge_csrf`
cookie; pages put the same token in forms (hidden `csrf_token` field) and in a meta tag
that HTMX sends as the `X-CSRF-Token` header. A state-changing request that carries the
session cookie must present the token (header, form field or `?csrf_token=`), or it is
refused with 403. Requests authenticated with a bearer token carry no ambient credentials
and are not checked.
"""

from __future__ import annotations

import hmac
import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "forge_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
MAX_FORM_BYTES = 1 << 20

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
    ),
}
# FastAPI's /docs page loads Swagger UI's script from a CDN.
CSP_EXEMPT_PREFIXES = ("/docs", "/redoc")


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _cookies(scope: Scope) -> dict[str, str]:
    for name, value in scope["headers"]:
        if name == b"cookie":
            jar = SimpleCookie()
            jar.load(value.decode("latin-1"))
            return {k: m.value for k, m in jar.items()}
    return {}


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return value.decode("latin-1")
    return None


class SecurityMiddleware:
    """Pure ASGI middleware (no body buffering except small urlencoded forms)."""

    def __init__(self, app: ASGIApp, *, session_cookie: str, secure_cookies: bool = False):
        self.app = app
        self.session_cookie = session_cookie
        self.secure_cookies = secure_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookies = _cookies(scope)
        token = cookies.get(CSRF_COOKIE)
        new_token = None
        if not token:
            token = new_token = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_token"] = token

        if self._needs_check(scope, cookies):
            presented, receive = await self._presented_token(scope, receive)
            if new_token or not presented or not hmac.compare_digest(presented, token):
                await self._refuse(scope, send)
                return

        path = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name == "content-security-policy" and path.startswith(CSP_EXEMPT_PREFIXES):
                        continue
                    headers.setdefault(name, value)
                if new_token:
                    secure = "; Secure" if self.secure_cookies else ""
                    headers.append(
                        "set-cookie",
                        f"{CSRF_COOKIE}={new_token}; Path=/; HttpOnly; SameSite=Lax{secure}",
                    )
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _needs_check(self, scope: Scope, cookies: dict[str, str]) -> bool:
        if scope["method"] in SAFE_METHODS or self.session_cookie not in cookies:
            return False
        authorization = _header(scope, b"authorization") or ""
        return not authorization.lower().startswith("bearer ")

    async def _presented_token(self, scope: Scope, receive: Receive) -> tuple[str | None, Receive]:
        header = _header(scope, CSRF_HEADER.encode())
        if header:
            return header, receive
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if CSRF_FIELD in query:
            return query[CSRF_FIELD][0], receive
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip()
        if content_type != "application/x-www-form-urlencoded":
            return None, receive
        # Read the (small) form body once, then replay it to the application.
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_FORM_BYTES:
                return None, receive
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        fields = parse_qs(body.decode("utf-8", "replace"))
        return (fields.get(CSRF_FIELD) or [None])[0], replay

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = json.dumps(
            {"detail": "CSRF token missing or invalid. Reload the page and try again."}
        ).encode()
        await send({
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})
