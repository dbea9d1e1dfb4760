"""Activities behind workflows/attention.py: the ticket a stuck workflow opens, and its closing."""

from __future__ import annotations

from dataclasses import dataclass, replace

from temporalio import activity

from activities.base import ctx_for, domain_errors
from core.context import RequestContext
from core.db import transaction


@dataclass
class AttentionTicket:
    topic: str
    ticket_type: str
    subject: str
    description: str
    customer_id: str | None = None
    order_id: str | None = None
    subscription_id: str | None = None


@dataclass
class AttentionClosed:
    ticket_id: str
    action: str
    note: str
    requested_by: RequestContext | None = None


class AttentionActivities:
    def __init__(self, runtime) -> None:
        self.rt = runtime

    @activity.defn
    @domain_errors
    async def open_attention_ticket(self, req: AttentionTicket) -> str:
        """Idempotent on (workflow, topic) while the ticket is open: a retry finds the same one."""
        from domains.crm import tickets

        async with transaction(self.rt.db) as s:
            ticket = await tickets.open_ticket(
                s,
                ctx_for(activity.info().workflow_id),
                ticket_type=req.ticket_type,
                subject=req.subject,
                description=req.description,
                customer_id=req.customer_id,
                related_order_id=req.order_id,
                related_service_id=req.subscription_id,
                waiting_workflow_id=activity.info().workflow_id,
                waiting_topic=req.topic,
            )
        from ops.crm import start_sla_timer

        # Its SLA timer (idempotent by workflow id; the worker's sweep catches a start that fails).
        await start_sla_timer(self.rt, ticket.id, ticket.customer_id)
        return ticket.id

    @activity.defn
    @domain_errors
    async def close_attention_ticket(self, req: AttentionClosed) -> None:
        """Resolve the ticket under the operator who decided; already resolved is fine (a retry)."""
        from domains.crm import rules, tickets

        acting = ctx_for(activity.info().workflow_id)
        ctx = replace(req.requested_by, trace_id=acting.trace_id) if req.requested_by else acting
        async with transaction(self.rt.db) as s:
            ticket = await tickets.get_ticket(s, req.ticket_id, for_update=True)
            if ticket.state not in rules.OPEN_TICKET_STATES:
                return
            note = req.note.strip() or f"{req.action} by {ctx.actor}"
            await tickets.resolve_ticket(s, ctx, req.ticket_id, f"[{req.action}] {note}")
        from ops.crm import tell_sla_timer

        await tell_sla_timer(self.rt, req.ticket_id)
