"""The page convention for forms (issue 19; docs/ui.md): a page handler runs its domain call
with `attempt`, and answers a refusal by rendering the form (or the HTMX block) again with
the message, at the error's 4xx status.

`attempt` runs the call inside a SAVEPOINT. On a `DomainError` the savepoint is rolled back,
so nothing the call wrote before it refused stays in the request's unit of work (which still
commits once at the end: what the page did before the call, such as a session refresh, is
kept). Objects the call changed are reloaded, so the page can render them as they are in the
database. Input a page reads from a form is validated by the API's own pydantic schema with
`form_model`, whose refusal is an `Unprocessable` with readable messages.

    outcome = await attempt(session, service.add_class(session, dataset=dataset, name=name))
    if outcome.error:
        return render(request, "datasets/draft/draft.html", {..., "class_error": outcome.error.message},
                      block="classes", status_code=outcome.error.status_code)
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from src.exceptions import DomainError, Unprocessable

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What a form's domain call gave: its value, or the error it refused with."""

    value: T | None = None
    error: DomainError | None = None


async def attempt(session: AsyncSession, call: Awaitable[T]) -> Outcome[T]:
    """Await `call` (a service coroutine) in a savepoint; a DomainError rolls the savepoint back
    and comes back as `Outcome.error` instead of being raised. Other exceptions propagate (the
    request's unit of work then rolls back as a whole). Actions the call queued for after the
    commit (`src.database.on_commit`, e.g. an enqueue) are dropped with the savepoint."""
    queued = len(session.info.get("on_commit", []))
    try:
        async with session.begin_nested():
            value = await call
    except DomainError as error:
        del session.info.get("on_commit", [])[queued:]
        await _reload_expired(session)
        return Outcome(error=error)
    return Outcome(value=value)


async def _reload_expired(session: AsyncSession) -> None:
    """Rolling a savepoint back expires the objects changed inside it; an async session cannot
    load an expired attribute lazily, so load them again now, while the page may still read them."""
    for obj in list(session.identity_map.values()):
        state = inspect(obj)
        if state.expired or state.expired_attributes:
            await session.refresh(obj)


def form_model(schema: type[M], data: Mapping[str, Any], *, labels: Mapping[str, str] | None = None,
               messages: Mapping[str, str] | None = None) -> M:
    """`data` (form fields, in the schema's units) validated by the API's own schema. A refusal is
    an Unprocessable with one sentence per refused field: its label (`labels`, else the field
    name; an empty label: the words stand alone) and the page's words for it (`messages`, else
    pydantic's), e.g. "Currency: a three-letter code such as USD or EUR." The rules live in the
    schema only."""
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        raise Unprocessable(validation_message(error, labels=labels, messages=messages)) from None


def validation_message(error: ValidationError, *, labels: Mapping[str, str] | None = None,
                       messages: Mapping[str, str] | None = None) -> str:
    """A pydantic error as sentences a person reads, one per refused field, in form order."""
    sentences: list[str] = []
    for e in error.errors():
        field = ".".join(str(p) for p in e["loc"]) or "input"
        words = (messages or {}).get(field) or e["msg"].removeprefix("Value error, ")
        label = (labels or {}).get(field, field)
        sentence = f"{label}: {words.rstrip('.')}." if label else f"{words.rstrip('.')}."
        if sentence not in sentences:
            sentences.append(sentence)
    return " ".join(sentences)
