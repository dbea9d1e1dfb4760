"""Subscription tables (schema `subscription`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, Numeric, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from domains.subscription.rules import remaining

SCHEMA = {"schema": "subscription"}
LIVE = text("state <> 'terminated'")


def _when(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class Subscription(SQLModel, table=True):
    """A line. It renews at the price snapshotted when it was sold, never the catalogue's current one."""

    __tablename__ = "subscription"
    __table_args__ = (
        # A number or an eSIM belongs to at most one line that is not terminated.
        Index("uq_subscription_live_msisdn", "msisdn", unique=True, postgresql_where=LIVE),
        Index("uq_subscription_live_iccid", "iccid", unique=True, postgresql_where=LIVE),
        Index("ix_subscription_state_period_end", "state", "current_period_end"),
        SCHEMA,
    )

    id: str = Field(primary_key=True, max_length=20)
    customer_id: str = Field(max_length=64, index=True)
    offering_id: str = Field(max_length=64)
    order_id: str = Field(max_length=20, unique=True)
    msisdn: str = Field(max_length=15)
    iccid: str = Field(max_length=22)
    service_order_id: str | None = Field(default=None, max_length=20)
    state: str = Field(max_length=20)
    state_reason: str | None = Field(default=None, max_length=200)
    activated_at: datetime | None = _when(nullable=True)
    current_period_start: datetime = _when()
    current_period_end: datetime = _when()
    price_id: str = Field(max_length=64)
    price_amount: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    price_currency: str = Field(max_length=3)
    pending_offering_id: str | None = Field(default=None, max_length=64)
    pending_price_id: str | None = Field(default=None, max_length=64)
    terminated_at: datetime | None = _when(nullable=True)
    created_at: datetime = _when()
    updated_at: datetime = _when()


class BundleBalance(SQLModel, table=True):
    """One allowance bucket of the current period; total -1 means unlimited."""

    __tablename__ = "bundle_balance"
    __table_args__ = (UniqueConstraint("subscription_id", "allowance_type"), SCHEMA)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    subscription_id: str = Field(foreign_key="subscription.subscription.id", max_length=20)
    allowance_type: str = Field(max_length=20)
    total: int = Field(sa_column=Column(BigInteger, nullable=False))
    consumed: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    unit: str = Field(max_length=10)
    period_start: datetime = _when()
    period_end: datetime = _when()

    @property
    def remaining(self) -> int:
        return remaining(self.total, self.consumed)


class SubscriptionStateHistory(SQLModel, table=True):
    __tablename__ = "subscription_state_history"
    __table_args__ = (Index("ix_subscription_state_history_sub", "subscription_id", "id"), SCHEMA)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    subscription_id: str = Field(foreign_key="subscription.subscription.id", max_length=20)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str = Field(max_length=20)
    at: datetime = _when()
    actor: str = Field(max_length=200)
    reason: str | None = Field(default=None, max_length=200)


class SubscriptionRenewal(SQLModel, table=True):
    """One renewal attempt, paid or declined: the record that makes a retried renewal answer the same.

    `due_at` is the period end that was being renewed; at most one paid renewal per period end.
    """

    __tablename__ = "subscription_renewal"
    __table_args__ = (
        Index(
            "uq_subscription_renewal_paid_period",
            "subscription_id",
            "due_at",
            unique=True,
            postgresql_where=text("status = 'renewed'"),
        ),
        SCHEMA,
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    subscription_id: str = Field(foreign_key="subscription.subscription.id", max_length=20, index=True)
    kind: str = Field(max_length=10)  # scheduled | manual
    status: str = Field(max_length=10)  # renewed | declined
    idempotency_key: str = Field(max_length=200, unique=True)
    due_at: datetime = _when()
    attempted_at: datetime = _when()
    offering_id: str = Field(max_length=64)
    price_id: str = Field(max_length=64)
    amount: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    currency: str = Field(max_length=3)
    payment_id: str | None = Field(default=None, max_length=16)
    period_start: datetime | None = _when(nullable=True)
    period_end: datetime | None = _when(nullable=True)
    reason: str | None = Field(default=None, max_length=200)


class VasPurchase(SQLModel, table=True):
    """A paid top-up applied to a line. A timed one (the day pass) keeps what to restore when it ends."""

    __tablename__ = "vas_purchase"
    __table_args__ = (Index("ix_vas_purchase_sub", "subscription_id", "applied_at"), SCHEMA)

    id: str = Field(primary_key=True, max_length=32)  # SUB-000001-VAS-1A2B3C4D
    subscription_id: str = Field(foreign_key="subscription.subscription.id", max_length=20)
    vas_offering_id: str = Field(max_length=64)
    payment_id: str = Field(max_length=16)
    idempotency_key: str = Field(max_length=200, unique=True)
    allowance_type: str = Field(max_length=20)
    allowance_added: int = Field(sa_column=Column(BigInteger, nullable=False))  # -1: unlimited
    applied_at: datetime = _when()
    expires_at: datetime | None = _when(nullable=True)
    # Day pass: the primary balance left when the pass started, given back when it ends (-1: unlimited).
    restored_remaining: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    ended_at: datetime | None = _when(nullable=True)
