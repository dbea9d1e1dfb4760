"""Activities behind workflows/ticket_sla.py: read a ticket's SLA state, escalate an overdue one."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from activities.base import ctx_for, domain_errors
from core.db import transaction


@dataclass
class TicketRef:
    ticket_id: str


@dataclass
class TicketSlaState:
    ticket_id: str
    state: str
    priority: str
    open: bool
    sla_due_at: str | None  # ISO; None: nothing left to watch
    escalations: int = 0
    # Only on a test stack (BSS_TEST_CLOCK): the worker's business clock when the ticket was read.
    business_now: str | None = None


@dataclass
class Escalate:
    ticket_id: str
    at: str  # the timer's business time (ISO): the ticket escalates if its due time is not after it


class CrmActivities:
    def __init__(self, runtime) -> None:
        self.rt = runtime

    def _state(self, ticket) -> TicketSlaState:
        from core.clock import clock
        from domains.crm import rules

        is_open = ticket.state in rules.OPEN_TICKET_STATES
        return TicketSlaState(
            ticket.id,
            ticket.state,
            ticket.priority,
            is_open,
            ticket.sla_due_at.isoformat() if is_open and ticket.sla_due_at else None,
            ticket.escalations,
            clock.now().isoformat() if self.rt.settings.test_clock else None,
        )

    @activity.defn
    @domain_errors
    async def ticket_sla_state(self, ref: TicketRef) -> TicketSlaState:
        """The ticket as its timer needs it; the first read marks the timer as started (the sweep
        in ops/crm.py starts timers for open tickets that never got that mark)."""
        from core.clock import clock
        from domains.crm import tickets

        async with transaction(self.rt.db) as s:
            ticket = await tickets.get_ticket(s, ref.ticket_id, for_update=True)
            if ticket.sla_timer_started_at is None:
                ticket.sla_timer_started_at = clock.now()
                s.add(ticket)
            return self._state(ticket)

    @activity.defn
    @domain_errors
    async def escalate_ticket(self, req: Escalate) -> TicketSlaState:
        """Idempotent: once escalated the due time moves past `at`, so a retry changes nothing."""
        from datetime import datetime

        from domains.crm import tickets

        async with transaction(self.rt.db) as s:
            await tickets.escalate_overdue(
                s, ctx_for(activity.info().workflow_id), req.ticket_id, datetime.fromisoformat(req.at)
            )
            return self._state(await tickets.get_ticket(s, req.ticket_id))
