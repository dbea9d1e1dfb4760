from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class DomainEvent(SQLModel, table=True):
    """Append-only record of every write, in the transaction of the write (TMF688-shaped)."""

    __tablename__ = "domain_event"
    __table_args__ = (
        Index("ix_domain_event_aggregate", "aggregate_type", "aggregate_id", "occurred_at"),
        Index("ix_domain_event_type", "event_type", "occurred_at"),
        {"schema": "audit"},
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4, unique=True)
    event_type: str = Field(max_length=100)
    aggregate_type: str = Field(max_length=50)
    aggregate_id: str = Field(max_length=64)
    occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    actor: str = Field(max_length=200)
    channel: str = Field(max_length=50)
    service_identity: str = Field(max_length=100)
    trace_id: str | None = Field(default=None, max_length=64, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
