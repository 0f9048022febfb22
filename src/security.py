"""Request-level safety: body limits and input checks, CSRF double-submit tokens, security
headers, the client address and safe `next` redirects. See docs/security.md.

Two pure ASGI middlewares, outermost first:

- `BodyGuardMiddleware` caps every request body by route before anyone reads it: a declared
  `Content-Length` over the route's limit is answered 413 at once, and a streamed body is
  counted as it arrives (413 as soon as it crosses the limit, the rest is never read). Small
  JSON and urlencoded bodies are then read once (they are capped) and refused with 422 when
  they hold a NUL character or, for JSON, `NaN` / `Infinity` (or a number too large for a
  float): PostgreSQL cannot store the first and nothing can serialise the second back.
- `SecurityMiddleware`: every response makes sure the browser holds a random token in the
  `forge_csrf` cookie; pages put the same token in forms (hidden `csrf_token` field, the first
  field of multipart forms) and in a meta tag that HTMX sends as the `X-CSRF-Token` header. A
  state-changing request that carries the session cookie must present the token (header or
  form field, never the query string), whatever `Authorization` header it also has; the login
  and register routes always need it (login CSRF). Every response, errors included, carries
  the security headers.
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import json
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, unquote, urlsplit

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "forge_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
MAX_FORM_BYTES = 1 << 20
MULTIPART_HEAD_BYTES = 64 * 1024  # the csrf_token part must come within the first 64 KiB

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
# /docs and /redoc (src/api_docs.py) start Swagger UI / ReDoc with an inline script; their
# assets are local, so their policy still allows this server only ('self'), no CDN.
CSP_EXEMPT_PREFIXES = ("/docs", "/redoc")
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'self'"
)


def add_security_headers(headers: MutableHeaders, path: str) -> None:
    """Set the security headers a response does not already have (used for error responses too)."""
    for name, value in SECURITY_HEADERS.items():
        if name == "content-security-policy" and path.startswith(CSP_EXEMPT_PREFIXES):
            value = DOCS_CSP
        headers.setdefault(name, value)


API_PREFIXES = ("/api/", "/auth/", "/health", "/docs", "/openapi.json")


def _wants_html(scope: Scope) -> bool:
    """A page form (HTMX or a plain post from a browser): refusals come as a readable fragment
    that HTMX swaps in place; the API always gets `{"detail": ...}`."""
    if scope.get("path", "").startswith(API_PREFIXES):
        return False
    return (_header(scope, b"hx-request") == "true") or "text/html" in (_header(scope, b"accept") or "")


async def _send_json(scope: Scope, send: Send, status: int, detail: str, extra: list | None = None) -> None:
    if _wants_html(scope):
        body = f'<p class="error" role="alert">{html.escape(detail)}</p>'.encode()
        content_type = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"detail": detail}).encode()
        content_type = b"application/json"
    message: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                    *(extra or [])],
    }
    add_security_headers(MutableHeaders(scope=message), scope.get("path", ""))
    await send(message)
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------- client address, redirects

def client_ip(request: Request) -> str:
    """The client's address: the peer's, or with TRUSTED_PROXY_HEADER set (only behind a proxy
    that sets it), the right-most address in that header (the one the proxy itself saw)."""
    from src.config import get_settings

    peer = request.client.host if request.client else "unknown"
    header = get_settings().trusted_proxy_header
    if not header:
        return peer
    values = request.headers.getlist(header)
    if not values:
        return peer
    candidate = values[-1].split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


_UNSAFE_IN_PATH = re.compile(r"[\\\x00-\x20\x7f]")
_UNSAFE_DECODED = re.compile(r"[\\\x00-\x1f\x7f]")  # an encoded space (%20) is fine


def safe_next(url: str | None, default: str = "/") -> str:
    """`url` if it is a path on this site, else `default`.

    Refused: anything not starting with one `/`; `//host` and `/\\host` (browsers read a
    backslash as a slash); control characters and spaces (browsers drop tabs and newlines, so
    `/\\t/host` would become `//host`); schemes and hosts; and the same once percent-decoded
    (a second decoding catches double encoding)."""
    if not url or len(url) > 2000 or not url.isascii():  # headers are latin-1; real paths come encoded
        return default
    candidate = url
    for round_ in range(3):
        if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
            return default
        if (_UNSAFE_DECODED if round_ else _UNSAFE_IN_PATH).search(candidate):
            return default
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return default
        decoded = unquote(candidate)
        if decoded == candidate:
            return url
        candidate = decoded
    return default


# ---------------------------------------------------------------- body limits and input checks

class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` when a streamed body crosses its route's limit (an HTTPException,
    so the app's own handler answers 413 when it surfaces inside an endpoint)."""

    def __init__(self, limit: int):
        super().__init__(413, f"The request body is too large (the limit here is {_human(limit)}).")
        self.limit = limit


