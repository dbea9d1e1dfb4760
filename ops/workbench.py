"""The cockpit's workbench: case and ticket queues by SLA due time on the business clock, the
operator's own agent record (for "assign to me" and "mine"), and the plans of the confirm steps
for tickets, cases, port requests, promotions and the catalogue: each says exactly what the
action will do before anything is done.

Reads here; every write goes through the existing operations (ops/crm.py, ops/attention.py,
ops/porting.py, ops/promotions.py, ops/catalog.py) with the operator's RequestContext, so the
rules live once and the audit rows name the operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from core.errors import Conflict, InvalidInput, NotFound, PolicyViolation
from ops.runtime import Runtime

VIEWS = ("all", "mine", "unassigned")
QUEUE_MAX = 200


# ---------------------------------------------------------------------------------------- SLA clock


@dataclass(frozen=True)
class Due:
    """A due time seen from the business clock's now."""

    at: datetime | None
    overdue: bool
    text: str  # "3 h 20 min left", "1 d 2 h overdue", "no SLA"


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "under a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


def due(at: datetime | None, now: datetime | None = None) -> Due:
    if at is None:
        return Due(None, False, "no SLA")
    now = now or clock.now()
    if at <= now:
        return Due(at, True, f"{_span(now - at)} overdue")
    return Due(at, False, f"{_span(at - now)} left")


# ---------------------------------------------------------------------------------------- agents


async def agent_of(rt: Runtime, email: str) -> Any | None:
    """The CRM agent an operator works tickets as (same email), if there is one yet."""
    from domains.crm.models import Agent

    async with rt.db() as s:
        return (await s.exec(select(Agent).where(func.lower(Agent.email) == email.strip().lower()))).first()


async def ensure_agent(rt: Runtime, ctx: RequestContext, operator: Any) -> Any:
    """The operator's agent record, made on first use (tickets are assigned to agents). Its id is
    AGT-OP… so the seeded supervisor stays first in line for escalations."""
    from domains.audit.services import record
    from domains.crm.models import Agent

    found = await agent_of(rt, operator.email)
    if found is not None:
        if found.status != "active":
            raise PolicyViolation(
                "ticket.assign.agent_must_be_active", f"Agent {found.id} ({found.email}) is not active."
            )
        return found
    agent = Agent(
        id=f"AGT-OP{operator.id.removeprefix('OP-')}"[:16],
        name=(operator.name or operator.email)[:100],
        email=operator.email,
        role=operator.role,
        status="active",
    )
    try:
        async with transaction(rt.db) as s:
            s.add(agent)
            record(
                s,
                ctx,
                "agent.created",
                "agent",
                agent.id,
                {"email": agent.email, "role": agent.role, "operator_id": operator.id},
            )
    except IntegrityError:  # made by a concurrent request of the same operator
        pass
    made = await agent_of(rt, operator.email)
    assert made is not None
    return made


async def active_agents(rt: Runtime) -> list[Any]:
    from domains.crm.models import Agent

    async with rt.db() as s:
        return list(
            (
                await s.exec(
                    select(Agent)
                    .where(Agent.status == "active", Agent.role != "system")
                    .order_by(col(Agent.name), col(Agent.id))
                )
            ).all()
        )


def _view(view: str) -> str:
    if view not in VIEWS:
        raise InvalidInput("cockpit.queue.view", f"A queue view is one of {', '.join(VIEWS)}.")
    return view


# ---------------------------------------------------------------------------------------- tickets


@dataclass
class TicketRow:
    ticket: Any
    due: Due
    agent: Any | None  # the assignee's Agent row
    task: Any | None = None  # the stuck provisioning task this ticket was opened for

    @property
    def waits(self) -> bool:
        """Work waits on it: answering it (retry / resolve) moves a workflow, not only the ticket."""
        return self.ticket.waiting_workflow_id is not None or self.task is not None


