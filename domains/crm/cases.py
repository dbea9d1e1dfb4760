"""Cases (`CASE-xxxxxxxx`): one customer's matter, grouping its trouble tickets (inventory §4.6).

States open → in_progress ⇄ pending_customer → resolved → closed; `cancel` closes an open case
and cancels its open tickets. `resolve` needs every ticket of the case done (resolved, closed or
cancelled); `close` needs a resolution code, and `close_case` resolves first when it can. A closed
case takes no notes, changes or tickets. Audit events `case.opened`, `case.closed` (COMMON) and
`case.<trigger>` for the others; every write logs an interaction on the customer's file.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import RequestContext
from core.errors import InvalidInput, NotFound, PolicyViolation
from core.ids import random_id
from domains.audit.services import record
from domains.crm import interactions, rules, tickets
from domains.crm.models import CaseNote, Customer, SupportCase, Ticket

CASE_EVENTS = {
    "take": "case.taken",
    "await_customer": "case.awaiting_customer",
    "resume": "case.resumed",
    "resolve": "case.resolved",
    "close": "case.closed",
    "cancel": "case.cancelled",
}


def _payload(case: SupportCase, **extra) -> dict:
    return {
        "customer_id": case.customer_id,
        "case_id": case.id,
        "subject": case.subject,
        "priority": case.priority,
        "state": case.state,
        **extra,
    }


def _check_priority(priority: str) -> None:
    if priority not in rules.CASE_PRIORITIES:
        raise InvalidInput(
            "case.update.invalid_priority",
            f"Priority must be one of {', '.join(rules.CASE_PRIORITIES)}; got {priority!r}.",
        )


async def open_case(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    customer_id: str,
    subject: str,
    description: str = "",
    priority: str = "normal",
    category: str = "other",
    agent_id: str | None = None,
) -> SupportCase:
    _check_priority(priority)
    if category not in rules.CASE_CATEGORIES:
        raise InvalidInput(
            "case.open.invalid_category", f"Category must be one of {', '.join(rules.CASE_CATEGORIES)}."
        )
    if not subject.strip():
        raise InvalidInput("case.open.subject_required", "A case needs a subject.")
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("case.open.customer_not_found", f"No customer {customer_id}.", customer_id=customer_id)
    if customer.status != "active":
        raise PolicyViolation(
            "case.open.customer_must_be_active",
            f"Customer {customer_id} is {customer.status}; cases are opened for active customers.",
        )
    if agent_id is not None:
        await tickets.active_agent(session, agent_id)
    now = clock.now()
    case = SupportCase(
        id=random_id("CASE"),
        customer_id=customer_id,
        subject=subject.strip()[:200],
        description=description[:4000],
        state="open",
        priority=priority,
        category=category,
        opened_by=ctx.actor[:200],
        opened_by_agent_id=agent_id,
        opened_at=now,
        updated_at=now,
    )
    session.add(case)
    await session.flush()
    record(session, ctx, "case.opened", "case", case.id, _payload(case, category=category))
    interactions.log(
        session,
        ctx,
        customer_id=customer_id,
        reason="case.opened",
        summary=f"Case {case.id} opened: {case.subject}",
        body=case.description,
        agent_id=agent_id,
        case_id=case.id,
    )
    return case


async def get_case(session: AsyncSession, case_id: str, *, for_update: bool = False) -> SupportCase:
    query = select(SupportCase).where(SupportCase.id == case_id)
    if for_update:
        query = query.with_for_update()
    case = (await session.exec(query)).first()
    if case is None:
        raise NotFound("case.not_found", f"No case {case_id}.", case_id=case_id)
    return case


def case_query(*, customer_id: str | None = None, state: str | None = None):
    query = select(SupportCase)
    if customer_id is not None:
        query = query.where(SupportCase.customer_id == customer_id)
    if state == "open":
        query = query.where(col(SupportCase.state).in_(rules.OPEN_CASE_STATES))
    elif state is not None:
        query = query.where(SupportCase.state == state)
    return query


async def list_cases(
    session: AsyncSession,
    *,
    customer_id: str | None = None,
    state: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[list[SupportCase], int]:
    query = case_query(customer_id=customer_id, state=state)
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(
        query.order_by(col(SupportCase.opened_at).desc(), col(SupportCase.id)).offset(offset).limit(limit)
    )
    return list(rows.all()), total


async def case_notes(session: AsyncSession, case_id: str) -> list[CaseNote]:
    rows = await session.exec(select(CaseNote).where(CaseNote.case_id == case_id).order_by(col(CaseNote.id)))
    return list(rows.all())


async def case_tickets(session: AsyncSession, case_id: str) -> list[Ticket]:
    rows = await session.exec(select(Ticket).where(Ticket.case_id == case_id).order_by(col(Ticket.opened_at)))
    return list(rows.all())


def _refuse_closed(case: SupportCase, code: str) -> None:
    if case.state == "closed":
        raise PolicyViolation(code, f"Case {case.id} is closed.", case_id=case.id)


async def add_note(session: AsyncSession, ctx: RequestContext, case_id: str, text: str) -> SupportCase:
    if not (text or "").strip():
        raise InvalidInput("case.add_note.text_required", "A note needs text.")
    case = await get_case(session, case_id, for_update=True)
    _refuse_closed(case, "case.add_note.case_is_closed")
    now = clock.now()
    session.add(CaseNote(case_id=case.id, author=ctx.actor[:200], body=text.strip()[:4000], created_at=now))
    case.updated_at = now
    session.add(case)
    record(session, ctx, "case.note_added", "case", case.id, _payload(case))
    interactions.log(
        session,
        ctx,
        customer_id=case.customer_id,
        reason="case.note_added",
        summary=f"Note on case {case.id}",
        body=text.strip(),
        case_id=case.id,
    )
    return case


async def update_case(
    session: AsyncSession,
    ctx: RequestContext,
    case_id: str,
    *,
    priority: str | None = None,
    subject: str | None = None,
) -> SupportCase:
    if priority is not None:
        _check_priority(priority)
    case = await get_case(session, case_id, for_update=True)
    _refuse_closed(case, "case.update.case_is_closed")
    changes = {}
    if priority is not None and priority != case.priority:
        changes["priority"] = [case.priority, priority]
        case.priority = priority
    if subject is not None and subject.strip() and subject.strip() != case.subject:
        changes["subject"] = [case.subject, subject.strip()[:200]]
        case.subject = subject.strip()[:200]
    if changes:
        case.updated_at = clock.now()
        session.add(case)
        record(session, ctx, "case.updated", "case", case.id, _payload(case, changes=changes))
        interactions.log(
            session,
            ctx,
            customer_id=case.customer_id,
            reason="case.updated",
            summary=f"Case {case.id} updated ({', '.join(changes)})",
            case_id=case.id,
        )
    return case


async def transition_case(
    session: AsyncSession,
    ctx: RequestContext,
    case_id: str,
    trigger: str,
    *,
    resolution_code: str | None = None,
    note: str | None = None,
) -> tuple[SupportCase, list[str]]:
    """Move a case along its lifecycle; returns it and the tickets a cancel cancelled."""
    if trigger not in rules.CASE_TRIGGERS:
        raise InvalidInput(
            "case.transition.unknown_trigger",
            f"A case's trigger is one of {', '.join(rules.CASE_TRIGGERS)}; got {trigger!r}.",
        )
    case = await get_case(session, case_id, for_update=True)
    _refuse_closed(case, "case.update.case_is_closed")
    previous = case.state
    target = rules.CASE_LIFECYCLE.next(trigger, case.state, code="case.transition.valid_from_state")
    if trigger == "close" and not (resolution_code or case.resolution_code or "").strip():
        raise PolicyViolation(
            "case.close.requires_resolution_code", "Closing a case needs a resolution code."
        )
    children = await case_tickets(session, case.id)
    if trigger == "resolve":
        pending = [t.id for t in children if t.state not in rules.DONE_TICKET_STATES]
        if pending:
            raise PolicyViolation(
                "case.close.requires_all_tickets_resolved",
                f"Case {case.id} still has open tickets: {', '.join(pending)}.",
                open_ticket_ids=pending,
            )
    cancelled = []
    if trigger == "cancel":
        for t in children:
            if t.state in rules.OPEN_TICKET_STATES:
                await tickets.transition_ticket(
                    session, ctx, t.id, "cancel", reason=f"case {case.id} cancelled"
                )
                cancelled.append(t.id)
    now = clock.now()
    case.state = target
    case.updated_at = now
    if resolution_code:
        case.resolution_code = resolution_code.strip()[:50]
    if trigger == "resolve":
        case.resolved_at = now
    if target == "closed":
        case.closed_at = now
    session.add(case)
    if note and note.strip():
        session.add(
            CaseNote(case_id=case.id, author=ctx.actor[:200], body=note.strip()[:4000], created_at=now)
        )
    record(
        session,
        ctx,
        CASE_EVENTS[trigger],
        "case",
        case.id,
        _payload(
            case,
            **{"from": previous, "resolution_code": case.resolution_code, "cancelled_tickets": cancelled},
        ),
    )
    interactions.log(
        session,
        ctx,
        customer_id=case.customer_id,
        reason=CASE_EVENTS[trigger],
        summary=f"Case {case.id}: {previous} → {case.state}"
        + (f" ({case.resolution_code})" if target == "closed" and case.resolution_code else ""),
        body=(note or "").strip(),
        case_id=case.id,
    )
    return case, cancelled


async def close_case(
    session: AsyncSession, ctx: RequestContext, case_id: str, resolution_code: str, note: str | None = None
) -> SupportCase:
    """Resolve (when it can) then close, in one transaction: either both happen or neither."""
    if not (resolution_code or "").strip():
        raise PolicyViolation(
            "case.close.requires_resolution_code", "Closing a case needs a resolution code."
        )
    case = await get_case(session, case_id, for_update=True)
    _refuse_closed(case, "case.update.case_is_closed")
    if case.state != "resolved":
        await transition_case(session, ctx, case_id, "resolve", resolution_code=resolution_code)
    case, _ = await transition_case(
        session, ctx, case_id, "close", resolution_code=resolution_code, note=note
    )
    return case
