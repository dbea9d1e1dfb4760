"""Trouble tickets (TMF621): opened by people for a customer (often inside a case) and by
workflows that need an operator (workflows/attention.py, stuck provisioning tasks).

`open_ticket` is idempotent on what the ticket is about (type + related order/service, or the
waiting workflow and topic) while that ticket is still open, so a retried activity does not open a
second ticket for the same problem. Every write keeps the state history, writes its audit event
(COMMON: `ticket.opened|assigned|acknowledged|escalated|resolved|closed|cancelled`, payload
{customer_id, case_id, priority, state}) and logs an interaction on the customer's file.
The due time comes from the seeded SLA policies (type x priority); workflows/ticket_sla.py
enforces it (`escalate_overdue`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.errors import InvalidInput, NotFound, PolicyViolation
from core.ids import random_id
from domains.audit.services import record
from domains.crm import interactions, rules
from domains.crm.models import (
    Agent,
    Customer,
    SlaPolicy,
    SupportCase,
    Ticket,
    TicketNote,
    TicketStatusChange,
)


async def sla_minutes(session: AsyncSession, ticket_type: str, priority: str) -> int | None:
    policy_type = rules.SLA_POLICY_FOR.get(ticket_type, ticket_type)
    return (
        await session.exec(
            select(SlaPolicy.resolution_minutes).where(
                SlaPolicy.ticket_type == policy_type, SlaPolicy.priority == priority
            )
        )
    ).first()


def _payload(ticket: Ticket, **extra) -> dict:
    return {
        "customer_id": ticket.customer_id,
        "case_id": ticket.case_id,
        "ticket_id": ticket.id,
        "ticket_type": ticket.ticket_type,
        "subject": ticket.subject,
        "priority": ticket.priority,
        "state": ticket.state,
        **extra,
    }


def _history(session: AsyncSession, ctx: RequestContext, ticket: Ticket, trigger: str, before, reason=None):
    session.add(
        TicketStatusChange(
            ticket_id=ticket.id,
            trigger=trigger,
            from_state=before,
            to_state=ticket.state,
            reason=(reason or None) and reason[:500],
            actor=ctx.actor[:200],
            changed_at=clock.now(),
        )
    )


async def active_agent(session: AsyncSession, agent_id: str) -> Agent:
    agent = await session.get(Agent, agent_id)
    if agent is None or agent.status != "active":
        raise PolicyViolation(
            "ticket.assign.agent_must_be_active",
            f"Agent {agent_id} does not exist or is not active.",
            agent_id=agent_id,
        )
    return agent


async def list_agents(session: AsyncSession, *, role: str | None = None) -> list[Agent]:
    query = select(Agent)
    if role is not None:
        query = query.where(Agent.role == role)
    return list((await session.exec(query.order_by(col(Agent.id)))).all())


async def supervisor(session: AsyncSession) -> Agent | None:
    """The active supervisor an escalated ticket goes to (the first by id)."""
    return (
        await session.exec(
            select(Agent).where(Agent.role == "supervisor", Agent.status == "active").order_by(col(Agent.id))
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
    case_id: str | None = None,
    related_order_id: str | None = None,
    related_service_id: str | None = None,
    priority: str = "high",
    assigned_to_agent_id: str | None = None,
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
    if case_id is not None:
        case = await session.get(SupportCase, case_id, with_for_update=True)
        if case is None:
            raise NotFound("ticket.open.case_not_found", f"No case {case_id}.", case_id=case_id)
        if case.state not in rules.OPEN_CASE_STATES:
            raise PolicyViolation(
                "case.update.case_is_closed", f"Case {case_id} is {case.state}: it takes no new tickets."
            )
        if customer_id is not None and customer_id != case.customer_id:
            raise PolicyViolation(
                "ticket.open.case_customer_mismatch",
                f"Case {case_id} belongs to {case.customer_id}, not {customer_id}.",
            )
        customer_id = case.customer_id
    if customer_id is not None and (await session.get(Customer, customer_id)) is None:
        raise NotFound("ticket.open.customer_not_found", f"No customer {customer_id}.")
    if assigned_to_agent_id is not None:
        await active_agent(session, assigned_to_agent_id)

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
        case_id=case_id,
        ticket_type=ticket_type,
        subject=subject.strip()[:200],
        description=description[:4000],
        state="open",
        priority=priority,
        assigned_to_agent_id=assigned_to_agent_id,
        related_order_id=related_order_id,
        related_service_id=related_service_id,
        waiting_workflow_id=waiting_workflow_id,
        waiting_topic=waiting_topic,
        sla_due_at=rules.sla_due_at(now, await sla_minutes(session, ticket_type, priority)),
        opened_by=ctx.actor[:200],
        opened_at=now,
        updated_at=now,
    )
    session.add(ticket)
    await session.flush()
    _history(session, ctx, ticket, "open", None)
    record(
        session,
        ctx,
        "ticket.opened",
        "ticket",
        ticket.id,
        _payload(
            ticket,
            sla_due_at=ticket.sla_due_at.isoformat() if ticket.sla_due_at else None,
            related_order_id=related_order_id,
            related_service_id=related_service_id,
            waiting_workflow_id=waiting_workflow_id,
        ),
    )
    _interaction(
        session,
        ctx,
        ticket,
        "ticket.opened",
        f"Ticket {ticket.id} opened: {ticket.subject}",
        body=ticket.description,
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


def ticket_query(
    *,
    state: str | None = None,
    waiting: bool | None = None,
    customer_id: str | None = None,
    case_id: str | None = None,
    agent_id: str | None = None,
    priority: str | None = None,
):
    query = select(Ticket)
    if state == "open":
        query = query.where(col(Ticket.state).in_(rules.OPEN_TICKET_STATES))
    elif state is not None:
        query = query.where(Ticket.state == state)
    if waiting is True:
        query = query.where(col(Ticket.waiting_workflow_id).is_not(None))
    if customer_id is not None:
        query = query.where(Ticket.customer_id == customer_id)
    if case_id is not None:
        query = query.where(Ticket.case_id == case_id)
    if agent_id is not None:
        query = query.where(Ticket.assigned_to_agent_id == agent_id)
    if priority is not None:
        query = query.where(Ticket.priority == priority)
    return query


async def list_tickets(
    session: AsyncSession,
    *,
    state: str | None = None,
    waiting: bool | None = None,
    customer_id: str | None = None,
    case_id: str | None = None,
    agent_id: str | None = None,
    priority: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[Ticket]:
    """Tickets, newest first; `state="open"` means any open state; `waiting` only those a workflow waits on."""
    query = ticket_query(
        state=state,
        waiting=waiting,
        customer_id=customer_id,
        case_id=case_id,
        agent_id=agent_id,
        priority=priority,
    )
    rows = await session.exec(
        query.order_by(col(Ticket.opened_at).desc(), col(Ticket.id)).offset(offset).limit(limit)
    )
    return list(rows.all())


async def count_tickets(session: AsyncSession, **filters) -> int:
    query = ticket_query(**filters)
    return (await session.exec(select(func.count()).select_from(query.subquery()))).one()


async def get_ticket(session: AsyncSession, ticket_id: str, *, for_update: bool = False) -> Ticket:
    query = select(Ticket).where(Ticket.id == ticket_id)
    if for_update:
        query = query.with_for_update()
    ticket = (await session.exec(query)).first()
    if ticket is None:
        raise NotFound("ticket.not_found", f"No ticket {ticket_id}.", ticket_id=ticket_id)
    return ticket


async def ticket_notes(session: AsyncSession, ticket_ids: list[str]) -> dict[str, list[TicketNote]]:
    out: dict[str, list[TicketNote]] = {t: [] for t in ticket_ids}
    if ticket_ids:
        rows = await session.exec(
            select(TicketNote).where(col(TicketNote.ticket_id).in_(ticket_ids)).order_by(col(TicketNote.id))
        )
        for n in rows:
            out[n.ticket_id].append(n)
    return out


async def ticket_history(session: AsyncSession, ticket_ids: list[str]) -> dict[str, list[TicketStatusChange]]:
    out: dict[str, list[TicketStatusChange]] = {t: [] for t in ticket_ids}
    if ticket_ids:
        rows = await session.exec(
            select(TicketStatusChange)
            .where(col(TicketStatusChange.ticket_id).in_(ticket_ids))
            .order_by(col(TicketStatusChange.id))
        )
        for h in rows:
            out[h.ticket_id].append(h)
    return out


def _note(session: AsyncSession, ticket: Ticket, author: str, text: str) -> None:
    session.add(
        TicketNote(ticket_id=ticket.id, author=author[:200], body=text[:4000], created_at=clock.now())
    )


async def add_ticket_note(session: AsyncSession, ctx: RequestContext, ticket_id: str, text: str) -> Ticket:
    if not (text or "").strip():
        raise InvalidInput("ticket.note.text_required", "A note needs text.")
    ticket = await get_ticket(session, ticket_id, for_update=True)
    _note(session, ticket, ctx.actor, text.strip())
    ticket.updated_at = clock.now()
    session.add(ticket)
    record(session, ctx, "ticket.note_added", "ticket", ticket.id, _payload(ticket))
    _interaction(session, ctx, ticket, "ticket.note_added", f"Note on ticket {ticket.id}", body=text.strip())
    return ticket


async def assign_ticket(session: AsyncSession, ctx: RequestContext, ticket_id: str, agent_id: str) -> Ticket:
    ticket = await get_ticket(session, ticket_id, for_update=True)
    if ticket.state not in rules.OPEN_TICKET_STATES:
        raise PolicyViolation(
            "ticket.transition.valid_from_state",
            f"Ticket {ticket_id} is {ticket.state}: only an open ticket can be assigned.",
            current=ticket.state,
        )
    agent = await active_agent(session, agent_id)
    _assign(session, ctx, ticket, agent)
    return ticket


def _assign(session: AsyncSession, ctx: RequestContext, ticket: Ticket, agent: Agent, why: str = "") -> None:
    previous = ticket.assigned_to_agent_id
    ticket.assigned_to_agent_id = agent.id
    ticket.updated_at = clock.now()
    session.add(ticket)
    record(
        session,
        ctx,
        "ticket.assigned",
        "ticket",
        ticket.id,
        _payload(ticket, agent_id=agent.id, agent_name=agent.name, previous_agent_id=previous),
    )
    _interaction(
        session,
        ctx,
        ticket,
        "ticket.assigned",
        f"Ticket {ticket.id} assigned to {agent.name} ({agent.id}){why}",
        agent_id=agent.id,
    )


async def transition_ticket(
    session: AsyncSession,
    ctx: RequestContext,
    ticket_id: str,
    trigger: str,
    *,
    notes: str | None = None,
    agent_id: str | None = None,
    reason: str | None = None,
) -> Ticket:
    """Move a ticket along its lifecycle (rules.TICKET_LIFECYCLE). `ack` needs an agent (assigned, or
    `agent_id`, which assigns it); `resolve` needs notes; a resolved or closed ticket cannot be cancelled."""
    if trigger not in rules.TICKET_TRIGGERS:
        raise InvalidInput(
            "ticket.transition.unknown_trigger",
            f"A ticket's trigger is one of {', '.join(rules.TICKET_TRIGGERS)}; got {trigger!r}.",
        )
    if trigger == "resolve" and not (notes or "").strip():
        raise PolicyViolation("ticket.resolve.requires_resolution_notes", "Resolving a ticket needs notes.")
    ticket = await get_ticket(session, ticket_id, for_update=True)
    if trigger == "cancel" and ticket.state in ("resolved", "closed"):
        raise PolicyViolation(
            "ticket.cancel.not_if_resolved_or_closed",
            f"Ticket {ticket_id} is {ticket.state}; a resolved or closed ticket cannot be cancelled.",
            current=ticket.state,
        )
    previous = ticket.state
    target = rules.TICKET_LIFECYCLE.next(trigger, ticket.state, code="ticket.transition.valid_from_state")
    if trigger == "ack":
        if agent_id is not None:
            if agent_id != ticket.assigned_to_agent_id:
                _assign(session, ctx, ticket, await active_agent(session, agent_id))
        elif ticket.assigned_to_agent_id is None:
            raise PolicyViolation(
                "ticket.ack.requires_agent",
                f"Ticket {ticket_id} has no agent: assign one first, or name one to acknowledge it.",
            )
    now = clock.now()
    ticket.state = target
    ticket.updated_at = now
    if trigger == "resolve":
        ticket.resolved_at = now
        ticket.resolution_notes = notes.strip()[:4000]
    elif trigger == "reopen":
        ticket.resolved_at = None
    elif trigger in ("close", "cancel"):
        ticket.closed_at = now
    session.add(ticket)
    await session.flush()
    why = (notes if trigger == "resolve" else reason) or None
    _history(session, ctx, ticket, trigger, previous, why)
    record(
        session,
        ctx,
        rules.TICKET_EVENTS[trigger],
        "ticket",
        ticket.id,
        _payload(ticket, **{"from": previous}),
    )
    _interaction(
        session,
        ctx,
        ticket,
        rules.TICKET_EVENTS[trigger],
        f"Ticket {ticket.id}: {previous} → {ticket.state}",
        body=why or "",
    )
    return ticket


async def resolve_ticket(session: AsyncSession, ctx: RequestContext, ticket_id: str, notes: str) -> Ticket:
    return await transition_ticket(session, ctx, ticket_id, "resolve", notes=notes)


async def update_ticket(
    session: AsyncSession,
    ctx: RequestContext,
    ticket_id: str,
    *,
    priority: str | None = None,
    subject: str | None = None,
    description: str | None = None,
) -> Ticket:
    """Change what a ticket says, or its priority (the SLA due time follows, from the opening)."""
    if priority is not None and priority not in rules.TICKET_PRIORITIES:
        raise InvalidInput(
            "ticket.update.invalid_priority", f"Priority must be one of {', '.join(rules.TICKET_PRIORITIES)}."
        )
    if subject is not None and not subject.strip():
        raise InvalidInput("ticket.open.subject_required", "A ticket needs a subject.")
    ticket = await get_ticket(session, ticket_id, for_update=True)
    if ticket.state not in rules.OPEN_TICKET_STATES:
        raise PolicyViolation(
            "ticket.transition.valid_from_state",
            f"Ticket {ticket_id} is {ticket.state}: only an open ticket can be changed.",
            current=ticket.state,
        )
    changes = {}
    if priority is not None and priority != ticket.priority:
        changes["priority"] = [ticket.priority, priority]
        ticket.priority = priority
        minutes = await sla_minutes(session, ticket.ticket_type, priority)
        ticket.sla_due_at = rules.sla_due_at(ticket.opened_at, minutes)
    if subject is not None and subject.strip() != ticket.subject:
        changes["subject"] = [ticket.subject, subject.strip()[:200]]
        ticket.subject = subject.strip()[:200]
    if description is not None and description != ticket.description:
        changes["description"] = True
        ticket.description = description[:4000]
    if not changes:
        return ticket
    ticket.updated_at = clock.now()
    session.add(ticket)
    record(session, ctx, "ticket.updated", "ticket", ticket.id, _payload(ticket, changes=changes))
    _interaction(session, ctx, ticket, "ticket.updated", f"Ticket {ticket.id} updated ({', '.join(changes)})")
    return ticket


async def escalate_overdue(session: AsyncSession, ctx: RequestContext, ticket_id: str, at: datetime) -> bool:
    """The SLA timer's step: if the ticket is still open and its due time is at or before `at`
    (the timer's business time), raise its priority one level, assign the supervisor, note it,
    write `ticket.escalated`, and give it the new priority's due time from `at`. True when it
    escalated; a retry (the due time has moved past `at`) or a resolved ticket changes nothing."""
    ticket = await get_ticket(session, ticket_id, for_update=True)
    if ticket.state not in rules.OPEN_TICKET_STATES or ticket.sla_due_at is None or ticket.sla_due_at > at:
        return False
    before, due = ticket.priority, ticket.sla_due_at
    ticket.priority = rules.escalated_priority(before)
    ticket.escalations += 1
    chief = await supervisor(session)
    # At the top priority the ticket stays with the supervisor and its timer stops (no new due time).
    minutes = (
        await sla_minutes(session, ticket.ticket_type, ticket.priority) if before != ticket.priority else None
    )
    ticket.sla_due_at = rules.sla_due_at(at, minutes)
    ticket.updated_at = clock.now()
    to = f"{chief.name} ({chief.id})" if chief else "nobody (no active supervisor)"
    text = (
        f"SLA breached: due {ticket_due_text(due)} passed while {ticket.state}. "
        f"Priority {before} → {ticket.priority}; escalated to {to}."
    )
    _note(session, ticket, ctx.actor, text)
    session.add(ticket)
    if chief is not None and chief.id != ticket.assigned_to_agent_id:
        _assign(session, ctx, ticket, chief, " (SLA escalation)")
    record(
        session,
        ctx,
        "ticket.escalated",
        "ticket",
        ticket.id,
        _payload(
            ticket,
            previous_priority=before,
            assigned_to=chief.id if chief else None,
            escalations=ticket.escalations,
            sla_due_at=ticket.sla_due_at.isoformat() if ticket.sla_due_at else None,
        ),
    )
    _interaction(
        session,
        ctx,
        ticket,
        "ticket.escalated",
        f"Ticket {ticket.id} escalated: priority {before} → {ticket.priority}",
        body=text,
        agent_id=chief.id if chief else None,
    )
    return True


def ticket_due_text(at: datetime) -> str:
    return at.isoformat(timespec="minutes").replace("+00:00", "Z")


def _interaction(
    session: AsyncSession,
    ctx: RequestContext,
    ticket: Ticket,
    reason: str,
    summary: str,
    body: str = "",
    agent_id: str | None = None,
) -> None:
    """Every write to a ticket is an interaction on its customer's file (TMF683)."""
    interactions.log(
        session,
        ctx,
        customer_id=ticket.customer_id,
        reason=reason,
        summary=summary,
        body=body,
        agent_id=agent_id,
        case_id=ticket.case_id,
        ticket_id=ticket.id,
    )
