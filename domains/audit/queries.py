"""Reading the audit log back: by customer, order, subscription, type and time (TMF688, `bss audit`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, or_
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.errors import NotFound
from domains.audit.models import DomainEvent

ORDER_AGGREGATES = ("ProductOrder", "product_order")
SUBSCRIPTION_AGGREGATES = ("Subscription", "subscription")
CUSTOMER_AGGREGATES = ("customer", "Customer")


def _payload(key: str):  # noqa: ANN202 - a SQL expression
    return DomainEvent.__table__.c.payload[key].astext  # type: ignore[attr-defined]


async def list_events(
    session: AsyncSession,
    *,
    customer_id: str | None = None,
    order_id: str | None = None,
    subscription_id: str | None = None,
    event_type: str | None = None,
    aggregate_type: str | None = None,
    aggregate_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[DomainEvent]]:
    """Newest first. An event belongs to a customer when it names the customer (aggregate or
    payload) or is about one of the customer's orders or lines."""
    from domains.ordering.models import ProductOrder
    from domains.subscription.models import Subscription

    stmt = select(DomainEvent)
    if customer_id is not None:
        orders = sa_select(ProductOrder.id).where(ProductOrder.customer_id == customer_id)
        lines = sa_select(Subscription.id).where(Subscription.customer_id == customer_id)
        stmt = stmt.where(
            or_(
                _payload("customer_id") == customer_id,
                _payload("customerId") == customer_id,
                col(DomainEvent.aggregate_type).in_(CUSTOMER_AGGREGATES)
                & (DomainEvent.aggregate_id == customer_id),
                col(DomainEvent.aggregate_type).in_(ORDER_AGGREGATES)
                & col(DomainEvent.aggregate_id).in_(orders),
                col(DomainEvent.aggregate_type).in_(SUBSCRIPTION_AGGREGATES)
                & col(DomainEvent.aggregate_id).in_(lines),
            )
        )
    if order_id is not None:
        stmt = stmt.where(
            or_(
                col(DomainEvent.aggregate_type).in_(ORDER_AGGREGATES)
                & (DomainEvent.aggregate_id == order_id),
                _payload("orderId") == order_id,
                _payload("order_id") == order_id,
            )
        )
    if subscription_id is not None:
        stmt = stmt.where(
            or_(
                col(DomainEvent.aggregate_type).in_(SUBSCRIPTION_AGGREGATES)
                & (DomainEvent.aggregate_id == subscription_id),
                _payload("subscriptionId") == subscription_id,
                _payload("subscription_id") == subscription_id,
            )
        )
    if event_type is not None:
        if event_type.endswith("*"):
            stmt = stmt.where(col(DomainEvent.event_type).startswith(event_type[:-1], autoescape=True))
        else:
            stmt = stmt.where(DomainEvent.event_type == event_type)
    if aggregate_type is not None:
        stmt = stmt.where(DomainEvent.aggregate_type == aggregate_type)
    if aggregate_id is not None:
        stmt = stmt.where(DomainEvent.aggregate_id == aggregate_id)
    if since is not None:
        stmt = stmt.where(col(DomainEvent.occurred_at) >= since)
    if until is not None:
        stmt = stmt.where(col(DomainEvent.occurred_at) < until)
    total = (await session.exec(select(func.count()).select_from(stmt.subquery()))).one()
    rows = await session.exec(stmt.order_by(col(DomainEvent.id).desc()).offset(offset).limit(limit))
    return total, list(rows)


async def get_event(session: AsyncSession, event_id: str) -> DomainEvent:
    try:
        key = uuid.UUID(event_id)
    except ValueError:
        key = None
    row = None
    if key is not None:
        row = (await session.exec(select(DomainEvent).where(DomainEvent.event_id == key))).first()
    if row is None:
        raise NotFound("audit.event.not_found", f"No audit event {event_id}.", id=event_id)
    return row