async def _stuck_tasks(s: Any, ticket_ids: list[str]) -> dict[str, Any]:
    from domains.service_ordering.models import ProvisioningTask

    if not ticket_ids:
        return {}
    rows = await s.exec(
        select(ProvisioningTask).where(
            col(ProvisioningTask.ticket_id).in_(ticket_ids), ProvisioningTask.state == "stuck"
        )
    )
    return {t.ticket_id: t for t in rows.all()}


async def stuck_task_of(rt: Runtime, ticket_id: str) -> Any | None:
    """The stuck provisioning task a ticket was opened for, if it is still stuck."""
    async with rt.db() as s:
        return (await _stuck_tasks(s, [ticket_id])).get(ticket_id)


async def ticket_queue(
    rt: Runtime, *, view: str = "all", agent_id: str | None = None, limit: int = QUEUE_MAX
) -> list[TicketRow]:
    """Open tickets by SLA due time (overdue first, those without a due time last, then oldest).
    view: all | mine (assigned to `agent_id`) | unassigned."""
    from domains.crm.models import Agent, Ticket
    from domains.crm.rules import OPEN_TICKET_STATES

    view = _view(view)
    if view == "mine" and agent_id is None:
        return []
    stmt = select(Ticket).where(col(Ticket.state).in_(OPEN_TICKET_STATES))
    if view == "mine":
        stmt = stmt.where(Ticket.assigned_to_agent_id == agent_id)
    elif view == "unassigned":
        stmt = stmt.where(col(Ticket.assigned_to_agent_id).is_(None))
    now = clock.now()
    async with rt.db() as s:
        rows = list(
            (
                await s.exec(
                    stmt.order_by(
                        col(Ticket.sla_due_at).asc().nulls_last(), col(Ticket.opened_at), col(Ticket.id)
                    ).limit(max(1, min(limit, QUEUE_MAX)))
                )
            ).all()
        )
        agents = {a.id: a for a in (await s.exec(select(Agent))).all()}
        tasks = await _stuck_tasks(s, [t.id for t in rows])
    return [
        TicketRow(t, due(t.sla_due_at, now), agents.get(t.assigned_to_agent_id or ""), tasks.get(t.id))
        for t in rows
    ]


@dataclass
class TicketPage:
    row: TicketRow
    notes: list[Any]
    history: list[Any]
    case: Any | None


async def ticket_page(rt: Runtime, ticket_id: str) -> TicketPage:
    from domains.crm.models import Agent, SupportCase
    from ops import crm

    detail = await crm.ticket_detail(rt, ticket_id[:16])
    t = detail.ticket
    async with rt.db() as s:
        agent = await s.get(Agent, t.assigned_to_agent_id) if t.assigned_to_agent_id else None
        case = await s.get(SupportCase, t.case_id) if t.case_id else None
        task = (await _stuck_tasks(s, [t.id])).get(t.id)
    return TicketPage(TicketRow(t, due(t.sla_due_at), agent, task), detail.notes, detail.history, case)


@dataclass
class Plan:
    """An action spelled out before it is done (a cockpit confirm step)."""

    title: str
    effects: list[str]
    fields: dict[str, str] = field(default_factory=dict)  # what the confirmed post carries again


