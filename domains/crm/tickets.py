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
    waiting_workflow_id: str | None = None,
    waiting_topic: str | None = None,
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

    if waiting_workflow_id:
        existing = await open_ticket_of(session, waiting_workflow_id, waiting_topic)
        if existing is not None:
            return existing
    elif related_order_id or related_service_id:
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
        waiting_workflow_id=waiting_workflow_id,
        waiting_topic=waiting_topic,
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
            "waitingWorkflowId": waiting_workflow_id,
        },
    )
    return ticket


async def open_ticket_of(session: AsyncSession, workflow_id: str, topic: str | None) -> Ticket | None:
    """The open ticket a workflow waits on about `topic`, if any."""
    return (
        await session.exec(
            select(Ticket).where(
                Ticket.waiting_workflow_id == workflow_id,
                Ticket.waiting_topic == topic,
                col(Ticket.state).in_(rules.OPEN_TICKET_STATES),
            )
        )
    ).first()


async def list_tickets(
    session: AsyncSession, *, state: str | None = None, waiting: bool | None = None, limit: int = 100
) -> list[Ticket]:
    """Tickets, newest first; `state="open"` means any open state; `waiting` only those a workflow waits on."""
    query = select(Ticket)
    if state == "open":
        query = query.where(col(Ticket.state).in_(rules.OPEN_TICKET_STATES))
    elif state is not None:
        query = query.where(Ticket.state == state)
    if waiting is True:
        query = query.where(col(Ticket.waiting_workflow_id).is_not(None))
    rows = await session.exec(query.order_by(col(Ticket.opened_at).desc()).limit(limit))
    return list(rows.all())


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
