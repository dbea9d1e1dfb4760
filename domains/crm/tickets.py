"""Trouble tickets, minimal: what the order saga needs when provisioning gets stuck.

`open_ticket` is idempotent on what the ticket is about (type + related order/service) while that
ticket is still open, so a retried activity does not open a second ticket for the same problem.
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.errors import InvalidInput, NotFound, PolicyViolation
from core.ids import random_id
from domains.audit.services import record
from domains.crm import rules
from domains.crm.models import Customer, SlaPolicy, Ticket


async def sla_minutes(session: AsyncSession, ticket_type: str, priority: str) -> int | None:
    policy_type = rules.SLA_POLICY_FOR.get(ticket_type, ticket_type)
    return (
        await session.exec(
            select(SlaPolicy.resolution_minutes).where(
                SlaPolicy.ticket_type == policy_type, SlaPolicy.priority == priority
            )
        )
    ).first()


async def open_ticket(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    ticket_type: str,
    subject: str,
    description: str,
    customer_id: str | None = None,
    related_order_id: str | None = None,
    related_service_id: str | None = None,
    priority: str = "high",
) -> Ticket:
    if ticket_type not in rules.TICKET_TYPES:
        raise InvalidInput(
            "ticket.open.type_invalid", f"Ticket type must be one of {', '.join(rules.TICKET_TYPES)}."
        )
    if priority not in rules.TICKET_PRIORITIES:
        raise InvalidInput(
            "ticket.open.priority_invalid", f"Priority must be one of {', '.join(rules.TICKET_PRIORITIES)}."
        )
    if not subject.strip():
        raise InvalidInput("ticket.open.subject_required", "A ticket needs a subject.")
    if customer_id is not None and (await session.get(Customer, customer_id)) is None:
        raise NotFound("ticket.open.customer_not_found", f"No customer {customer_id}.")

    if related_order_id or related_service_id:
        existing = (
            await session.exec(
                select(Ticket).where(
                    Ticket.ticket_type == ticket_type,
                    Ticket.related_order_id == related_order_id,
                    Ticket.related_service_id == related_service_id,
                    col(Ticket.state).in_(rules.OPEN_TICKET_STATES),
                )
            )
        ).first()
        if existing is not None:
            return existing

    now = clock.now()
    ticket = Ticket(
        id=random_id("TKT"),
        customer_id=customer_id,
        ticket_type=ticket_type,
        subject=subject.strip()[:200],
        description=description[:4000],
        state="open",
        priority=priority,
        related_order_id=related_order_id,
        related_service_id=related_service_id,
        sla_due_at=rules.sla_due_at(now, await sla_minutes(session, ticket_type, priority)),
        opened_at=now,
    )
    session.add(ticket)
    await session.flush()
    record(
        session,
        ctx,
        "ticket.opened",
        "ticket",
        ticket.id,
        {
            "ticketType": ticket_type,
            "priority": priority,
            "customerId": customer_id,
            "relatedOrderId": related_order_id,
            "relatedServiceId": related_service_id,
        },
    )
    return ticket


async def get_ticket(session: AsyncSession, ticket_id: str, *, for_update: bool = False) -> Ticket:
    query = select(Ticket).where(Ticket.id == ticket_id)
    if for_update:
        query = query.with_for_update()
    ticket = (await session.exec(query)).first()
    if ticket is None:
        raise NotFound("ticket.not_found", f"No ticket {ticket_id}.", ticket_id=ticket_id)
    return ticket


async def resolve_ticket(session: AsyncSession, ctx: RequestContext, ticket_id: str, notes: str) -> Ticket:
    if not (notes or "").strip():
        raise PolicyViolation("ticket.resolve.requires_resolution_notes", "Resolving a ticket needs notes.")
    ticket = await get_ticket(session, ticket_id, for_update=True)
    previous = ticket.state
    ticket.state = rules.TICKET_LIFECYCLE.next(
        "resolve", ticket.state, code="ticket.transition.valid_from_state"
    )
    ticket.resolved_at = clock.now()
    ticket.resolution_notes = notes.strip()[:4000]
    session.add(ticket)
    await session.flush()
    record(session, ctx, "ticket.resolved", "ticket", ticket.id, {"from": previous, "to": ticket.state})
    return ticket