async def ticket_plan(rt: Runtime, ticket_id: str, action: str, text: str) -> Plan:
    """The confirm step of a ticket's final or workflow-moving actions: close, and retry / resolve
    of a ticket a workflow waits on."""
    from domains.crm.rules import OPEN_TICKET_STATES
    from ops import attention

    ticket = await attention.get_ticket(rt, ticket_id[:16])
    text = text.strip()
    if action == "close":
        if ticket.state != "resolved":
            raise PolicyViolation(
                "ticket.transition.valid_from_state",
                f"Ticket {ticket.id} is {ticket.state}; only a resolved ticket can be closed.",
            )
        return Plan(
            f"close ticket {ticket.id}",
            [
                f"Close ticket {ticket.id} ({ticket.subject}) for good: a closed ticket cannot be reopened.",
                f"Its resolution stays as written: {ticket.resolution_notes or '(none)'}.",
            ],
            {"action": "close"},
        )
    task = await stuck_task_of(rt, ticket.id)
    if (ticket.waiting_workflow_id is None and task is None) or action not in ("retry", "resolve"):
        raise PolicyViolation("ticket.action_invalid", f"{action!r} needs no confirm on {ticket.id}.")
    if ticket.state not in OPEN_TICKET_STATES:
        raise PolicyViolation("ticket.transition.valid_from_state", f"Ticket {ticket.id} is {ticket.state}.")
    if action == "resolve" and not text:
        raise PolicyViolation(
            "ticket.resolve.requires_resolution_notes", "Say what was done by hand: a note is required."
        )
    if task is not None:
        step = f"the stuck step {task.task_type} (task {task.id}, {task.attempts} attempt(s))"
        if action == "retry":
            effects = [f"Ask the provisioning workflow to run {step} again now."]
        else:
            effects = [
                f"Tell the provisioning workflow that {step} was done by hand, with the note: {text}",
                "The order carries on from there.",
            ]
        effects.append(f"Ticket {ticket.id} is resolved by the workflow once the step is done.")
        return Plan(f"{action} ticket {ticket.id}", effects, {"action": action, "text": text})
    if action == "retry":
        effects = [
            f"Ask the workflow {ticket.waiting_workflow_id} to run its waiting step "
            f"({ticket.waiting_topic or 'the step'}) again now.",
            f"The workflow resolves ticket {ticket.id} itself once it has acted.",
        ]
    else:
        effects = [
            f"Tell the workflow {ticket.waiting_workflow_id} that its waiting step "
            f"({ticket.waiting_topic or 'the step'}) was done by hand, with the note: {text}",
            f"The workflow carries on from there and resolves ticket {ticket.id}.",
        ]
    return Plan(f"{action} ticket {ticket.id}", effects, {"action": action, "text": text})


async def answer_ticket(rt: Runtime, ctx: RequestContext, ticket_id: str, action: str, text: str) -> Any:
    """Retry or resolve what a ticket stands for: its stuck provisioning task (ops.orders), else the
    workflow waiting on it (ops.attention); a plain ticket is noted, resolved or closed (ops.crm)."""
    from ops import cockpit, orders

    task = await stuck_task_of(rt, ticket_id) if action in ("retry", "resolve") else None
    if task is None:
        return await cockpit.work_ticket(rt, ctx, ticket_id, action, text)
    if action == "retry":
        return await orders.retry_task(rt, ctx, task.id)
    return await orders.resolve_task(rt, ctx, task.id, text)


# ---------------------------------------------------------------------------------------- cases


@dataclass
class CaseRow:
    case: Any
    due: Due  # the earliest due time of its open tickets
    open_tickets: int
    assignees: list[str]  # agent ids of its open tickets


