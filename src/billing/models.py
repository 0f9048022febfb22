"""Billing: versioned price lists, the append-only ledger, and the billing settings.

Money is integer cents. The balance is the sum of a user's ledger rows; nothing else
stores it. A reservation is a negative row made when a dataset is confirmed; `release`
gives it back, `charge` takes the final price (never more than was reserved).
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Enum, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from src.database import Base, CreatedAtMixin


class PriceList(CreatedAtMixin, Base):
    """One row per edit; a quote records the `version` it was made with."""

    __tablename__ = "price_list"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    per_frame_cents: Mapped[int] = mapped_column(Integer)
    per_object_frame_cents: Mapped[int] = mapped_column(Integer)
    per_reviewed_frame_cents: Mapped[int] = mapped_column(Integer)
    minimum_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))


class LedgerKind(StrEnum):
    top_up = "top_up"
    reservation = "reservation"
    charge = "charge"
    release = "release"
    refund = "refund"
    adjustment = "adjustment"


class LedgerEntry(CreatedAtMixin, Base):
    """Append-only: rows are never updated or deleted."""

    __tablename__ = "ledger_entry"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    kind: Mapped[LedgerKind] = mapped_column(Enum(LedgerKind, name="ledger_kind", native_enum=False, length=16))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    # The dataset a reservation / release / charge / refund belongs to (kept even if it is deleted).
    dataset_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    admin_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))


class BillingSetting(CreatedAtMixin, Base):
    """One row (id = 1): the balance a new account starts with."""

    __tablename__ = "billing_setting"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    starting_balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)
