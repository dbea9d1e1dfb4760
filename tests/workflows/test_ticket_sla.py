"""The SLA timer of a ticket on the time-skipping server and a real Postgres: a ticket still open
when its due time passes is escalated (priority one level up, the supervisor assigned, a note, a
`ticket.escalated` audit row); a ticket resolved before its due time never is, and its timer ends.

BSS_EXPORT_HISTORIES=1 writes the replay histories of TicketSlaWorkflow from these runs."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest_asyncio
from sqlalchemy import text
from temporalio.worker import Worker

from core.clock import clock
from core.context import RequestContext
from core.db import transaction
from worker import workflow_runner
from workflows.ticket_sla import TicketSlaWorkflow, ticket_sla_workflow_id

HISTORIES = Path(__file__).resolve().parent.parent / "replay" / "histories" / "TicketSlaWorkflow"
CSR = RequestContext(actor="csr-ann", channel="cli", service_identity="test")


@pytest_asyncio.fixture
async def sla(temporal_time_skipping, runtime, settings):
    from activities.registry import build_activities
    from workflows.registry import WORKFLOWS

    env = temporal_time_skipping  # its search attributes are registered by the session fixture
    settings.task_queue = f"sla-{uuid.uuid4().hex[:8]}"
    runtime.use_temporal(env.client)
    # The ticket's due time is business time: the test server's clock runs ahead of the wall clock.
    clock.freeze(await env.get_current_time())
    async with Worker(
        env.client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        activities=build_activities(runtime),
    ):
        started: list[str] = []
        yield env, started
        for ticket_id in started:  # nothing left on the shared server's clock
            try:
                await env.client.get_workflow_handle(ticket_sla_workflow_id(ticket_id)).terminate("test over")
            except Exception:  # noqa: BLE001 - already over
                pass


async def _open(runtime, started: list[str], priority: str = "normal") -> tuple[str, str]:
    from domains.crm.services import create_customer
    from ops import crm

    async with transaction(runtime.db) as s:
        customer = await create_customer(
            s,
            CSR,
            given_name="Grace",
            family_name="Hopper",
            email=f"grace-{uuid.uuid4().hex[:8]}@example.com",
        )
    detail, _ = await crm.open_ticket(
        runtime,
        CSR,
        ticket_type="service_outage",
        subject="No data since this morning",
        description="Customer reports no data on their line.",
        customer_id=customer.id,
        priority=priority,
        assigned_to_agent_id="AGT-001",
    )
    started.append(detail.ticket.id)
    return detail.ticket.id, customer.id


async def _row(runtime, ticket_id: str):
    async with runtime.engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT state, priority, assigned_to_agent_id, sla_due_at, escalations "
                    "FROM crm.ticket WHERE id = :id"
                ),
                {"id": ticket_id},
            )
        ).one()


async def _events(runtime, ticket_id: str) -> list[tuple[str, dict]]:
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT event_type, payload FROM audit.domain_event WHERE aggregate_id = :id ORDER BY id"),
            {"id": ticket_id},
        )
        return [(r[0], r[1]) for r in rows]


async def _export(env, ticket_id: str, case: str) -> None:
    if os.environ.get("BSS_EXPORT_HISTORIES") != "1":
        return
    history = await env.client.get_workflow_handle(ticket_sla_workflow_id(ticket_id)).fetch_history()
    HISTORIES.mkdir(parents=True, exist_ok=True)
    (HISTORIES / f"{case}.json").write_text(history.to_json())


async def test_a_breached_ticket_is_escalated_one_level_to_the_supervisor(sla, runtime):
    from ops import crm

    env, started = sla
    ticket_id, customer_id = await _open(runtime, started, "normal")
    opened = await _row(runtime, ticket_id)
    handle = env.client.get_workflow_handle_for(TicketSlaWorkflow.run, ticket_sla_workflow_id(ticket_id))

    # service_outage at normal priority: 240 minutes. Just before, nothing has happened.
    await env.sleep(timedelta(minutes=239))
    assert (await _row(runtime, ticket_id))[1] == "normal"
    await env.sleep(timedelta(minutes=2))
    for _ in range(200):
        if (await _row(runtime, ticket_id)).escalations:
            break
        await asyncio.sleep(0.05)
    state, priority, agent, due, escalations = await _row(runtime, ticket_id)
    assert (state, priority, agent, escalations) == ("open", "high", "AGT-003", 1)
    # The next level's SLA (60 minutes at high) runs from the breach.
    assert timedelta(minutes=60) <= due - opened.sla_due_at <= timedelta(minutes=62)

    detail = await crm.ticket_detail(runtime, ticket_id)
    assert any("SLA breached" in n.body and "normal → high" in n.body for n in detail.notes)
    escalated = [p for e, p in await _events(runtime, ticket_id) if e == "ticket.escalated"]
    assert len(escalated) == 1
    assert escalated[0]["customer_id"] == customer_id
    assert (escalated[0]["priority"], escalated[0]["previous_priority"]) == ("high", "normal")
    assert escalated[0]["assigned_to"] == "AGT-003" and escalated[0]["state"] == "open"

    # Resolving stops the timer: it ends with the ticket resolved, escalated once.
    await crm.change_ticket(runtime, CSR, ticket_id, trigger="resolve", resolution_notes="cell site back")
    result = await handle.result()
    assert (result.state, result.priority, result.escalations) == ("resolved", "high", 1)
    await _export(env, ticket_id, "escalated_then_resolved")


async def test_a_ticket_resolved_before_its_due_time_is_never_escalated(sla, runtime):
    from ops import crm

    env, started = sla
    ticket_id, _ = await _open(runtime, started, "high")  # 60 minutes
    handle = env.client.get_workflow_handle_for(TicketSlaWorkflow.run, ticket_sla_workflow_id(ticket_id))
    await env.sleep(timedelta(minutes=30))
    await crm.change_ticket(runtime, CSR, ticket_id, trigger="resolve", resolution_notes="reset the APN")
    result = await handle.result()
    assert (result.state, result.escalations) == ("resolved", 0)
    await env.sleep(timedelta(hours=3))  # well past the old due time
    state, priority, agent, _, escalations = await _row(runtime, ticket_id)
    assert (state, priority, agent, escalations) == ("resolved", "high", "AGT-001", 0)
    assert "ticket.escalated" not in [e for e, _ in await _events(runtime, ticket_id)]
    await _export(env, ticket_id, "resolved_before_due")


async def test_a_moved_business_clock_escalates_without_waiting(sla, runtime):
    """`bss clock advance` on a test stack: the timer follows business time (clock_changed)."""
    from workflows.ticket_sla import ClockChanged

    env, started = sla
    ticket_id, _ = await _open(runtime, started, "urgent")  # 30 minutes; urgent cannot rise
    handle = env.client.get_workflow_handle_for(TicketSlaWorkflow.run, ticket_sla_workflow_id(ticket_id))
    moved = await env.get_current_time() + timedelta(hours=1)
    await handle.signal(TicketSlaWorkflow.clock_changed, ClockChanged(moved.isoformat()))
    result = await handle.result()
    # At the top priority it stays urgent, goes to the supervisor, and the timer stops.
    assert (result.state, result.priority, result.escalations) == ("open", "urgent", 1)
    assert (await _row(runtime, ticket_id))[2] == "AGT-003"
    await _export(env, ticket_id, "clock_moved_escalated_at_top")


async def test_the_sweep_starts_the_timer_of_a_ticket_that_missed_it(sla, runtime):
    """A ticket opened inside another write (a low-watermark check, Temporal away) gets its timer
    from the worker's sweep, once."""
    from domains.crm import tickets
    from ops import crm

    env, started = sla
    async with transaction(runtime.db) as s:
        ticket = await tickets.open_ticket(
            s, CSR, ticket_type="inventory_low", subject="eSIM pool low", description="", priority="normal"
        )
    started.append(ticket.id)
    assert await crm.sweep_ticket_timers(runtime) == []  # within the grace period: its opener may start it
    clock.freeze(clock.now() + timedelta(minutes=1))
    assert await crm.sweep_ticket_timers(runtime) == [ticket.id]
    handle = env.client.get_workflow_handle_for(TicketSlaWorkflow.run, ticket_sla_workflow_id(ticket.id))
    for _ in range(200):
        if await _timer_started(runtime, ticket.id):
            break
        await asyncio.sleep(0.05)
    assert await _timer_started(runtime, ticket.id)
    assert await crm.sweep_ticket_timers(runtime) == []  # taken up: not started again
    assert (await handle.describe()).status.name == "RUNNING"


async def _timer_started(runtime, ticket_id: str) -> bool:
    async with runtime.engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT sla_timer_started_at IS NOT NULL FROM crm.ticket WHERE id = :id"),
                {"id": ticket_id},
            )
        ).scalar_one()


async def test_a_timer_for_a_ticket_that_does_not_exist_ends_with_a_result(sla, settings):
    """Never Failed (the chaos invariant): a start for a ticket that was rolled back ends `missing`."""
    from workflows.ticket_sla import TicketSlaInput

    env, _ = sla
    result = await env.client.execute_workflow(
        TicketSlaWorkflow.run,
        TicketSlaInput("TKT-00000000"),
        id=f"ticket-sla-missing-{uuid.uuid4().hex[:6]}",
        task_queue=settings.task_queue,
    )
    assert (result.ticket_id, result.state) == ("TKT-00000000", "missing")
