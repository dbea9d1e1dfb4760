"""Usage tables (schema `usage`): rated events, and the fraction of a balance unit not yet counted.

Quantities are stored in exact integer *fine units*: data in KB, voice in seconds, SMS as a count.
Balances are kept in coarser units by the subscription domain (MB, minutes, count); see
domains/usage/rating.py for how the two stay exactly in step.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Column, DateTime, ForeignKey, Identity, Index, Numeric
from sqlmodel import Field, SQLModel

SCHEMA = {"schema": "usage"}


class UsageEvent(SQLModel, table=True):
    """A mediated and rated usage record (TMF635 Usage). Rejected events are never stored."""

    __tablename__ = "usage_event"
    __table_args__ = (
        # History by number goes through the line(s) that had the number: one index less to
        # maintain on the bulk path.
        Index("ix_usage_event_subscription_seq", "subscription_id", "seq"),
        SCHEMA,
    )

    # The client's event id, or UE-…: the idempotency key, so a resent event is counted once.
    id: str = Field(primary_key=True, max_length=64)
    # Rating order, for history listings (many events of one bulk request share rated_at).
    seq: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), nullable=False))
    msisdn: str = Field(max_length=15)
    subscription_id: str = Field(max_length=20)
    usage_type: str = Field(max_length=10)
    quantity: int = Field(sa_column=Column(BigInteger, nullable=False))
    original_quantity: Decimal = Field(sa_column=Column(Numeric, nullable=False))
    original_unit: str = Field(max_length=10)
    roaming: bool = Field(sa_column=Column(Boolean, nullable=False))
    usage_date: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    allowance_type: str = Field(max_length=20)
    # The part of `quantity` that fitted in the allowance; the rest was used past an exhausted bucket.
    in_bundle: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = Field(default="rated", max_length=10)
    rated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class BalanceFraction(SQLModel, table=True):
    """Consumption below one unit of a balance (e.g. the 784 KB of 9.77 MB), per bundle balance.

    `bundle_balance.consumed` holds whole units; this row holds the rest, so thousands of 1 KB
    events add up exactly. It belongs to one balance period: when the balance starts a new period
    (renewal) the fraction no longer applies.
    """

    __tablename__ = "balance_fraction"
    __table_args__ = (SCHEMA,)

    balance_id: int = Field(
        sa_column=Column(
            BigInteger,
            ForeignKey("subscription.bundle_balance.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        )
    )
    period_start: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    fine: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
