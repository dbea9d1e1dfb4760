"""Payment methods: tokens only. A card number never reaches a table, a log or an audit row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class PaymentMethod(SQLModel, table=True):
    __tablename__ = "payment_method"
    __table_args__ = (
        Index("ix_payment_method_customer", "customer_id", "status"),
        # At most one default among a customer's active methods.
        Index(
            "uq_payment_method_one_default",
            "customer_id",
            unique=True,
            postgresql_where=text("is_default AND status = 'active'"),
        ),
        {"schema": "payment"},
    )

    id: str = Field(primary_key=True, max_length=16)  # PM-000001
    customer_id: str = Field(max_length=16)  # crm.customer.id (no cross-schema FK: domains stay apart)
    type: str = Field(default="card", max_length=20)
    token: str = Field(max_length=120, unique=True)
    token_provider: str = Field(default="mock", max_length=20)
    last4: str | None = Field(default=None, max_length=4)
    brand: str = Field(default="unknown", max_length=20)  # visa | mastercard | amex | unknown
    exp_month: int
    exp_year: int
    name_on_card: str | None = Field(default=None, max_length=100)
    is_default: bool = Field(default=False)
    status: str = Field(default="active", max_length=20)  # active | removed
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    removed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class PaymentIdempotencyKey(SQLModel, table=True):
    """`Idempotency-Key` of a payment-domain create: the same key answers the same resource."""

    __tablename__ = "idempotency_key"
    __table_args__ = (
        UniqueConstraint("scope", "key", name="uq_payment_idempotency_scope_key"),
        {"schema": "payment"},
    )

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=50)
    key: str = Field(max_length=200)
    fingerprint: str = Field(max_length=64)
    resource_id: str = Field(max_length=32)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
