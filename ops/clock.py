"""The business clock of a test stack (`bss up --test-clock`): read it, freeze it, move it on.

Only a test stack lets anyone move time. There every process reads business time from one file
(core.clock), so the API, the worker's activities and these operations agree; after each change
every running SubscriptionWorkflow and ticket SLA timer (CLOCK_FOLLOWERS) is told the new time
(`ClockChanged`) and acts on what has fallen due (a renewal, a day pass's end, a ticket's due time)
at once instead of at the old wall-clock moment.

The lines to tell are listed before the clock moves, so an unreachable Temporal changes nothing:
the running SubscriptionWorkflows in Temporal's visibility, plus the workflow of every line the
database holds as live (visibility lags a moment behind a line that has just started). A line
that starts after the listing reads the moved clock when it first reads its line.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.clock import ClockState, clock, parse_duration
from core.context import RequestContext
from core.db import transaction
from core.errors import Forbidden, PolicyViolation
from ops.catalog import ANONYMOUS
from ops.runtime import Runtime
from ops.som import TEMPORAL_TIMEOUT, temporal_guard

log = logging.getLogger("bss.clock")

AGGREGATE = "clock"
CLOCK_ID = "business-clock"
# Signals in flight at once while telling the lines; each is one small RPC.
FAN_OUT = 32
# Workflow types whose timers follow business time: each has a `clock_changed` signal taking
# {"business_now": iso} (the line's ClockChanged).
CLOCK_FOLLOWERS = ("SubscriptionWorkflow", "TicketSlaWorkflow", "SignupHoldWorkflow", "PortWorkflow")


@dataclass
class ClockReading:
    now: datetime
    frozen: bool
    offset_seconds: float  # business time minus wall-clock time
    test_clock: bool
    workflows_told: int | None = None  # after a change: the lines that were told


def read(rt: Runtime) -> ClockReading:
    return _reading(rt, clock.state())


async def freeze(rt: Runtime, ctx: RequestContext, at: datetime | None = None) -> ClockReading:
    """Stop business time, now or at `at` (never earlier than the clock reads: time only moves on)."""
    _require_test_clock(rt, ctx)
    if at is not None:
        at = at.astimezone(UTC)
        if at < clock.now():
            raise PolicyViolation(
                "clock.cannot_move_back",
                f"The business clock reads {clock.now().isoformat()}; it can be frozen now or later, "
                "never earlier.",
                at=at.isoformat(),
            )
    return await _move(
        rt, ctx, "clock.frozen", lambda s: s.frozen(at), {"at": at.isoformat() if at else None}
    )


async def advance(rt: Runtime, ctx: RequestContext, duration: str) -> ClockReading:
    """Move business time forward by `duration` ('30d', '25h', '90m', 'PT1H', …)."""
    _require_test_clock(rt, ctx)
    delta = parse_duration(duration)
    return await _move(
        rt,
        ctx,
        "clock.advanced",
        lambda s: s.advanced(delta),
        {"duration": duration.strip(), "seconds": delta.total_seconds()},
    )


async def unfreeze(rt: Runtime, ctx: RequestContext) -> ClockReading:
    """Let business time run again from where it stood."""
    _require_test_clock(rt, ctx)
    return await _move(rt, ctx, "clock.unfrozen", ClockState.unfrozen, {})


# --------------------------------------------------------------------------- plumbing


def _require_test_clock(rt: Runtime, ctx: RequestContext) -> None:
    if not rt.settings.test_clock or not clock.shared:
        raise PolicyViolation(
            "clock.test_clock_disabled",
            "Business time can only be moved on a test stack; start it with `bss up --test-clock`.",
        )
    # Moving time renews every line that falls due: the change must name who made it.
    if ctx.actor.strip().lower() in ANONYMOUS:
        raise Forbidden("clock.admin_only", "Moving the clock needs a named actor (X-BSS-Actor).")


async def _move(rt: Runtime, ctx: RequestContext, event: str, change, payload: dict) -> ClockReading:
    from domains.audit.services import record

    running = await _running_lines(rt)
    before = clock.now()
    async with transaction(rt.db) as s:
        # The file is written inside the transaction: a failed write leaves no audit row behind.
        state = clock.change(change)
        record(
            s,
            ctx,
            event,
            AGGREGATE,
            CLOCK_ID,
            {
                **payload,
                "from": before.isoformat(),
                "to": state.now().isoformat(),
                "frozen": bool(state.frozen_at),
            },
        )
    told = await _tell(rt, running)
    reading = _reading(rt, state)
    reading.workflows_told = told
    return reading


def _reading(rt: Runtime, state: ClockState) -> ClockReading:
    now = state.now().astimezone(UTC)
    return ClockReading(
        now=now,
        frozen=state.frozen_at is not None,
        offset_seconds=round((now - datetime.now(UTC)) / timedelta(seconds=1), 3),
        test_clock=bool(rt.settings.test_clock and clock.shared),
    )


async def _running_lines(rt: Runtime) -> list[str]:
    """Workflow ids of this stack's clock followers: the running CLOCK_FOLLOWERS on its task queue,
    and those of the live lines and open tickets in the database."""
    from sqlmodel import col, select

    from domains.subscription import rules
    from domains.subscription.models import Subscription
    from workflows.subscription import subscription_workflow_id

    types = ", ".join(f"'{t}'" for t in CLOCK_FOLLOWERS)
    query = f"WorkflowType IN ({types}) AND ExecutionStatus = 'Running' AND TaskQueue = '{rt.settings.task_queue}'"

    async def listing() -> list[str]:
        client = await rt.temporal()
        return [wf.id async for wf in client.list_workflows(query)]

    async with temporal_guard("clock"):
        running = await asyncio.wait_for(listing(), 4 * TEMPORAL_TIMEOUT)
    async with rt.db() as s:
        live = await s.exec(select(Subscription.id).where(col(Subscription.state) != rules.TERMINATED))
        known = [subscription_workflow_id(sub_id) for sub_id in live]
        known += await _open_ticket_timers(s)
    return sorted(set(running) | set(known))


async def _open_ticket_timers(s) -> list[str]:
    """The SLA timers of the open tickets with a due time (workflows/ticket_sla.py)."""
    from sqlmodel import col, select

    from domains.crm import rules
    from domains.crm.models import Ticket
    from workflows.ticket_sla import ticket_sla_workflow_id

    rows = await s.exec(
        select(Ticket.id).where(
            col(Ticket.state).in_(rules.OPEN_TICKET_STATES), col(Ticket.sla_due_at).is_not(None)
        )
    )
    return [ticket_sla_workflow_id(t) for t in rows]


async def _tell(rt: Runtime, workflow_ids: list[str]) -> int:
    """Signal each line with the business time of the moment it is told; a line that ended in
    between is skipped. The count is of the lines that were told."""
    from temporalio.service import RPCError

    from workflows.subscription import ClockChanged, SubscriptionWorkflow

    client = await rt.temporal()
    gate = asyncio.Semaphore(FAN_OUT)

    async def tell(workflow_id: str) -> bool:
        async with gate:
            try:
                await client.get_workflow_handle(workflow_id).signal(
                    SubscriptionWorkflow.clock_changed,
                    ClockChanged(clock.now().isoformat()),
                    rpc_timeout=timedelta(seconds=TEMPORAL_TIMEOUT),
                )
                return True
            except RPCError as exc:
                log.info("%s was not told of the clock change: %s", workflow_id, exc.message)
                return False

    return sum(await asyncio.gather(*(tell(w) for w in workflow_ids)))
