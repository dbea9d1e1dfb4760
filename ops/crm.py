"""Customer, case and ticket operations for every door (API, CLI via the API, portals, agent)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from core.context import RequestContext
from core.db import transaction
from core.errors import PolicyViolation
from domains.crm import services
from domains.crm.models import CrmIdempotencyKey
from domains.crm.services import CustomerView
from ops import idempotency
from ops.runtime import Runtime


async def create_customer(
    rt: Runtime,
    ctx: RequestContext,
    *,
    given_name: str,
    family_name: str,
    email: str | None = None,
    phone: str | None = None,
    date_of_birth: date | None = None,
    status: str = "active",
    idempotency_key: str | None = None,
) -> tuple[CustomerView, bool]:
    """The new customer (or, for a replayed Idempotency-Key, the one it created) and whether replayed."""
    request = {
        "given_name": given_name,
        "family_name": family_name,
        "email": email,
        "phone": phone,
        "date_of_birth": date_of_birth,
        "status": status,
    }

    async def create(s: AsyncSession) -> str:
        customer = await services.create_customer(
            s,
            ctx,
            given_name=given_name,
            family_name=family_name,
            email=email,
            phone=phone,
            date_of_birth=date_of_birth,
            status=status,
        )
        return customer.id

    return await idempotency.once(
        rt.db,
        CrmIdempotencyKey,
        "customer.create",
        idempotency_key,
        idempotency.fingerprint(request),
        create,
        services.customer_view,
    )


async def get_customer(rt: Runtime, customer_id: str) -> CustomerView:
    async with rt.db() as s:
        return await services.customer_view(s, customer_id)


async def list_customers(
    rt: Runtime,
    *,
    status: str | None = None,
    name_contains: str | None = None,
    email: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[CustomerView]:
    async with rt.db() as s:
        rows = await services.list_customers(
            s, status=status, name_contains=name_contains, email=email, offset=offset, limit=limit
        )
        return await services.load_customer_views(s, rows)


async def update_customer(rt: Runtime, ctx: RequestContext, customer_id: str, **changes: Any) -> CustomerView:
    async with transaction(rt.db) as s:
        if changes.get("status") == "closed":
            await _refuse_close_with_live_lines(s, customer_id)
        await services.update_customer(s, ctx, customer_id, **changes)
        return await services.customer_view(s, customer_id)


async def _refuse_close_with_live_lines(session: AsyncSession, customer_id: str) -> None:
    """Closing a customer who still has lines would strand them: terminate the lines first."""
    from domains.subscription.services import list_subscriptions

    await services.get_customer(session, customer_id, for_update=True)
    live = [
        sub.id
        for sub in await list_subscriptions(session, customer_id=customer_id)
        if sub.state != "terminated"
    ]
    if live:
        raise PolicyViolation(
            "customer.close.no_active_subscriptions",
            f"Customer {customer_id} still has lines ({', '.join(live)}); terminate them first.",
            subscription_ids=live,
        )


# KYC attestations are recorded by ops/kyc.py (signature verified first, keyed hash).


# ------------------------------------------------------------------------------ cases and tickets
#
# Each write commits first; then the ticket's SLA timer (workflows/ticket_sla.py) is started for a
# new ticket, or told the ticket changed. Both are best effort: a timer that could not start is
# started by the worker's sweep (sweep_ticket_timers), and a timer that missed a change reads the
# ticket again when its due time comes.

log = logging.getLogger("bss.crm")
SLA_SWEEP_CTX = RequestContext(actor="ticket-sla-sweeper", channel="system", service_identity="worker")
SLA_START_GRACE_SECONDS = 30.0


@dataclass
class TicketDetail:
    ticket: Any
    notes: list[Any] = field(default_factory=list)
    history: list[Any] = field(default_factory=list)


@dataclass
class CaseDetail:
    case: Any
    notes: list[Any] = field(default_factory=list)
    tickets: list[Any] = field(default_factory=list)


async def start_sla_timer(rt: Runtime, ticket_id: str, customer_id: str | None = None) -> bool:
    """Start `ticket-sla-<TKT id>` unless it exists (running or done): True when it runs or ran."""
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from ops.som import TEMPORAL_TIMEOUT
    from workflows.common import CUSTOMER_ID, attributes
    from workflows.ticket_sla import TicketSlaInput, TicketSlaWorkflow, ticket_sla_workflow_id

    try:
        client = await asyncio.wait_for(rt.temporal(), TEMPORAL_TIMEOUT)
        await client.start_workflow(
            TicketSlaWorkflow.run,
            TicketSlaInput(ticket_id),
            id=ticket_sla_workflow_id(ticket_id),
            task_queue=rt.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=attributes(CUSTOMER_ID.value_set(customer_id)) if customer_id else None,
            rpc_timeout=timedelta(seconds=TEMPORAL_TIMEOUT),
        )
        return True
    except WorkflowAlreadyStartedError:
        return True
    except Exception as exc:  # noqa: BLE001 - the sweep starts it later
        log.warning(
            "SLA timer of %s not started (%s: %s); the sweep will", ticket_id, type(exc).__name__, exc
        )
        return False


async def tell_sla_timer(rt: Runtime, ticket_id: str) -> None:
    """Wake the ticket's timer to read it again (a state or priority change); best effort."""
    from ops.som import TEMPORAL_TIMEOUT
    from workflows.ticket_sla import TicketChanged, TicketSlaWorkflow, ticket_sla_workflow_id

    try:
        client = await asyncio.wait_for(rt.temporal(), TEMPORAL_TIMEOUT)
        await client.get_workflow_handle(ticket_sla_workflow_id(ticket_id)).signal(
            TicketSlaWorkflow.ticket_changed, TicketChanged(), rpc_timeout=timedelta(seconds=TEMPORAL_TIMEOUT)
        )
    except Exception as exc:  # noqa: BLE001 - ended already, or Temporal away: it reads the ticket at its due time
        log.info("SLA timer of %s not told of the change (%s)", ticket_id, type(exc).__name__)