async def case_queue(
    rt: Runtime,
    *,
    view: str = "all",
    agent_id: str | None = None,
    actor: str | None = None,
    limit: int = QUEUE_MAX,
) -> list[CaseRow]:
    """Open cases by the SLA due time of their most pressing open ticket (overdue first; cases
    without one last, oldest first). mine: a ticket of it is assigned to `agent_id`, or `actor`
    opened it; unassigned: none of its open tickets is assigned."""
    from domains.crm.models import SupportCase, Ticket
    from domains.crm.rules import OPEN_CASE_STATES, OPEN_TICKET_STATES

    view = _view(view)
    now = clock.now()
    async with rt.db() as s:
        cases = list(
            (
                await s.exec(
                    select(SupportCase)
                    .where(col(SupportCase.state).in_(OPEN_CASE_STATES))
                    .order_by(col(SupportCase.opened_at))
                    .limit(500)
                )
            ).all()
        )
        tickets: dict[str, list[Any]] = {c.id: [] for c in cases}
        if cases:
            for t in (
                await s.exec(
                    select(Ticket).where(
                        col(Ticket.case_id).in_(list(tickets)), col(Ticket.state).in_(OPEN_TICKET_STATES)
                    )
                )
            ).all():
                tickets[t.case_id].append(t)
    rows = []
    for c in cases:
        open_ = tickets[c.id]
        dues = [t.sla_due_at for t in open_ if t.sla_due_at is not None]
        assignees = sorted({t.assigned_to_agent_id for t in open_ if t.assigned_to_agent_id})
        if view == "mine" and not ((agent_id and agent_id in assignees) or (actor and c.opened_by == actor)):
            continue
        if view == "unassigned" and assignees:
            continue
        rows.append(CaseRow(c, due(min(dues) if dues else None, now), len(open_), assignees))
    far = datetime.max.replace(tzinfo=now.tzinfo)
    rows.sort(key=lambda r: (r.due.at or far, r.case.opened_at, r.case.id))
    return rows[: max(1, min(limit, QUEUE_MAX))]


@dataclass
class CasePage:
    case: Any
    notes: list[Any]
    tickets: list[TicketRow]


async def case_page(rt: Runtime, case_id: str) -> CasePage:
    from domains.crm.models import Agent
    from ops import crm

    detail = await crm.case_detail(rt, case_id[:16])
    now = clock.now()
    async with rt.db() as s:
        agents = {a.id: a for a in (await s.exec(select(Agent))).all()}
    return CasePage(
        detail.case,
        detail.notes,
        [
            TicketRow(t, due(t.sla_due_at, now), agents.get(t.assigned_to_agent_id or ""))
            for t in detail.tickets
        ],
    )


async def case_close_plan(rt: Runtime, case_id: str, resolution_code: str, note: str) -> Plan:
    from domains.crm.rules import DONE_TICKET_STATES
    from ops import crm

    detail = await crm.case_detail(rt, case_id[:16])
    case = detail.case
    code = resolution_code.strip()[:50]
    if case.state == "closed":
        raise PolicyViolation("case.update.case_is_closed", f"Case {case.id} is closed.")
    if not code:
        raise PolicyViolation(
            "case.close.requires_resolution_code", "Closing a case needs a resolution code."
        )
    pending = [t.id for t in detail.tickets if t.state not in DONE_TICKET_STATES]
    if pending:
        raise PolicyViolation(
            "case.close.requires_all_tickets_resolved",
            f"Case {case.id} still has open tickets: {', '.join(pending)}.",
        )
    effects = [
        f"Close case {case.id} ({case.subject}) of {case.customer_id} with resolution code {code}"
        + ("" if case.state == "resolved" else f", resolving it first (it is {case.state})")
        + ".",
        "A closed case takes no more notes or changes and cannot be reopened.",
    ]
    if note.strip():
        effects.append(f"The note is added to it: {note.strip()}")
    return Plan(
        f"close case {case.id}",
        effects,
        {"action": "close", "resolution_code": code, "text": note.strip()},
    )


# ---------------------------------------------------------------------------------------- porting


