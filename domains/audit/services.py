from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from domains.audit.models import DomainEvent


def record(
    session: AsyncSession,
    ctx: RequestContext,
    event_type: str,
    aggregate_type: str,
    aggregate_id: str,
    payload: dict[str, Any] | None = None,
) -> DomainEvent:
    """Add the audit row to the caller's transaction, so it commits or rolls back with the write."""
    event = DomainEvent(**audit_fields(ctx, event_type, aggregate_type, aggregate_id, payload))
    session.add(event)
    return event


def audit_fields(
    ctx: RequestContext,
    event_type: str,
    aggregate_type: str,
    aggregate_id: str,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An audit row's columns (but its ids) as `record` writes them: for a writer that inserts
    the row in its own statement, without an ORM object (domains/usage)."""
    return {
        "event_type": event_type,
        "aggregate_type": aggregate_type,
        "aggregate_id": aggregate_id,
        "occurred_at": clock.now(),
        "actor": ctx.actor,
        "channel": ctx.channel,
        "service_identity": ctx.service_identity,
        "trace_id": ctx.trace_id,
        "payload": payload or {},
    }


# The columns an audit row is inserted with by a statement of its own (all but the generated id),
# in the table's order: `audit_select`'s, and domains/usage's batch of rows.
AUDIT_COLUMNS = tuple(c.name for c in DomainEvent.__table__.columns if c.name != "id")  # type: ignore[attr-defined]
_AUDIT_CASTS = {"event_id": "uuid", "occurred_at": "timestamptz"}


def audit_select(source: str, aggregate_id: str, payload: str, prefix: str = "") -> str:
    """SQL selecting an audit row (columns as AUDIT_COLUMNS) for each row of `source`: its fields
    bound as audit_fields names them, after `prefix` (`:{prefix}event_type` …, plus
    `:{prefix}event_id`), its aggregate id and payload given as SQL expressions."""
    given = {"aggregate_id": aggregate_id, "payload": payload}
    values = ", ".join(
        given.get(c) or f"CAST(:{prefix}{c} AS {_AUDIT_CASTS.get(c, 'text')})" for c in AUDIT_COLUMNS
    )
    return f"SELECT {values}\nFROM {source}"


async def events_for(session: AsyncSession, aggregate_type: str, aggregate_id: str) -> list[DomainEvent]:
    rows = await session.exec(
        select(DomainEvent)
        .where(DomainEvent.aggregate_type == aggregate_type, DomainEvent.aggregate_id == aggregate_id)
        .order_by(col(DomainEvent.id))
    )
    return list(rows)
