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


async def events_for(session: AsyncSession, aggregate_type: str, aggregate_id: str) -> list[DomainEvent]:
    rows = await session.exec(
        select(DomainEvent)
        .where(DomainEvent.aggregate_type == aggregate_type, DomainEvent.aggregate_id == aggregate_id)
        .order_by(col(DomainEvent.id))
    )
    return list(rows)
