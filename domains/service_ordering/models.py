"""Service ordering tables (schema `service_ordering`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

SCHEMA = {"schema": "service_ordering"}


def _when(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class ServiceOrder(SQLModel, table=True):
    """One per product order (the unique order_id is what makes decomposition idempotent)."""

    __tablename__ = "service_order"
    __table_args__ = (Index("ix_service_order_state", "state", "created_at"), SCHEMA)

    id: str = Field(primary_key=True, max_length=20)
    order_id: str = Field(max_length=20, unique=True)
    customer_id: str = Field(max_length=64, index=True)
    offering_id: str = Field(max_length=64)
    state: str = Field(max_length=20)
    failure_reason: str | None = Field(default=None, max_length=1000)
    created_at: datetime = _when()
    started_at: datetime | None = _when(nullable=True)
    completed_at: datetime | None = _when(nullable=True)
    updated_at: datetime = _when()


class ServiceOrderItem(SQLModel, table=True):
    __tablename__ = "service_order_item"
    __table_args__ = SCHEMA

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    service_order_id: str = Field(foreign_key="service_ordering.service_order.id", max_length=20, index=True)
    action: str = Field(default="add", max_length=10)
    spec_id: str = Field(max_length=64)
    service_id: str = Field(max_length=20)


class Service(SQLModel, table=True):
    """A CFS or RFS instance (TMF638). Characteristics hold the network identity of the line."""

    __tablename__ = "service"
    __table_args__ = SCHEMA

    id: str = Field(primary_key=True, max_length=20)
    service_order_id: str = Field(foreign_key="service_ordering.service_order.id", max_length=20, index=True)
    subscription_id: str | None = Field(default=None, max_length=20, index=True)
    spec_id: str = Field(max_length=64)
    name: str = Field(max_length=50)
    type: str = Field(max_length=3)
    parent_service_id: str | None = Field(default=None, max_length=20)
    state: str = Field(max_length=20)
    characteristics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    created_at: datetime = _when()
    activated_at: datetime | None = _when(nullable=True)
    terminated_at: datetime | None = _when(nullable=True)
    updated_at: datetime = _when()


class ServiceStateHistory(SQLModel, table=True):
    __tablename__ = "service_state_history"
    __table_args__ = (Index("ix_service_state_history_service", "service_id", "id"), SCHEMA)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    service_id: str = Field(foreign_key="service_ordering.service.id", max_length=20)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str = Field(max_length=20)
    at: datetime = _when()
    reason: str | None = Field(default=None, max_length=1000)


class ProvisioningTask(SQLModel, table=True):
    """One network step of a service order; one row per (service order, task type), retried in place."""

    __tablename__ = "provisioning_task"
    __table_args__ = (
        UniqueConstraint("service_order_id", "task_type"),
        Index("ix_provisioning_task_state", "state"),
        SCHEMA,
    )

    id: str = Field(primary_key=True, max_length=20)
    service_order_id: str = Field(foreign_key="service_ordering.service_order.id", max_length=20)
    service_id: str = Field(foreign_key="service_ordering.service.id", max_length=20)
    task_type: str = Field(max_length=30)
    state: str = Field(max_length=20)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=2000)
    ticket_id: str | None = Field(default=None, max_length=64)
    resolution_note: str | None = Field(default=None, max_length=2000)
    created_at: datetime = _when()
    started_at: datetime | None = _when(nullable=True)
    completed_at: datetime | None = _when(nullable=True)
    updated_at: datetime = _when()
