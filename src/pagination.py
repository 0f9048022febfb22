"""Pages of a list endpoint: `?page=&per_page=`, the total in `X-Total-Count`.

The list endpoints keep answering a plain JSON list (what the pages and older scripts read).
Without `page` they answer every item, as they always did; with it, one page of `per_page`
items. Every answer carries `X-Total-Count` (items matching the filters), and a paged one
`X-Page` / `X-Per-Page` and a `Link: <...>; rel="next"` while more pages follow.
Bounds keep `(page - 1) * per_page` far inside PostgreSQL's bigint OFFSET.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request, Response
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

MAX_PAGE = 1_000_000
MAX_PER_PAGE = 500
MAX_QUERY_LENGTH = 200
T = TypeVar("T")


@dataclass(frozen=True)
class PageParams:
    page: int | None  # None: every item (the old behaviour)
    per_page: int

    @property
    def limit(self) -> int | None:
        return None if self.page is None else self.per_page

    @property
    def offset(self) -> int:
        return 0 if self.page is None else (self.page - 1) * self.per_page


async def page_params(  # async: a plain function dependency would run in a worker thread
    page: Annotated[int | None, Query(ge=1, le=MAX_PAGE, description="1-based page; unset: every item")] = None,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="items per page (with `page`)")] = 50,
) -> PageParams:
    return PageParams(page=page, per_page=per_page)


PageDep = Annotated[PageParams, Depends(page_params)]
SearchQuery = Annotated[str | None, Query(max_length=MAX_QUERY_LENGTH, description="case-insensitive part of the name")]

# the headers a paged list answers with, for the OpenAPI of each list operation
PAGE_HEADERS = {
    "X-Total-Count": {"description": "items matching the filters, on every page", "schema": {"type": "integer"}},
    "Link": {"description": 'rel="next" while more pages follow (with `page`)', "schema": {"type": "string"}},
}
LIST_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"headers": PAGE_HEADERS}}


def contains(column, text: str):
    """`column ILIKE %text%`, with the text's own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


async def fetch(session: AsyncSession, query: Select, params: PageParams) -> tuple[list, int]:
    """(the page's rows, the total) of an ordered `select(Model)...` query."""
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    if params.page is not None:
        query = query.limit(params.limit).offset(params.offset)
    return list((await session.scalars(query)).all()), int(total or 0)


def slice_list(items: Sequence[T], params: PageParams) -> tuple[list[T], int]:
    """The same, over a list already in memory."""
    if params.page is None:
        return list(items), len(items)
    return list(items[params.offset: params.offset + params.per_page]), len(items)


def set_headers(request: Request, response: Response, params: PageParams, total: int) -> None:
    response.headers["X-Total-Count"] = str(total)
    if params.page is None:
        return
    response.headers["X-Page"], response.headers["X-Per-Page"] = str(params.page), str(params.per_page)
    if params.offset + params.per_page < total:
        url = request.url.include_query_params(page=params.page + 1, per_page=params.per_page)
        response.headers["Link"] = f'<{url}>; rel="next"'
