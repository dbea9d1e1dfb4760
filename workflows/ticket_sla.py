"""The SLA timer of one open ticket: `ticket-sla-<TKT id>`.

Started (idempotently, by workflow id) whenever a ticket is opened, by ops/crm.py or from an
activity (a workflow asking an operator, a stuck provisioning task); the worker's sweep starts it
for any open ticket that missed it. It sleeps until the ticket's due time (from the seeded SLA
policies, type x priority); when the time passes and the ticket is still open, the ticket's priority
rises one level, the supervisor is assigned, a note says so and `ticket.escalated` is written
(activities/crm.py, domains/crm/tickets.escalate_overdue), and it sleeps again until the new
priority's due time; at the top priority it stops. A state change (`ticket_changed`, sent by the
ticket operations) wakes it to read the ticket again: resolved, closed or cancelled ends it, a
changed priority moves its due time. On a test stack it follows the business clock like the
line's workflow (business time = workflow time + skew; `clock_changed` from `bss clock`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.crm import CrmActivities, Escalate, TicketRef, TicketSlaState
    from workflows.common import DB_STEP, condition_or_timeout


def ticket_sla_workflow_id(ticket_id: str) -> str:
    return f"ticket-sla-{ticket_id}"


@dataclass
class TicketSlaInput:
    ticket_id: str
    clock_skew_seconds: float = 0.0  # test stacks only: business time minus workflow time


@dataclass
class TicketSlaResult:
    ticket_id: str
    state: str
    priority: str
    escalations: int


@dataclass
class TicketChanged:
    """The ticket changed (state, priority): read it again."""


@dataclass
class ClockChanged:
    """From `bss clock` on a test stack (same shape as the line's): business time now reads this."""

    business_now: str


@workflow.defn
class TicketSlaWorkflow:
    def __init__(self) -> None:
        self.skew: float | None = None
        self.wake = False
        self.ticket: TicketSlaState | None = None

    @workflow.run
    async def run(self, inp: TicketSlaInput) -> TicketSlaResult:
        try:
            return await self._watch(inp)
        except (ActivityError, ApplicationError) as err:
            # A ticket that does not exist (a start for a ticket rolled back) has nothing to watch:
            # end with a result rather than Failed. (A local activity's failure may arrive as the
            # ApplicationError itself.)
            cause = err.cause if isinstance(err, ActivityError) else err
            if not (isinstance(cause, ApplicationError) and cause.type == "ticket.not_found"):
                raise
            return TicketSlaResult(inp.ticket_id, "missing", "", 0)

    async def _watch(self, inp: TicketSlaInput) -> TicketSlaResult:
        if self.skew is None:
            self.skew = inp.clock_skew_seconds
        await self._read(inp.ticket_id)
        while self.ticket.open and self.ticket.sla_due_at is not None:
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(TicketSlaInput(inp.ticket_id, self.skew or 0.0))
            due = datetime.fromisoformat(self.ticket.sla_due_at)
            self.wake = False
            await condition_or_timeout(lambda: self.wake, max(0.0, (due - self._now()).total_seconds()))
            if self._now() >= due:
                self._take(
                    await workflow.execute_local_activity_method(
                        CrmActivities.escalate_ticket,
                        Escalate(inp.ticket_id, self._now().isoformat()),
                        **DB_STEP,
                    )
                )
            else:
                await self._read(inp.ticket_id)
        t = self.ticket
        return TicketSlaResult(t.ticket_id, t.state, t.priority, t.escalations)

    async def _read(self, ticket_id: str) -> None:
        self._take(
            await workflow.execute_local_activity_method(
                CrmActivities.ticket_sla_state, TicketRef(ticket_id), **DB_STEP
            )
        )

    def _take(self, state: TicketSlaState) -> None:
        self.ticket = state
        if state.business_now:  # a test stack's worker reports its clock
            self.skew = (datetime.fromisoformat(state.business_now) - workflow.now()).total_seconds()

    def _now(self) -> datetime:
        return workflow.now() + timedelta(seconds=self.skew or 0.0)

    @workflow.signal
    def ticket_changed(self, msg: TicketChanged) -> None:
        self.wake = True

    @workflow.signal
    def clock_changed(self, msg: ClockChanged) -> None:
        self.skew = (datetime.fromisoformat(msg.business_now) - workflow.now()).total_seconds()
        self.wake = True

    @workflow.query
    def status(self) -> TicketSlaState | None:
        return self.ticket
