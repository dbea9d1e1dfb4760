"""Port requests (schema `porting`): numbers moving in from, or out to, another operator."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, DateTime, Index, text
from sqlmodel import Field, SQLModel

from domains.porting.rules import DIRECTIONS, LIVE_STATES, STATES


def _when(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class PortRequest(SQLModel, table=True):
    """One port-in or port-out. `subscription_id` is the line the number goes to (an existing line
    named by the request, or the new line once its order completed) or, for a port-out, the line
    it leaves; `order_id` the order that made the new line."""

    __tablename__ = "port_request"
    __table_args__ = (
        # One live request per number: a second one waits until the first has ended.
        Index(
            "ux_port_request_live_msisdn",
            "msisdn",
            unique=True,
            postgresql_where=text(_in("state", LIVE_STATES)),
        ),
        Index(
            "ux_port_request_idempotency_key",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index("ix_port_request_state_created", "state", "created_at"),
        CheckConstraint(_in("state", STATES), name="ck_port_request_state"),
        CheckConstraint(_in("direction", DIRECTIONS), name="ck_port_request_direction"),
        CheckConstraint("msisdn ~ '^[0-9]{8}$'", name="ck_port_request_msisdn"),
        {"schema": "porting"},
    )

    id: str = Field(primary_key=True, max_length=16)  # PORT-xxxxxxxx
    direction: str = Field(max_length=10)
    donor_carrier: str = Field(max_length=64)
    recipient_carrier: str = Field(max_length=64)
    msisdn: str = Field(max_length=15)
    requested_port_date: datetime = _when(nullable=False)
    customer_id: str | None = Field(default=None, max_length=64, index=True)
    offering_id: str | None = Field(default=None, max_length=64)
    subscription_id: str | None = Field(default=None, max_length=20, index=True)
    order_id: str | None = Field(default=None, max_length=20)
    previous_msisdn: str | None = Field(default=None, max_length=15)  # an existing line's old number
    state: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=200)
    reason_code: str | None = Field(default=None, max_length=80)
    approved_by: str | None = Field(default=None, max_length=100)
    idempotency_key: str | None = Field(default=None, max_length=200)
    created_at: datetime = _when(nullable=False)
    updated_at: datetime = _when(nullable=False)
    validated_at: datetime | None = _when()
    approved_at: datetime | None = _when()
    completed_at: datetime | None = _when()
    ended_at: datetime | None = _when()
