"""The page convention (src/pages.py): a form's domain call runs in a savepoint; a refusal
leaves nothing of it behind (rows, queued after-commit actions), the objects it touched are
readable again, and what the request did before the call stays in its unit of work."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from src.billing.models import BillingSetting
from src.database import committing, on_commit
from src.exceptions import Conflict, Unprocessable
from src.pages import attempt, form_model


async def test_a_refused_call_leaves_nothing_and_the_rest_commits(app, services):
    ran: list[str] = []
    async with app.state.sessionmaker() as session:
        async with committing(session):
            setting = await session.merge(BillingSetting(id=1, starting_balance_cents=10))
            await session.flush()  # what the request did before the form's call

            async def refused():
                setting.starting_balance_cents = 999
                await session.flush()
                on_commit(session, lambda: _note(ran, "refused"))
                raise Conflict("No.")

            outcome = await attempt(session, refused())
            assert outcome.error is not None and outcome.error.message == "No." and outcome.value is None
            assert setting.starting_balance_cents == 10  # reloaded: readable, as in the database

            async def accepted():
                on_commit(session, lambda: _note(ran, "accepted"))
                return "fine"

            assert (await attempt(session, accepted())).value == "fine"
    async with app.state.sessionmaker() as session:
        assert (await session.get(BillingSetting, 1)).starting_balance_cents == 10
    assert ran == ["accepted"]


async def test_other_errors_are_not_swallowed(app, services):
    async with app.state.sessionmaker() as session:
        async def broken():
            raise RuntimeError("a bug")

        with pytest.raises(RuntimeError):
            await attempt(session, broken())


async def _note(ran: list[str], what: str) -> None:
    ran.append(what)


class Prices(BaseModel):
    per_frame_cents: int = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


def test_form_model_validates_with_the_schema_in_the_pages_words():
    assert form_model(Prices, {"per_frame_cents": "7", "currency": "EUR"}) == Prices(per_frame_cents=7, currency="EUR")
    with pytest.raises(Unprocessable) as refused:
        form_model(Prices, {"per_frame_cents": "-1", "currency": "euro"},
                   labels={"per_frame_cents": "Per frame (cents)", "currency": "Currency"},
                   messages={"currency": "a three-letter code such as USD or EUR"})
    assert refused.value.message == ("Per frame (cents): Input should be greater than or equal to 0. "
                                     "Currency: a three-letter code such as USD or EUR.")