def _human(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    return f"{n / 1024:.0f} KiB"


@dataclass(frozen=True)
class BodyLimits:
    """Request body caps: `routes` maps (method, path) to a limit; `prefixes` maps path prefixes;
    everything else gets `default` (JSON and forms)."""

    default: int = 1 << 20
    routes: dict[tuple[str, str], int] = field(default_factory=dict)
    prefixes: tuple[tuple[str, int], ...] = ()

    def for_request(self, method: str, path: str) -> int:
        path = path.rstrip("/") or "/"
        if (method, path) in self.routes:
            return self.routes[(method, path)]
        for prefix, limit in self.prefixes:
            if path.startswith(prefix):
                return limit
        return self.default


class InvalidInput(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _not_finite(value: str):
    raise InvalidInput(f"{value} is not a valid JSON number here; send finite numbers only.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidInput(f"The number {text[:40]} is too large; send finite numbers only.")
    return value


def _walk_strings(value, path: str = "") -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput(f"Text must not contain NUL characters (\\u0000){f' (in {path})' if path else ''}.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk_strings(key, path)
            _walk_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk_strings(item, f"{path}[{index}]")


def check_json(body: bytes) -> None:
    """InvalidInput for NaN / Infinity / overflowing numbers or NUL characters; malformed JSON is
    left to the route (FastAPI answers 422 with where it broke)."""
    try:
        document = json.loads(body, parse_constant=_not_finite, parse_float=_finite_float)
        _walk_strings(document)
    except InvalidInput:
        raise
    except RecursionError as error:
        raise InvalidInput("The JSON is nested too deeply.") from error
    except ValueError:
        return


def check_form(body: bytes) -> None:
    if b"\x00" in body or "\x00" in unquote(body.decode("latin-1")):
        raise InvalidInput("Form fields must not contain NUL characters.")


class BodyGuardMiddleware:
    """Caps request bodies by route and refuses NUL / non-finite input; see the module docstring."""

    def __init__(self, app: ASGIApp, *, limits: BodyLimits | Callable[[], BodyLimits]):
        self.app = app
        self._limits = limits

    @property
    def limits(self) -> BodyLimits:
        return self._limits() if callable(self._limits) else self._limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query or "\x00" in scope["path"]:
            await _send_json(scope, send, 422, "The address must not contain NUL characters.")
            return
        limit = self.limits.for_request(scope["method"], scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    await _send_json(scope, send, 413, BodyTooLarge(limit).detail, [(b"connection", b"close")])
                    return
            except ValueError:
                await _send_json(scope, send, 400, "Content-Length is not a number.")
                return
        counted = _counting(receive, limit)
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            if content_type in ("application/json", "application/x-www-form-urlencoded") or content_type.endswith("+json"):
                body = await _read_all(counted)
                try:
                    (check_form if content_type.endswith("urlencoded") else check_json)(body)
                except InvalidInput as error:
                    await _send_json(scope, send, 422, error.message)
                    return
                counted = _replay(body, receive)
            await self.app(scope, counted, tracking_send)
        except BodyTooLarge as error:
            if started:
                raise
            await _send_json(scope, send, 413, error.detail, [(b"connection", b"close")])


def _counting(receive: Receive, limit: int) -> Receive:
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return counted


async def _read_all(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# ---------------------------------------------------------------- CSRF and headers

def _cookies(scope: Scope) -> dict[str, str]:
    for name, value in scope["headers"]:
        if name == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:
                return {}
            return {k: m.value for k, m in jar.items()}
    return {}


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return value.decode("latin-1")
    return None


class SecurityMiddleware:
    """Pure ASGI middleware (no body buffering except small forms and a multipart form's head)."""

    def __init__(self, app: ASGIApp, *, session_cookie: str, secure_cookies: bool = False,
                 login_paths: frozenset[str] = frozenset()):
        self.app = app
        self.session_cookie = session_cookie
        self.secure_cookies = secure_cookies
        self.login_paths = login_paths

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
        path = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                add_security_headers(headers, path)
                if new_token:
                    secure = "; Secure" if self.secure_cookies else ""
                    headers.append(
                        "set-cookie",
                        f"{CSRF_COOKIE}={new_token}; Path=/; HttpOnly; SameSite=Lax{secure}",
                    )
            await send(message)

        if self._needs_check(scope, cookies):
            presented, receive = await self._presented_token(scope, receive)
            if new_token or not presented or not hmac.compare_digest(presented.encode(), token.encode()):
                await _send_json(scope, send_with_headers, 403,
                                 "CSRF token missing or invalid. Reload the page and try again.")
                return

        await self.app(scope, receive, send_with_headers)

    def _needs_check(self, scope: Scope, cookies: dict[str, str]) -> bool:
        """Unsafe methods need the token when the session cookie comes along (whatever else the
        request carries: an `Authorization` header does not stop the cookie from authenticating),
        and always on the routes that log a browser in."""
        if scope["method"] in SAFE_METHODS:
            return False
        if (scope["path"].rstrip("/") or "/") in self.login_paths:
            return True
        return self.session_cookie in cookies

    async def _presented_token(self, scope: Scope, receive: Receive) -> tuple[str | None, Receive]:
        header = _header(scope, CSRF_HEADER.encode())
        if header:
            return header, receive
        content_type = _header(scope, b"content-type") or ""
        kind = content_type.split(";")[0].strip().lower()
        if kind == "application/x-www-form-urlencoded":
            return await self._form_token(receive)
        if kind == "multipart/form-data":
            return await self._multipart_token(content_type, receive)
        return None, receive

    async def _form_token(self, receive: Receive) -> tuple[str | None, Receive]:
        """Read the (small) form body once, then replay it to the application."""
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_FORM_BYTES:
                return None, receive
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return fields.get(CSRF_FIELD), _replay(body, receive)

    async def _multipart_token(self, content_type: str, receive: Receive) -> tuple[str | None, Receive]:
        """The `csrf_token` part of a multipart form, which must be its first part: only the head
        of the body is read (at most 64 KiB), then replayed before the rest of the stream."""
        from python_multipart.multipart import MultipartParser, parse_options_header

        _, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if not boundary:
            return None, receive
        state: dict = {"header": b"", "headers": {}, "name": None, "value": b"", "done": False}

        def on_header_field(data: bytes, start: int, end: int) -> None:
            state["header"] = data[start:end].lower()

        def on_header_value(data: bytes, start: int, end: int) -> None:
            state["headers"][state["header"]] = state["headers"].get(state["header"], b"") + data[start:end]

        def on_headers_finished() -> None:
            _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
            state["name"] = disposition.get(b"name")

        def on_part_data(data: bytes, start: int, end: int) -> None:
            state["value"] += data[start:end][:256]

        def on_part_end() -> None:
            state["done"] = True

        parser = MultipartParser(boundary, {
            "on_header_field": on_header_field, "on_header_value": on_header_value,
            "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end,
        })
        chunks: list[bytes] = []
        size, more = 0, True
        try:
            while more and not state["done"] and size <= MULTIPART_HEAD_BYTES:
                message = await receive()
                chunk = message.get("body", b"")
                more = message.get("more_body", False)
                chunks.append(chunk)
                size += len(chunk)
                parser.write(chunk)
        except Exception:  # noqa: BLE001 - a malformed body presents no token
            return None, receive
        head = b"".join(chunks)
        token = state["value"].decode("utf-8", "replace") if state["done"] and state["name"] == CSRF_FIELD.encode() else None

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": head, "more_body": more}
            return await receive()

        return token, replay
