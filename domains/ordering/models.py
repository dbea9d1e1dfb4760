"""Ordering tables (schema `ordering`). An order snapshots the price it was sold at, so a later
catalogue change never alters what the customer agreed to pay."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, Numeric
from sqlmodel import Field, SQLModel

SCHEMA = {"schema": "ordering"}


def _when(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class ProductOrder(SQLModel, table=True):
    __tablename__ = "product_order"
    __table_args__ = (
        Index("ix_product_order_customer", "customer_id", "created_at"),
        Index("ix_product_order_state", "state", "created_at"),
        SCHEMA,
    )

    id: str = Field(primary_key=True, max_length=20)
    customer_id: str = Field(max_length=64)
    state: str = Field(max_length=20)
    offering_id: str = Field(max_length=64)
    price_id: str = Field(max_length=64)
    price_amount: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    price_currency: str = Field(max_length=3)
    msisdn_preference: str | None = Field(default=None, max_length=8)
    promo_code: str | None = Field(default=None, max_length=64)
    # The promotion snapshotted with the price (domains/catalog/promotions.py): the activation price
    # after the discount, and its terms. None when there is no code or it did not apply.
    promo_amount: Decimal | None = Field(default=None, sa_column=Column(Numeric(12, 2), nullable=True))
    promo_discount_type: str | None = Field(default=None, max_length=10)
    promo_discount_value: Decimal | None = Field(
        default=None, sa_column=Column(Numeric(12, 2), nullable=True)
    )
    promo_periods: int | None = Field(default=None)  # -1: perpetual
    # Said to the customer about the order while it goes on (e.g. why a promo code did not apply).
    note: str | None = Field(default=None, max_length=1000)
    service_order_id: str | None = Field(default=None, max_length=20)
    subscription_id: str | None = Field(default=None, max_length=20)
    som_started_at: datetime | None = _when(nullable=True)
    # Why the order did not complete: the failure, or the reason given when it was cancelled.
    failure_reason: str | None = Field(default=None, max_length=1000)
    idempotency_key: str | None = Field(default=None, max_length=128, unique=True)
    created_at: datetime = _when()
    completed_at: datetime | None = _when(nullable=True)
    updated_at: datetime = _when()


class ProductOrderItem(SQLModel, table=True):
    __tablename__ = "product_order_item"
    __table_args__ = SCHEMA

    id: str = Field(primary_key=True, max_length=20)
    order_id: str = Field(foreign_key="ordering.product_order.id", max_length=20, index=True)
    action: str = Field(default="add", max_length=10)
    offering_id: str = Field(max_length=64)
    state: str = Field(max_length=20)
    subscription_id: str | None = Field(default=None, max_length=20)


class OrderStateHistory(SQLModel, table=True):
    __tablename__ = "order_state_history"
    __table_args__ = (Index("ix_order_state_history_order", "order_id", "id"), SCHEMA)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    order_id: str = Field(foreign_key="ordering.product_order.id", max_length=20)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str = Field(max_length=20)
    at: datetime = _when()
    actor: str = Field(max_length=200)
    reason: str | None = Field(default=None, max_length=1000)