async def port_plan(rt: Runtime, port_id: str, action: str, reason: str = "") -> Plan:
    """What approving or rejecting a port request does, from the request as it is now."""
    from domains.porting.rules import FINAL_STATES, MAX_REASON
    from ops import porting

    p = await porting.get(rt, port_id[:20])
    if p["state"] in FINAL_STATES:
        raise PolicyViolation(
            f"port.{action if action in ('approve', 'reject') else 'approve'}.invalid_state",
            f"Port request {p['id']} is {p['state']}; there is nothing left to decide.",
        )
    date = (p["requestedPortDate"] or "")[:10]
    if p["direction"] == "port_in":
        where = (
            f"a new {p['offeringId']} line of {p['customerId']}"
            if p["offeringId"]
            else f"line {p['subscriptionId']} of {p['customerId']} (its present number goes to quarantine)"
        )
        what = f"port-in of {p['msisdn']} from {p['donorCarrier']} to {where}"
    else:
        what = (
            f"port-out of {p['msisdn']} (line {p['subscriptionId']} of {p['customerId']}) "
            f"to {p['recipientCarrier']}"
        )
    if action == "approve":
        if p["state"] != "validated":
            raise PolicyViolation(
                "port.approve.invalid_state",
                f"Only a validated port request can be approved; {p['id']} is {p['state']}.",
            )
        effects = [f"Approve the {what}."]
        if p["direction"] == "port_in":
            effects.append(f"On the port date ({date}) the number joins our pool and moves to that line.")
        else:
            effects.append(
                f"On the port date ({date}) the line is terminated (reason ported_out) and the "
                "number leaves us for good."
            )
        return Plan(f"approve {p['id']}", effects, {"action": "approve"})
    if action == "reject":
        reason = reason.strip()
        if not reason:
            raise PolicyViolation("port.reject.reason_required", "A rejection needs a reason.")
        if len(reason) > MAX_REASON:
            raise InvalidInput("port.reject.reason_too_long", f"A reason is at most {MAX_REASON} characters.")
        return Plan(
            f"reject {p['id']}",
            [
                f"Reject the {what}; it ends as rejected and nothing moves.",
                f"The reason recorded: {reason}",
            ],
            {"action": "reject", "reason": reason},
        )
    raise InvalidInput("cockpit.port.action", "Approve or reject.")


# ---------------------------------------------------------------------------------------- promotions


def describe_promotion(req: Any) -> list[str]:
    """The terms of a new promotion (ops.promotions.NewPromotion) in words."""
    off = (
        f"{req.discount_value}% off"
        if req.discount_type == "percent"
        else f"SGD {Decimal(req.discount_value):.2f} off"
    )
    periods = (
        "every period for as long as the line lives" if req.periods is None else f"{req.periods} period(s)"
    )
    kind = {
        "single_use_shared": "one use in all",
        "multi_use": "any customer, many times",
        "single_use_per_customer": "once per customer",
    }.get(req.code_kind, req.code_kind)
    cap = "no cap on uses" if req.max_uses is None else f"at most {req.max_uses} use(s)"
    window = (f"valid from {req.valid_from:%d %b %Y %H:%M} UTC" if req.valid_from else "valid from now") + (
        f" until {req.valid_to:%d %b %Y %H:%M} UTC" if req.valid_to else ", no end date"
    )
    who = (
        f"only for {', '.join(req.eligible_customer_ids)}"
        if req.eligible_customer_ids
        else "for any customer who types the code"
    )
    return [
        f"Create promotion {req.code} ({req.name}): {off} the plan price for {periods}.",
        f"Code kind: {kind}; {cap}; {window}; {who}.",
        "From then on every new order with this code gets the discount.",
    ]


def check_promotion(req: Any) -> None:
    """The promotion's pure rules, so the confirm step never promises what creating refuses."""
    from domains.catalog import promotions

    promotions._check_terms(
        discount_type=req.discount_type,
        discount_value=req.discount_value,
        periods=req.periods,
        code_kind=req.code_kind,
        max_uses=req.max_uses,
        valid_from=req.valid_from,
        valid_to=req.valid_to,
    )


async def promotion_create_plan(rt: Runtime, req: Any) -> Plan:
    from domains.catalog.promotions import normalise
    from ops import promotions

    check_promotion(req)
    req.code = normalise(req.code)
    try:
        await promotions.show(rt, req.code)
    except NotFound:
        pass
    else:
        raise Conflict("catalog.promotion.code_in_use", f"Promo code {req.code} already exists.")
    return Plan(f"create promotion {req.code}", describe_promotion(req))