async def sweep_ticket_timers(rt: Runtime, *, grace_seconds: float = SLA_START_GRACE_SECONDS) -> list[str]:
    """Start the timer of every open ticket with a due time whose timer never took it up."""
    from sqlmodel import col, select

    from core.clock import clock
    from domains.crm import rules
    from domains.crm.models import Ticket

    async with rt.db() as s:
        rows = (
            await s.exec(
                select(Ticket.id, Ticket.customer_id)
                .where(
                    col(Ticket.state).in_(rules.OPEN_TICKET_STATES),
                    col(Ticket.sla_due_at).is_not(None),
                    col(Ticket.sla_timer_started_at).is_(None),
                    col(Ticket.opened_at) < clock.now() - timedelta(seconds=grace_seconds),
                )
                .limit(500)
            )
        ).all()
    return [ticket_id for ticket_id, customer_id in rows if await start_sla_timer(rt, ticket_id, customer_id)]


async def run_ticket_sla_sweeper(rt: Runtime, stop: asyncio.Event) -> None:
    """The worker's loop: start missed SLA timers at start, then every `order_sweep_seconds`."""
    while not stop.is_set():
        try:
            started = await sweep_ticket_timers(rt)
            if started:
                log.info("ticket SLA sweep: started timers of %s", started)
        except Exception:  # noqa: BLE001 - the database may be down: next round
            log.exception("ticket SLA sweep failed")
        try:
            await asyncio.wait_for(stop.wait(), rt.settings.order_sweep_seconds)
        except TimeoutError:
            pass


async def list_agents(rt: Runtime, role: str | None = None):
    from domains.crm import tickets

    async with rt.db() as s:
        return await tickets.list_agents(s, role=role)


async def open_ticket(
    rt: Runtime,
    ctx: RequestContext,
    *,
    idempotency_key: str | None = None,
    notes: list[str] = (),
    **fields: Any,
) -> tuple[TicketDetail, bool]:
    """The new ticket with its first notes (or, for a replayed Idempotency-Key, the one it opened)
    and whether replayed; its SLA timer is started after the commit."""
    from domains.crm import tickets

    async def create(s: AsyncSession) -> str:
        ticket = await tickets.open_ticket(s, ctx, **fields)
        for text in notes:
            await tickets.add_ticket_note(s, ctx, ticket.id, text)
        return ticket.id

    async def load(s: AsyncSession, ticket_id: str):
        return await tickets.get_ticket(s, ticket_id)

    ticket, replayed = await idempotency.once(
        rt.db,
        CrmIdempotencyKey,
        "ticket.open",
        idempotency_key,
        idempotency.fingerprint(fields),
        create,
        load,
    )
    await start_sla_timer(rt, ticket.id, ticket.customer_id)
    return await ticket_detail(rt, ticket.id), replayed


async def ticket_detail(rt: Runtime, ticket_id: str) -> TicketDetail:
    from domains.crm import tickets

    async with rt.db() as s:
        ticket = await tickets.get_ticket(s, ticket_id)
        notes = await tickets.ticket_notes(s, [ticket_id])
        history = await tickets.ticket_history(s, [ticket_id])
    return TicketDetail(ticket, notes[ticket_id], history[ticket_id])


async def list_tickets(rt: Runtime, *, offset: int = 0, limit: int = 100, **filters: Any):
    """(details, total) newest first; filters: state ('open' = any open state), customer_id,
    case_id, agent_id, priority, waiting."""
    from domains.crm import tickets

    async with rt.db() as s:
        rows = await tickets.list_tickets(s, offset=offset, limit=limit, **filters)
        total = await tickets.count_tickets(s, **filters)
        ids = [t.id for t in rows]
        notes = await tickets.ticket_notes(s, ids)
        history = await tickets.ticket_history(s, ids)
    return [TicketDetail(t, notes[t.id], history[t.id]) for t in rows], total


