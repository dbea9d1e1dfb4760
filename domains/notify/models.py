"""The outbox (schema `notify`): every message to a customer or an operator, one row each.

`source_key` is the message's idempotency key (`event:<audit event uuid>`, `renewal_reminder:<SUB>:
<period end>`, or the caller's key for a direct send): a unique index, so a message is queued once
however often the dispatcher rescans, and sent at most once by whichever dispatcher claims it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, DateTime, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

QUEUED, SENT, FAILED, SKIPPED = "queued", "sent", "failed", "skipped"
STATES = (QUEUED, SENT, FAILED, SKIPPED)


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(f"state IN ({', '.join(repr(s) for s in STATES)})", name="ck_outbox_state"),
        # What the sender picks up: the queued messages whose next attempt is due.
        Index("ix_outbox_due", "next_attempt_at", postgresql_where=text("state = 'queued'")),
        Index("ix_outbox_customer", "customer_id", "created_at"),
        {"schema": "notify"},
    )

    id: str = Field(primary_key=True, max_length=16)  # MSG-xxxxxxxx
    source_key: str = Field(max_length=200, unique=True)
    source_event_id: int | None = Field(default=None, index=True)  # audit.domain_event.id, if any
    template: str = Field(max_length=60)
    recipient: str | None = Field(default=None, max_length=254)
    sender: str = Field(max_length=254)
    subject: str = Field(default="", max_length=300)
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    customer_id: str | None = Field(default=None, max_length=64)
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    state: str = Field(default=QUEUED, max_length=10)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    mailbox_file: str | None = Field(default=None, max_length=300)
    created_at: datetime = _ts()
    next_attempt_at: datetime = _ts()
    sent_at: datetime | None = _ts(nullable=True)
    updated_at: datetime = _ts()