async def promotion_exhaust_plan(rt: Runtime, code: str) -> Plan:
    from ops import promotions

    view = await promotions.show(rt, code[:32])
    p = view.promotion
    if p.state == "exhausted" and p.state_reason == "operator":
        raise PolicyViolation("catalog.promotion.exhaust.not_active", f"{p.code} is already exhausted.")
    return Plan(
        f"exhaust promotion {p.code}",
        [
            f"Stop promotion {p.code} ({p.name}) for good: no new order can use it; this cannot be undone.",
            f"It has been used {p.uses} time(s); discounts already granted stay as they are.",
        ],
    )


# ---------------------------------------------------------------------------------------- catalogue


def _window(valid_from: datetime | None, valid_to: datetime | None) -> str:
    start = f"from {valid_from:%d %b %Y %H:%M} UTC" if valid_from else "from now"
    end = f" until {valid_to:%d %b %Y %H:%M} UTC" if valid_to else " with no end"
    return start + end


async def add_offering_plan(
    rt: Runtime,
    *,
    offering_id: str,
    name: str,
    amount: Decimal,
    allowances: dict[str, int],
    price_id: str | None,
    valid_from: datetime | None,
    valid_to: datetime | None,
) -> Plan:
    from domains.catalog import rules

    rules.check_allowances(allowances)
    rules.check_price(amount, valid_from, valid_to)
    try:
        from ops import catalog

        await catalog.offering_details(rt, offering_id)
    except NotFound:
        pass
    else:
        raise PolicyViolation("catalog.offering.already_exists", f"Offering {offering_id} already exists.")
    gives = ", ".join(
        f"{kind} {'unlimited' if q == rules.UNLIMITED else f'{q} {rules.ALLOWANCE_UNITS[kind]}'}"
        for kind, q in allowances.items()
    )
    return Plan(
        f"add plan {offering_id}",
        [
            f"Add the plan {offering_id} ({name}) with {gives} per 30-day period.",
            f"Its price {price_id or 'PRICE_' + offering_id}: {rules.CURRENCY} {amount:.2f}, "
            f"{_window(valid_from, valid_to)}.",
            "It is on sale to every customer in that window.",
        ],
    )


async def add_price_plan(
    rt: Runtime,
    offering_id: str,
    price_id: str,
    amount: Decimal,
    valid_from: datetime | None,
    valid_to: datetime | None,
) -> Plan:
    from domains.catalog import rules
    from ops import catalog

    rules.check_price(amount, valid_from, valid_to)
    details = await catalog.offering_details(rt, offering_id[:64])
    if details.offering.lifecycle_status != rules.ACTIVE:
        raise PolicyViolation(
            "catalog.offering.already_retired", f"Offering {offering_id} is retired; it takes no new prices."
        )
    if any(p.id == price_id for p in details.prices):
        raise PolicyViolation("catalog.price.already_exists", f"Price {price_id} already exists.")
    now = details.active_price
    effects = [
        f"Add the price {price_id} to {details.offering.id}: {rules.CURRENCY} {amount:.2f}, "
        f"{_window(valid_from, valid_to)}.",
        "While windows overlap the cheapest price is the one on sale; lines already sold keep theirs.",
    ]
    if now is not None:
        effects.append(f"On sale now: {now.id} at {now.currency} {now.amount:.2f}.")
    return Plan(f"add price {price_id}", effects)


async def retire_plan(rt: Runtime, offering_id: str) -> Plan:
    from domains.catalog import rules
    from ops import catalog

    details = await catalog.offering_details(rt, offering_id[:64])
    if details.offering.lifecycle_status != rules.ACTIVE:
        raise PolicyViolation(
            "catalog.offering.already_retired", f"Offering {offering_id} is retired already."
        )
    return Plan(
        f"retire plan {details.offering.id}",
        [
            f"Stop selling {details.offering.id} ({details.offering.name}): no new order can choose it.",
            "Lines already on the plan keep it and renew at their price; a retired plan cannot be sold again.",
        ],
    )