async def change_ticket(
    rt: Runtime,
    ctx: RequestContext,
    ticket_id: str,
    *,
    subject: str | None = None,
    description: str | None = None,
    priority: str | None = None,
    agent_id: str | None = None,
    notes: list[str] = (),
    trigger: str | None = None,
    status: str | None = None,
    reason: str | None = None,
    resolution_notes: str | None = None,
) -> TicketDetail:
    """One change of a ticket, all or nothing: fields, assignment, notes, then a transition (by
    `trigger`, or by a TMF621 target `status`). A refused transition leaves everything unchanged."""
    from domains.crm import rules, tickets

    async with transaction(rt.db) as s:
        ticket = await tickets.get_ticket(s, ticket_id, for_update=True)
        if subject is not None or description is not None or priority is not None:
            await tickets.update_ticket(
                s, ctx, ticket_id, subject=subject, description=description, priority=priority
            )
        if agent_id is not None and agent_id != ticket.assigned_to_agent_id:
            await tickets.assign_ticket(s, ctx, ticket_id, agent_id)
        for text in notes:
            await tickets.add_ticket_note(s, ctx, ticket_id, text)
        if status is not None:
            if rules.TMF_TICKET_STATUS.get(ticket.state) == status and not (
                ticket.state == "open" and status == "acknowledged"
            ):
                trigger = None  # already there: nothing to do
            else:
                trigger = rules.ticket_trigger_for_status(ticket.state, status)
        if trigger is not None:
            await tickets.transition_ticket(
                s,
                ctx,
                ticket_id,
                trigger,
                notes=resolution_notes or reason,
                agent_id=agent_id if trigger == "ack" else None,
                reason=reason,
            )
    await tell_sla_timer(rt, ticket_id)
    return await ticket_detail(rt, ticket_id)


async def interactions_of(rt: Runtime, *, customer_id: str | None = None, offset: int = 0, limit: int = 100):
    from domains.crm import interactions

    async with rt.db() as s:
        return await interactions.list_interactions(s, customer_id=customer_id, offset=offset, limit=limit)


async def get_interaction(rt: Runtime, interaction_id: str):
    from domains.crm import interactions

    async with rt.db() as s:
        return await interactions.get_interaction(s, interaction_id)


async def open_case(
    rt: Runtime, ctx: RequestContext, *, idempotency_key: str | None = None, **fields: Any
) -> tuple[CaseDetail, bool]:
    from domains.crm import cases

    async def create(s: AsyncSession) -> str:
        return (await cases.open_case(s, ctx, **fields)).id

    async def load(s: AsyncSession, case_id: str):
        return case_id

    case_id, replayed = await idempotency.once(
        rt.db, CrmIdempotencyKey, "case.open", idempotency_key, idempotency.fingerprint(fields), create, load
    )
    return await case_detail(rt, case_id), replayed


async def case_detail(rt: Runtime, case_id: str) -> CaseDetail:
    from domains.crm import cases

    async with rt.db() as s:
        case = await cases.get_case(s, case_id)
        return CaseDetail(case, await cases.case_notes(s, case_id), await cases.case_tickets(s, case_id))


async def list_cases(rt: Runtime, *, customer_id=None, state=None, offset=0, limit=100):
    from domains.crm import cases

    async with rt.db() as s:
        return await cases.list_cases(s, customer_id=customer_id, state=state, offset=offset, limit=limit)


async def note_case(rt: Runtime, ctx: RequestContext, case_id: str, text: str) -> CaseDetail:
    from domains.crm import cases

    async with transaction(rt.db) as s:
        await cases.add_note(s, ctx, case_id, text)
    return await case_detail(rt, case_id)


async def update_case(rt: Runtime, ctx: RequestContext, case_id: str, **changes: Any) -> CaseDetail:
    from domains.crm import cases

    async with transaction(rt.db) as s:
        await cases.update_case(s, ctx, case_id, **changes)
    return await case_detail(rt, case_id)


async def transition_case(
    rt: Runtime, ctx: RequestContext, case_id: str, trigger: str, note: str | None = None
) -> CaseDetail:
    from domains.crm import cases

    async with transaction(rt.db) as s:
        _, cancelled = await cases.transition_case(s, ctx, case_id, trigger, note=note)
    for ticket_id in cancelled:
        await tell_sla_timer(rt, ticket_id)
    return await case_detail(rt, case_id)


async def close_case(
    rt: Runtime, ctx: RequestContext, case_id: str, resolution_code: str, note: str | None = None
) -> CaseDetail:
    from domains.crm import cases

    async with transaction(rt.db) as s:
        await cases.close_case(s, ctx, case_id, resolution_code, note)
    return await case_detail(rt, case_id)
