"""The workbench's queues: open tickets and cases by SLA due time on the business clock (overdue
first), the operator's own agent record (for "assign to me" and "mine"), the ticket and case pages,
and answering what a ticket stands for (its stuck task, else its waiting workflow).

Reads here; every write goes through the existing operations (ops/crm.py, ops/attention.py,
ops/orders.py, ops/cockpit.py) with the operator's RequestContext. ops/workbench.py re-exports these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from core.errors import InvalidInput, PolicyViolation
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
