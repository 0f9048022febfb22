"""PostgreSQL, Redis or the object store unreachable: a 503 that says so, never a 500 that
looks like a bug.

`outage_of(error)` says which service an exception shows to be down ("database", "redis") or
None when it is something else. It looks through the exception, what it wraps (SQLAlchemy's
`.orig`, `__cause__`, `__context__`) and exception groups:

- Redis: `redis.exceptions.ConnectionError` (refused, closed, still loading its data after a
  restart) and `redis.exceptions.TimeoutError`.
- PostgreSQL: SQLAlchemy's `DBAPIError` with `connection_invalidated`; asyncpg's connection
  errors and the server's own refusals (SQLSTATE class 08, 57P01-57P03 shutting down or
  starting, 53300 too many connections); SQLAlchemy's pool timeout.
- The object store (STORAGE_URL=s3://..., docs/storage.md): botocore's connection and timeout
  errors, and the store's own 5xx answers (`ServiceUnavailable`, `SlowDown`, `InternalError`);
  a refusal such as `AccessDenied` (wrong keys) stays a 500.
- `OSError` (a refused TCP connection, a missing unix socket, a builtin `TimeoutError`) only
  when it was raised inside the database or Redis client, so that a disk error in storage
  stays a 500.

`install(app, page=...)` registers handlers for these classes: the API (`/api/`, `/auth/`,
requests without `text/html` in Accept) gets `{"detail": ...}`, pages the error page, HTMX
requests of pages a fragment (shown above the page by static/js/forge.js), all with status
503 and `Retry-After`. Nothing is cached about the outage: the next request tries
the service again (the engine pings pooled connections first, redis-py reconnects), so the
site comes back by itself when the service does. See docs/operations.md.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterator

import asyncpg.exceptions as pg_errors
import botocore.exceptions as s3_errors
import redis.exceptions as redis_errors
import sqlalchemy.exc as sa_errors
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

log = logging.getLogger("forge.outages")

RETRY_AFTER_S = 10
SERVICE_NAMES = {"database": "the database", "redis": "the job queue (Redis)", "storage": "the file store"}
# SQLSTATEs that mean "the server cannot serve you now", not "your query is wrong"
UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}
PG_CONNECTION_ERRORS = (pg_errors.PostgresConnectionError, pg_errors.CannotConnectNowError,
                        pg_errors.AdminShutdownError, pg_errors.CrashShutdownError,
                        pg_errors.TooManyConnectionsError, pg_errors.InterfaceError)
CLIENT_MODULES = {"asyncpg": "database", "sqlalchemy": "database", "redis": "redis", "arq": "redis"}
# the classes the handlers are registered for (Starlette looks a handler up along the MRO)
HANDLED = (OSError, redis_errors.ConnectionError, redis_errors.TimeoutError, sa_errors.DBAPIError,
           sa_errors.TimeoutError, pg_errors.PostgresError, pg_errors.InterfaceError,
           s3_errors.BotoCoreError, s3_errors.ClientError)
S3_UNREACHABLE = (s3_errors.EndpointConnectionError, s3_errors.ConnectTimeoutError, s3_errors.ReadTimeoutError,
                  s3_errors.ConnectionClosedError)
S3_UNAVAILABLE_CODES = {"500", "502", "503", "504", "InternalError", "ServiceUnavailable", "SlowDown"}


def message(service: str) -> str:
    return (f"The service is temporarily unavailable: {SERVICE_NAMES.get(service, service)} is not answering. "
            f"Nothing you saved is lost; please try again in a minute.")


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [error]
    while todo and len(seen) < 32:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([getattr(current, "orig", None), current.__cause__, current.__context__])
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)


def _raised_in_client(error: BaseException) -> str | None:
    """The service whose client library the traceback of `error` passes through, if any."""
    tb = error.__traceback__
    found = None
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        service = CLIENT_MODULES.get(module.split(".", 1)[0])
        if service:
            found = service  # the innermost client frame wins
        tb = tb.tb_next
    return found


def outage_of(error: BaseException) -> str | None:
    """"database", "redis" or "storage" when `error` shows that service to be unreachable, else None."""
    for current in _chain(error):
        if isinstance(current, S3_UNREACHABLE):
            return "storage"
        if isinstance(current, s3_errors.ClientError) and \
                str(current.response.get("Error", {}).get("Code")) in S3_UNAVAILABLE_CODES:
            return "storage"
        if isinstance(current, (redis_errors.ConnectionError, redis_errors.TimeoutError)):
            return "redis"
        if isinstance(current, sa_errors.DBAPIError) and current.connection_invalidated:
            return "database"
        if isinstance(current, sa_errors.TimeoutError):  # QueuePool: no connection within pool_timeout
            return "database"
        if isinstance(current, PG_CONNECTION_ERRORS):
            return "database"
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and (sqlstate.startswith("08") or sqlstate in UNAVAILABLE_SQLSTATES):
            return "database"
        if isinstance(current, OSError) and (service := _raised_in_client(current)):
            return service
    return None


def _wants_json(request: Request, api_prefixes: tuple[str, ...]) -> bool:
    if request.url.path.startswith(api_prefixes):
        return True
    return "text/html" not in request.headers.get("accept", "")


def install(app: FastAPI, *, page: Callable[[Request, int, str], Response], api_prefixes: tuple[str, ...]) -> None:
    """Answer outages with 503 (`page(request, status, message)` renders the HTML page); any
    other exception of the same classes goes on to the 500 handler, as before."""

    async def unavailable(request: Request, error: Exception) -> Response:
        service = outage_of(error)
        if service is None:
            raise error
        log.warning("%s unavailable on %s %s: %s: %s", service, request.method, request.url.path,
                    error.__class__.__name__, error)
        text = message(service)
        if request.headers.get("hx-request") == "true" and not request.url.path.startswith(api_prefixes):
            # an HTMX form: a fragment, which static/js/forge.js shows above the page (the form stays)
            response: Response = HTMLResponse(f'<p class="error" role="alert">{html.escape(text)}</p>', status_code=503)
        elif _wants_json(request, api_prefixes):
            response = JSONResponse({"detail": text}, status_code=503)
        else:
            response = page(request, 503, text)
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    for cls in HANDLED:
        app.add_exception_handler(cls, unavailable)
